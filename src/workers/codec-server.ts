/**
 * A codec server: the HTTP endpoint the Temporal UI and CLI call to show encrypted payloads in the
 * clear (`POST /decode`) and to encrypt what a person types (`POST /encode`), per Temporal's
 * remote codec protocol: `{ "payloads": [{ "metadata": { "<key>": "<base64>" }, "data": "<base64>" }] }`.
 *
 * It decrypts for whoever can reach it, so it listens on 127.0.0.1 unless told otherwise, answers
 * browsers only from the origins it is given (CORS), and can require an `Authorization` header.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Payload, PayloadCodec } from '@temporalio/common';

/** Options of the codec server. */
export interface CodecServerOptions {
  codec: PayloadCodec;
  /** Port; 0 picks a free one. */
  port: number;
  /** Address to listen on. @default "127.0.0.1" */
  host?: string;
  /** Browser origins allowed to call it (the Temporal UI's), e.g. `http://localhost:8233`. @default none */
  origins?: readonly string[];
  /** Exact `Authorization` header value to require. @default none: no header is required */
  authorization?: string;
  /** Largest request body accepted, bytes. @default 16 MiB */
  maxBodyBytes?: number;
}

/** A running codec server. */
export interface CodecServer {
  /** Its base URL, e.g. `http://127.0.0.1:8081`. */
  url: string;
  close(): Promise<void>;
}

/** A payload in the JSON form of the protocol (proto3 JSON: bytes as base64). */
interface JsonPayload {
  metadata?: Record<string, string>;
  data?: string;
}

/** A request the server refuses, with its HTTP status. */
class BadRequest extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** Starts the server; resolves once it listens. */
export function serveCodec(options: CodecServerOptions): Promise<CodecServer> {
  const origins = new Set(options.origins ?? []);
  const server = http.createServer((req, res) => {
    const origin = req.headers.origin;
    if (origin !== undefined && origins.has(origin)) {
      res.setHeader('Access-Control-Allow-Origin', origin);
      res.setHeader('Access-Control-Allow-Credentials', 'true');
      res.setHeader('Access-Control-Allow-Methods', 'POST, OPTIONS');
      res.setHeader('Access-Control-Allow-Headers', 'Content-Type, X-Namespace, Authorization');
      res.setHeader('Vary', 'Origin');
    }
    if (req.method === 'OPTIONS') {
      res.writeHead(origin !== undefined && origins.has(origin) ? 204 : 403).end();
      return;
    }
    handle(req, options)
      .then((body) => {
        res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify(body));
      })
      .catch((err: unknown) => {
        const status = err instanceof BadRequest ? err.status : 400;
        res
          .writeHead(status, { 'Content-Type': 'application/json' })
          .end(JSON.stringify({ message: err instanceof Error ? err.message : String(err) }));
      });
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host ?? '127.0.0.1', () => {
      const address = server.address() as AddressInfo;
      const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
      resolve({
        url: `http://${host}:${address.port}`,
        close: () => new Promise((done) => server.close(() => done())),
      });
    });
  });
}

async function handle(req: http.IncomingMessage, options: CodecServerOptions): Promise<{ payloads: JsonPayload[] }> {
  if (req.method !== 'POST') throw new BadRequest(405, 'use POST /encode or POST /decode');
  const path = (req.url ?? '').split('?')[0] ?? '';
  const operation = path.endsWith('/decode') ? 'decode' : path.endsWith('/encode') ? 'encode' : undefined;
  if (!operation) throw new BadRequest(404, `no endpoint ${path}; use POST /encode or POST /decode`);
  if (options.authorization !== undefined && req.headers.authorization !== options.authorization) {
    throw new BadRequest(401, 'missing or wrong Authorization header');
  }
  const body = await readBody(req, options.maxBodyBytes ?? 16 * 1024 * 1024);
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch (err) {
    throw new BadRequest(400, `the body is not JSON: ${(err as Error).message}`);
  }
  const list = (parsed as { payloads?: unknown } | null)?.payloads;
  if (!Array.isArray(list)) throw new BadRequest(400, 'the body must be { "payloads": [...] }');
  const payloads = list.map((p, i) => fromJson(p, i));
  const out = await options.codec[operation](payloads);
  return { payloads: out.map(toJson) };
}

function readBody(req: http.IncomingMessage, limit: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        reject(new BadRequest(413, `the body is over ${limit} bytes`));
        req.destroy();
      } else chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function fromJson(value: unknown, index: number): Payload {
  if (typeof value !== 'object' || value === null) throw new BadRequest(400, `payloads[${index}] must be an object`);
  const p = value as JsonPayload;
  const metadata: Record<string, Uint8Array> = {};
  for (const [k, v] of Object.entries(p.metadata ?? {})) {
    if (typeof v !== 'string') throw new BadRequest(400, `payloads[${index}].metadata.${k} must be base64`);
    metadata[k] = new Uint8Array(Buffer.from(v, 'base64'));
  }
  if (p.data !== undefined && typeof p.data !== 'string')
    throw new BadRequest(400, `payloads[${index}].data must be base64`);
  return { metadata, data: new Uint8Array(Buffer.from(p.data ?? '', 'base64')) };
}

function toJson(p: Payload): JsonPayload {
  const metadata: Record<string, string> = {};
  for (const [k, v] of Object.entries(p.metadata ?? {})) if (v) metadata[k] = Buffer.from(v).toString('base64');
  return { metadata, data: Buffer.from(p.data ?? new Uint8Array()).toString('base64') };
}
