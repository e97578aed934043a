/**
 * `allot codec-server`: serves the payload codec of `ALLOT_CODEC_KEY` over HTTP, so that the
 * Temporal UI (and `temporal --codec-endpoint`) show encrypted payloads in the clear. See
 * docs/security.md.
 */
import type { Command } from 'commander';
import { CODEC_KEY_ENV, CodecKeyError, codecFromEnv } from '../../workers/codec';
import { serveCodec } from '../../workers/codec-server';
import { UserError } from '../errors';
import { say, serve } from '../lifecycle';
import type { Exit } from '../options';
import { collect } from '../options';

/** The Temporal UI of `allot dev` and of `temporal server start-dev`. */
export const DEV_UI_ORIGINS = ['http://localhost:8233', 'http://127.0.0.1:8233'];

/** Options of `allot codec-server`, as commander gives them. */
interface CodecServerCommandOptions {
  port: string;
  ip: string;
  ui?: string[];
  authorization?: string;
}

/** Adds `codec-server` to the program. */
export function registerCodecServer(program: Command, exit: Exit): void {
  program
    .command('codec-server')
    .description(`serve the payload codec of ${CODEC_KEY_ENV} to the Temporal UI and CLI (see docs/security.md)`)
    .option('--port <port>', 'port to listen on', '8081')
    .option('--ip <address>', 'address to listen on (it decrypts for anyone who reaches it)', '127.0.0.1')
    .option(
      '--ui <origin>',
      `origin of a Temporal UI allowed to call it (repeatable; default ${DEV_UI_ORIGINS.join(' and ')})`,
      collect,
    )
    .option(
      '--authorization <value>',
      'require this exact Authorization header (e.g. "Bearer <token>"; the CLI sends it with --codec-auth)',
    )
    .action(async (o: CodecServerCommandOptions) => exit(await codecServer(o)));
}

async function codecServer(o: CodecServerCommandOptions): Promise<number> {
  const port = Number(o.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new UserError(`--port must be a port number from 0 to 65535, got ${JSON.stringify(o.port)}`);
  for (const origin of o.ui ?? []) {
    if (!/^https?:\/\/[^/\s]+$/.test(origin))
      throw new UserError(`--ui must be an origin like http://localhost:8233 (no path), got ${JSON.stringify(origin)}`);
  }
  let codec;
  try {
    codec = codecFromEnv();
  } catch (err) {
    if (err instanceof CodecKeyError) throw new UserError(err.message);
    throw err;
  }
  if (!codec) {
    throw new UserError(
      `${CODEC_KEY_ENV} is not set: the codec server needs the key your workers, agents and CLI use; make one with \`openssl rand -base64 32\``,
    );
  }
  const origins = o.ui ?? DEV_UI_ORIGINS;
  let server;
  try {
    server = await serveCodec({ codec, port, host: o.ip, origins, authorization: o.authorization });
  } catch (err) {
    throw new UserError(`cannot listen on ${o.ip}:${port} (${(err as Error).message}); choose another --port`, 1);
  }
  say(`codec server on ${server.url} (key ${codec.keyId}); browsers allowed from ${origins.join(', ')}`);
  say(
    `  Temporal UI:  Settings → Codec Server → ${server.url} (or temporal server start-dev --ui-codec-endpoint ${server.url})`,
  );
  say(`  Temporal CLI: temporal workflow show --workflow-id ID --codec-endpoint ${server.url}`);
  say('Ctrl-C stops it.');
  return serve(async (stop) => {
    await stop.requested;
    await server.close();
  });
}
