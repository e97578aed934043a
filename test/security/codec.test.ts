/**
 * The AES-256-GCM payload codec and the guard against unreadable payloads, on their own.
 */
import { defaultPayloadConverter } from '@temporalio/common';
import type { Payload } from '@temporalio/common';
import { describe, expect, it } from 'vitest';
import {
  AesGcmCodec,
  CodecKeyError,
  ENCRYPTED_ENCODING,
  PayloadDecryptionError,
  UndecodablePayloadGuard,
  clientDataConverter,
  codecFromEnv,
  generateCodecKey,
  parseCodecKey,
  workerDataConverter,
} from '../../src/workers/codec';

const SECRET = 'hunter2-very-secret-token';
const key = parseCodecKey(generateCodecKey());
const codec = new AesGcmCodec(key);
const text = (p: Payload): string => Buffer.from(p.data ?? new Uint8Array()).toString('latin1');
const encoding = (p: Payload): string => Buffer.from(p.metadata?.encoding ?? new Uint8Array()).toString();
const json = (value: unknown): Payload => defaultPayloadConverter.toPayload(value);

describe('AesGcmCodec', () => {
  it('round-trips payloads, and the stored form holds no plaintext', async () => {
    const values = [{ env: { TOKEN: SECRET } }, 'plain text', 42, null, [1, 2, 3]];
    const payloads = values.map(json);
    const encoded = await codec.encode(payloads);
    for (const p of encoded) {
      expect(encoding(p)).toBe(ENCRYPTED_ENCODING);
      expect(text(p)).not.toContain(SECRET);
      expect(text(p)).not.toContain('json/plain');
    }
    const decoded = await codec.decode(encoded);
    expect(decoded.map((p) => defaultPayloadConverter.fromPayload(p))).toEqual(values);
  });

  it('encrypts the same value differently every time (a fresh IV per payload)', async () => {
    const [a, b] = await codec.encode([json(SECRET), json(SECRET)]);
    expect(text(a as Payload)).not.toEqual(text(b as Payload));
  });

  it('refuses a payload encrypted with another key, naming both key ids but neither key', async () => {
    const other = parseCodecKey(generateCodecKey());
    const [encrypted] = await new AesGcmCodec(other).encode([json(SECRET)]);
    const error = await codec.decode([encrypted as Payload]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(PayloadDecryptionError);
    expect((error as Error).message).toContain(other.id);
    expect((error as Error).message).toContain(key.id);
    expect((error as Error).message).not.toContain(other.key.toString('base64'));
  });

  it('decrypts with a previous key after a rotation, and encrypts with the new one', async () => {
    const old = parseCodecKey(generateCodecKey());
    const [before] = await new AesGcmCodec(old).encode([json(SECRET)]);
    const rotated = new AesGcmCodec(key, [old]);
    const [decoded] = await rotated.decode([before as Payload]);
    expect(defaultPayloadConverter.fromPayload(decoded as Payload)).toBe(SECRET);
    const [after] = await rotated.encode([json(SECRET)]);
    expect(Buffer.from((after as Payload).metadata?.['encryption-key-id'] ?? []).toString()).toBe(key.id);
  });

  it('detects a payload altered in storage', async () => {
    const [encrypted] = await codec.encode([json(SECRET)]);
    const data = Buffer.from((encrypted as Payload).data ?? []);
    data[20] = (data[20] ?? 0) ^ 1;
    await expect(codec.decode([{ ...encrypted, data }])).rejects.toThrow(/failed authentication/);
  });

  it('passes payloads that are not encrypted through (histories from before the codec)', async () => {
    const [decoded] = await codec.decode([json({ a: 1 })]);
    expect(defaultPayloadConverter.fromPayload(decoded as Payload)).toEqual({ a: 1 });
  });
});

describe('codec keys', () => {
  it.each([
    ['too short', 'c2hvcnQ=', /got 5 bytes/],
    ['neither base64 nor hex', 'not a key!', /neither base64 nor hex/],
    ['hex of 31 bytes', 'ab'.repeat(31), /got 31 bytes/],
  ])('rejects a key that is %s, saying how to make one', (_, value, why) => {
    expect(() => parseCodecKey(value)).toThrow(CodecKeyError);
    expect(() => parseCodecKey(value)).toThrow(why);
    expect(() => parseCodecKey(value)).toThrow(/openssl rand -base64 32/);
  });

  it('takes base64 and hex forms of the same key as the same key', () => {
    const raw = Buffer.alloc(32, 7);
    expect(parseCodecKey(raw.toString('base64')).id).toBe(parseCodecKey(raw.toString('hex')).id);
  });

  it('is off without ALLOT_CODEC_KEY (or with it empty), and on with it', () => {
    expect(codecFromEnv({})).toBeUndefined();
    expect(codecFromEnv({ ALLOT_CODEC_KEY: ' ' })).toBeUndefined();
    expect(clientDataConverter({})).toBeUndefined();
    expect(codecFromEnv({ ALLOT_CODEC_KEY: generateCodecKey() })).toBeInstanceOf(AesGcmCodec);
    expect(workerDataConverter({ ALLOT_CODEC_KEY: generateCodecKey() }).payloadCodecs).toHaveLength(2);
    expect(workerDataConverter({}).payloadCodecs).toHaveLength(1);
  });

  it('names the variable of a bad previous key', () => {
    expect(() => codecFromEnv({ ALLOT_CODEC_KEY: generateCodecKey(), ALLOT_CODEC_PREVIOUS_KEYS: 'xx' })).toThrow(
      /ALLOT_CODEC_PREVIOUS_KEYS \(key 1\)/,
    );
  });
});

describe('UndecodablePayloadGuard', () => {
  const utf8 = (s: string): Uint8Array => new TextEncoder().encode(s);
  const dropped: string[] = [];
  const guard = new UndecodablePayloadGuard(({ reason }) => dropped.push(reason));

  it.each([
    ['an unknown encoding', { metadata: { encoding: utf8('binary/weird') }, data: utf8('x') }, /not one allot reads/],
    ['JSON that does not parse', { metadata: { encoding: utf8('json/plain') }, data: utf8('{"a":') }, /not JSON/],
    ['no encoding at all', { metadata: {}, data: utf8('{}') }, /no encoding/],
    [
      'protobuf, which allot never writes',
      { metadata: { encoding: utf8('json/protobuf') }, data: utf8('{}') },
      /not one/,
    ],
  ])('turns %s into an empty value and says why', async (_, payload: Payload, why) => {
    const [out] = await guard.decode([payload]);
    expect(defaultPayloadConverter.fromPayload(out as Payload)).toBeUndefined();
    expect(dropped.at(-1)).toMatch(why);
  });

  it('leaves readable and encrypted payloads alone', async () => {
    const [encrypted] = await codec.encode([json(SECRET)]);
    const inputs = [json({ ok: true }), json(undefined), encrypted as Payload];
    expect(await guard.decode(inputs)).toEqual(inputs);
  });
});
