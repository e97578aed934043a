/**
 * The codec server speaks Temporal's remote codec protocol, answers browsers only from the UI
 * origins it was given, and can require an Authorization header.
 */
import { defaultPayloadConverter } from '@temporalio/common';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AesGcmCodec, generateCodecKey, parseCodecKey } from '../../src/workers/codec';
import type { CodecServer } from '../../src/workers/codec-server';
import { serveCodec } from '../../src/workers/codec-server';
import { startAllot } from '../helpers/cli';

const UI = 'http://localhost:8233';
let open: CodecServer;
let guarded: CodecServer;

beforeAll(async () => {
  const codec = new AesGcmCodec(parseCodecKey(generateCodecKey()));
  open = await serveCodec({ codec, port: 0, origins: [UI] });
  guarded = await serveCodec({ codec, port: 0, authorization: 'Bearer let-me-in' });
});

afterAll(async () => {
  await open?.close();
  await guarded?.close();
});

/** A payload in the protocol's JSON form. */
function jsonPayload(value: unknown): { metadata: Record<string, string>; data: string } {
  const p = defaultPayloadConverter.toPayload(value);
  const metadata: Record<string, string> = {};
  for (const [k, v] of Object.entries(p.metadata ?? {})) if (v) metadata[k] = Buffer.from(v).toString('base64');
  return { metadata, data: Buffer.from(p.data ?? []).toString('base64') };
}

function post(server: CodecServer, path: string, body: unknown, headers: Record<string, string> = {}) {
  return fetch(`${server.url}${path}`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

describe('the codec server', () => {
  it('encrypts with /encode and decrypts with /decode, as the Temporal UI calls them', async () => {
    const plain = jsonPayload({ env: { TOKEN: 's3cret' } });
    const encoded = (await (await post(open, '/encode', { payloads: [plain] })).json()) as {
      payloads: { metadata: Record<string, string>; data: string }[];
    };
    const stored = encoded.payloads[0];
    expect(Buffer.from(stored?.metadata.encoding ?? '', 'base64').toString()).toBe('binary/encrypted');
    expect(Buffer.from(stored?.data ?? '', 'base64').toString('latin1')).not.toContain('s3cret');
    const decoded = (await (await post(open, '/decode', encoded, { 'X-Namespace': 'default' })).json()) as {
      payloads: unknown[];
    };
    expect(decoded.payloads).toEqual([plain]);
  });

  it('answers a CORS preflight from the UI origin, and refuses one from elsewhere', async () => {
    const ok = await fetch(`${open.url}/decode`, { method: 'OPTIONS', headers: { Origin: UI } });
    expect(ok.status).toBe(204);
    expect(ok.headers.get('access-control-allow-origin')).toBe(UI);
    expect(ok.headers.get('access-control-allow-headers')).toContain('X-Namespace');
    const other = await fetch(`${open.url}/decode`, { method: 'OPTIONS', headers: { Origin: 'http://evil.test' } });
    expect(other.status).toBe(403);
    expect(other.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('requires the Authorization header when told to', async () => {
    const body = { payloads: [jsonPayload(1)] };
    expect((await post(guarded, '/decode', body)).status).toBe(401);
    expect((await post(guarded, '/decode', body, { Authorization: 'Bearer wrong' })).status).toBe(401);
    expect((await post(guarded, '/decode', body, { Authorization: 'Bearer let-me-in' })).status).toBe(200);
  });

  it.each([
    ['a body that is not JSON', '/decode', '{nope', 400, /not JSON/],
    ['a body without payloads', '/decode', { items: [] }, 400, /payloads/],
    ['metadata that is not base64 text', '/decode', { payloads: [{ metadata: { encoding: 5 } }] }, 400, /base64/],
    ['an unknown endpoint', '/encrypt', { payloads: [] }, 404, /POST \/encode or POST \/decode/],
    [
      'a payload that does not decrypt',
      '/decode',
      { payloads: [tampered()] },
      400,
      /does not have|failed authentication/,
    ],
  ])('refuses %s with a message', async (_, path, body, status, message) => {
    const res = await post(open, path, body);
    expect(res.status).toBe(status);
    expect(((await res.json()) as { message: string }).message).toMatch(message);
  });
});

function tampered(): { metadata: Record<string, string>; data: string } {
  return {
    metadata: {
      encoding: Buffer.from('binary/encrypted').toString('base64'),
      'encryption-key-id': Buffer.from('sha256:0000').toString('base64'),
    },
    data: Buffer.alloc(40).toString('base64'),
  };
}

describe('allot codec-server', () => {
  it('serves the codec of ALLOT_CODEC_KEY, saying where and how to point the UI and CLI at it', async () => {
    const key = generateCodecKey();
    const { child, output } = await startAllot(['codec-server', '--port', '0'], /Ctrl-C stops it/, {
      ALLOT_CODEC_KEY: key,
    });
    try {
      const url = /codec server on (http:\/\/\S+)/.exec(output())?.[1] ?? '';
      expect(output()).toContain(`(key ${parseCodecKey(key).id})`);
      expect(output()).toContain(`--codec-endpoint ${url}`);
      expect(output()).not.toContain(key);
      const server = { url, close: async () => undefined };
      const encoded = await (await post(server, '/encode', { payloads: [jsonPayload('hello')] })).json();
      const [payload] = await new AesGcmCodec(parseCodecKey(key)).decode(
        (encoded as { payloads: { metadata: Record<string, string>; data: string }[] }).payloads.map((p) => ({
          metadata: Object.fromEntries(Object.entries(p.metadata).map(([k, v]) => [k, Buffer.from(v, 'base64')])),
          data: Buffer.from(p.data, 'base64'),
        })),
      );
      expect(defaultPayloadConverter.fromPayload(payload as never)).toBe('hello');
    } finally {
      child.kill('SIGTERM');
    }
  });
});
