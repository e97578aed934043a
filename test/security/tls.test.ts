/**
 * TLS, mutual TLS and API keys, as Temporal Cloud or a secured cluster asks for them: a TLS
 * front for the test server that demands a client certificate from its CA and a bearer API key,
 * reached by the `allot` binary (gRPC-js client) and by a worker connection (Temporal's Rust core)
 * with nothing but the TEMPORAL_* variables that Temporal's own tools read.
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { connectWorker, connectionSettings } from '../../src/workers/connection';
import { allot } from '../helpers/cli';
import { tempDir } from '../helpers/temp';

const API_KEY = 'allot-test-api-key';
const dir = tempDir('tls');
const file = (name: string): string => path.join(dir, name);
let front: http2.Http2SecureServer;
let address: string;

/** A CA, a server certificate for temporal.test and a client certificate, made with openssl. */
function makeCertificates(): void {
  const ssl = (...args: string[]): void => void execFileSync('openssl', args, { stdio: 'ignore' });
  ssl(
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-days',
    '1',
    '-subj',
    '/CN=allot test CA',
    '-keyout',
    file('ca.key'),
    '-out',
    file('ca.pem'),
  );
  for (const [name, cn] of [
    ['server', 'temporal.test'],
    ['client', 'allot-agent'],
  ] as const) {
    ssl(
      'req',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-subj',
      `/CN=${cn}`,
      '-keyout',
      file(`${name}.key`),
      '-out',
      file(`${name}.csr`),
    );
    writeFileSync(
      file(`${name}.ext`),
      name === 'server' ? 'subjectAltName=DNS:temporal.test\n' : 'extendedKeyUsage=clientAuth\n',
    );
    ssl(
      'x509',
      '-req',
      '-in',
      file(`${name}.csr`),
      '-CA',
      file('ca.pem'),
      '-CAkey',
      file('ca.key'),
      '-CAcreateserial',
      '-days',
      '1',
      '-extfile',
      file(`${name}.ext`),
      '-out',
      file(`${name}.pem`),
    );
  }
}

/**
 * An HTTP/2 TLS front: mutual TLS with the test CA, `authorization: Bearer <API_KEY>` on every
 * call (UNAUTHENTICATED otherwise), each call forwarded to the plaintext test server.
 */
async function startFront(upstream: string): Promise<http2.Http2SecureServer> {
  const server = http2.createSecureServer({
    key: readFileSync(file('server.key')),
    cert: readFileSync(file('server.pem')),
    ca: readFileSync(file('ca.pem')),
    requestCert: true,
    rejectUnauthorized: true,
  });
  const session = http2.connect(`http://${upstream}`);
  server.on('stream', (stream, headers) => {
    if (headers.authorization !== `Bearer ${API_KEY}`) {
      stream.respond(
        { ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '16', 'grpc-message': 'bad API key' },
        { endStream: true },
      );
      return;
    }
    const forwarded: http2.OutgoingHttpHeaders = {};
    for (const [k, v] of Object.entries(headers)) if (k !== ':authority' && k !== ':scheme') forwarded[k] = v;
    const up = session.request(forwarded);
    let trailers: http2.IncomingHttpHeaders = {};
    up.on('response', (h) => {
      const response: http2.OutgoingHttpHeaders = {};
      for (const [k, v] of Object.entries(h)) response[k] = v;
      stream.respond(response, { waitForTrailers: true });
    });
    up.on('trailers', (t) => (trailers = t));
    stream.on('wantTrailers', () => {
      const out: http2.OutgoingHttpHeaders = {};
      for (const [k, v] of Object.entries(trailers)) if (!k.startsWith(':')) out[k] = v;
      stream.sendTrailers(out);
    });
    up.on('error', () => stream.close(http2.constants.NGHTTP2_INTERNAL_ERROR));
    stream.on('error', () => up.close(http2.constants.NGHTTP2_CANCEL));
    up.pipe(stream);
    stream.pipe(up);
  });
  server.on('close', () => session.close());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

beforeAll(async () => {
  makeCertificates();
  front = await startFront(inject('temporalAddress'));
  address = `127.0.0.1:${(front.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise<void>((resolve) => (front ? front.close(() => resolve()) : resolve()));
});

/** The variables of a mutual-TLS, API-key connection (what a CI secret or a profile holds). */
function secured(patch: Record<string, string> = {}): Record<string, string> {
  return {
    TEMPORAL_ADDRESS: address,
    TEMPORAL_NAMESPACE: 'default',
    TEMPORAL_API_KEY: API_KEY,
    TEMPORAL_TLS_SERVER_CA_CERT_PATH: file('ca.pem'),
    TEMPORAL_TLS_SERVER_NAME: 'temporal.test',
    TEMPORAL_TLS_CLIENT_CERT_PATH: file('client.pem'),
    TEMPORAL_TLS_CLIENT_KEY_PATH: file('client.key'),
    TEMPORAL_CONFIG_FILE: file('none.toml'),
    ...patch,
  };
}

describe('TLS, mutual TLS and API keys', () => {
  it('connects the allot CLI with a client certificate and an API key from TEMPORAL_* variables', async () => {
    const r = await allot(['schedule', 'list'], secured(), 60_000);
    expect(r.code, r.stderr).toBe(0);
  });

  it('connects a worker connection (Temporal core) the same way', async () => {
    const saved = { ...process.env };
    Object.assign(process.env, secured());
    try {
      const connection = await connectWorker(connectionSettings());
      const info = await connection.workflowService.getSystemInfo({});
      expect(info.serverVersion).toBeTruthy();
      await connection.close();
    } finally {
      for (const k of Object.keys(secured())) delete process.env[k];
      Object.assign(process.env, saved);
    }
  });

  it('is refused without the client certificate, with a message saying where it tried', async () => {
    const r = await allot(
      ['schedule', 'list'],
      secured({ TEMPORAL_TLS_CLIENT_CERT_PATH: '', TEMPORAL_TLS_CLIENT_KEY_PATH: '' }),
      60_000,
    );
    expect(r.code).toBe(1);
    expect(r.stderr).toContain(`cannot reach Temporal at ${address}`);
  });

  it('is refused with a wrong API key', async () => {
    const r = await allot(['schedule', 'list'], secured({ TEMPORAL_API_KEY: 'wrong' }), 60_000);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/refused these credentials \(16 UNAUTHENTICATED: bad API key\); check TEMPORAL_API_KEY/);
  });
});
