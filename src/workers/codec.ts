/**
 * Payload encryption for Temporal: an AES-256-GCM `PayloadCodec` whose key comes from the
 * environment, so that step options (commands, environment values, secrets among them), results
 * and the pool's state are stored by Temporal as ciphertext. See docs/security.md.
 *
 * ```sh
 * export ALLOT_CODEC_KEY=$(openssl rand -base64 32)   # the same key for every worker, agent and CLI
 * npx allot worker                                    # payloads are now encrypted
 * npx allot codec-server --ui http://localhost:8233   # lets the Temporal UI show them decrypted
 * ```
 *
 * The wire format is that of Temporal's encryption samples: metadata `encoding: binary/encrypted`
 * and `encryption-key-id`, data `IV (12 bytes) ‖ ciphertext ‖ GCM tag (16 bytes)`, the plaintext
 * being the protobuf-encoded original payload.
 *
 * Workers also get an {@link UndecodablePayloadGuard}: a payload sent from outside allot in a form
 * no allot process writes (an unknown encoding, JSON that does not parse) reaches its handler as
 * an empty value, which the handler rejects, instead of failing the workflow task again and again.
 */
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import type { DataConverter, Payload, PayloadCodec, SerializationContext } from '@temporalio/common';
import { temporal } from '@temporalio/proto';

/** The variable holding the key: 32 random bytes, base64 or hex. */
export const CODEC_KEY_ENV = 'ALLOT_CODEC_KEY';
/** Keys used before the current one (comma-separated), still accepted for decryption after a rotation. */
export const CODEC_PREVIOUS_KEYS_ENV = 'ALLOT_CODEC_PREVIOUS_KEYS';
/** `encoding` of an encrypted payload. */
export const ENCRYPTED_ENCODING = 'binary/encrypted';
/** Metadata naming the key a payload was encrypted with. */
export const KEY_ID_METADATA = 'encryption-key-id';

const IV_BYTES = 12;
const TAG_BYTES = 16;
const KEY_BYTES = 32;
const utf8 = new TextEncoder();
const fromUtf8 = new TextDecoder();

/** A key that is missing, malformed or of the wrong size; the message never contains the key. */
export class CodecKeyError extends Error {
  readonly code = 'InvalidCodecKey';
  constructor(message: string) {
    super(message);
    this.name = 'CodecKeyError';
  }
}

/** A payload that cannot be decrypted here: encrypted with a key this process lacks, or altered. */
export class PayloadDecryptionError extends Error {
  readonly code = 'PayloadDecryptionFailed';
  constructor(
    message: string,
    /** Id of the key the payload names. */
    readonly keyId: string,
  ) {
    super(message);
    this.name = 'PayloadDecryptionError';
  }
}

/** A key and its public id (a hash prefix: safe to print and to store beside the ciphertext). */
export interface CodecKey {
  id: string;
  key: Buffer;
}

/** The id of a key: `sha256:` and 16 hex digits of its SHA-256. */
export function codecKeyId(key: Buffer): string {
  return `sha256:${createHash('sha256').update(key).digest('hex').slice(0, 16)}`;
}

/**
 * Parses a key given as base64 (44 characters, `openssl rand -base64 32`) or hex (64 characters,
 * `openssl rand -hex 32`). `name` names its source in errors.
 */
export function parseCodecKey(text: string, name = CODEC_KEY_ENV): CodecKey {
  const value = text.trim();
  let key: Buffer | undefined;
  if (/^([0-9a-fA-F]{2})+$/.test(value)) key = Buffer.from(value, 'hex');
  else if (/^[A-Za-z0-9+/_-]+={0,2}$/.test(value)) key = Buffer.from(value, 'base64');
  if (!key || key.length !== KEY_BYTES) {
    const got = key ? `${key.length} bytes` : `${value.length} characters that are neither base64 nor hex`;
    throw new CodecKeyError(
      `${name} must be ${KEY_BYTES} random bytes as base64 (44 characters) or hex (64 characters), got ${got}; ` +
        'make one with `openssl rand -base64 32`',
    );
  }
  return { id: codecKeyId(key), key };
}

/** Makes a new random key, base64. */
export function generateCodecKey(): string {
  return randomBytes(KEY_BYTES).toString('base64');
}

/**
 * AES-256-GCM encryption of payloads. Encrypts with the current key; decrypts with the current key
 * or a previous one, chosen by the payload's key id. Payloads that are not encrypted pass through
 * decoding unchanged (histories written before the codec was turned on stay readable).
 */
export class AesGcmCodec implements PayloadCodec {
  private readonly byId: Map<string, Buffer>;

  constructor(
    private readonly current: CodecKey,
    previous: readonly CodecKey[] = [],
  ) {
    this.byId = new Map([...previous, current].map((k) => [k.id, k.key]));
  }

  /** Id of the key new payloads are encrypted with. */
  get keyId(): string {
    return this.current.id;
  }

  async encode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((p) => this.encrypt(p));
  }

  async decode(payloads: Payload[]): Promise<Payload[]> {
    return payloads.map((p) => this.decrypt(p));
  }

  /** Encrypts one payload. */
  encrypt(payload: Payload): Payload {
    const plaintext = temporal.api.common.v1.Payload.encode(payload).finish();
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.current.key, iv);
    const data = Buffer.concat([iv, cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
    return {
      metadata: { encoding: utf8.encode(ENCRYPTED_ENCODING), [KEY_ID_METADATA]: utf8.encode(this.current.id) },
      data: new Uint8Array(data),
    };
  }

  /** Decrypts one payload; returns it unchanged when it is not encrypted. */
  decrypt(payload: Payload): Payload {
    if (metadataText(payload, 'encoding') !== ENCRYPTED_ENCODING) return payload;
    const id = metadataText(payload, KEY_ID_METADATA) ?? '(none)';
    const key = this.byId.get(id);
    if (!key) {
      throw new PayloadDecryptionError(
        `a payload was encrypted with key ${id}, which this process does not have (its ${CODEC_KEY_ENV} is ${this.current.id}); ` +
          `give every worker, agent and client the same ${CODEC_KEY_ENV}, and keys retired by a rotation in ${CODEC_PREVIOUS_KEYS_ENV}`,
        id,
      );
    }
    const data = Buffer.from(payload.data ?? new Uint8Array());
    if (data.length < IV_BYTES + TAG_BYTES) {
      throw new PayloadDecryptionError(`an encrypted payload (key ${id}) is ${data.length} bytes: too short`, id);
    }
    try {
      const decipher = createDecipheriv('aes-256-gcm', key, data.subarray(0, IV_BYTES));
      decipher.setAuthTag(data.subarray(data.length - TAG_BYTES));
      const plaintext = Buffer.concat([
        decipher.update(data.subarray(IV_BYTES, data.length - TAG_BYTES)),
        decipher.final(),
      ]);
      return temporal.api.common.v1.Payload.decode(plaintext) as Payload;
    } catch {
      throw new PayloadDecryptionError(
        `an encrypted payload (key ${id}) failed authentication: it was altered, or was not written with this key`,
        id,
      );
    }
  }
}

/** The encodings of allot's own payloads (the default payload converter's, plus encryption). */
const READABLE = new Set(['binary/null', 'binary/plain', 'json/plain', ENCRYPTED_ENCODING]);

/** Why a payload was dropped, for the worker's log. */
export interface DroppedPayload {
  reason: string;
  /** Workflow or activity the payload was for, where the SDK says. */
  context?: SerializationContext;
}

/**
 * Turns payloads that no allot process writes (sent by hand, e.g. with `temporal workflow signal
 * --input-meta encoding=...`) into an empty value, so that the handler they were sent to rejects
 * or drops them with a clear message. Without it, one such signal fails the pool's workflow task on
 * every retry: the pool answers nothing until the history is reset.
 *
 * Encrypted payloads are left alone: one that cannot be decrypted must stop the workflow task,
 * loudly, rather than be read as empty (it may be the pool's own state, read with the wrong key).
 */
export class UndecodablePayloadGuard implements PayloadCodec {
  constructor(private readonly onDrop: (dropped: DroppedPayload) => void = () => undefined) {}

  async encode(payloads: Payload[]): Promise<Payload[]> {
    return payloads;
  }

  async decode(payloads: Payload[], context?: SerializationContext): Promise<Payload[]> {
    return payloads.map((p) => {
      const reason = unreadable(p);
      if (reason === undefined) return p;
      this.onDrop({ reason, ...(context ? { context } : {}) });
      return { metadata: { encoding: utf8.encode('binary/null') } };
    });
  }
}

/** Why allot's payload converter could not read a payload, or `undefined` if it can. */
export function unreadable(payload: Payload): string | undefined {
  const encoding = metadataText(payload, 'encoding');
  if (encoding === undefined) return 'it has no encoding';
  if (!READABLE.has(encoding)) return `its encoding ${JSON.stringify(encoding.slice(0, 100))} is not one allot reads`;
  if (encoding !== 'json/plain') return undefined;
  try {
    JSON.parse(fromUtf8.decode(payload.data ?? new Uint8Array()));
    return undefined;
  } catch (err) {
    return `it says json/plain but is not JSON (${(err as Error).message})`;
  }
}

function metadataText(payload: Payload, key: string): string | undefined {
  const value = payload.metadata?.[key];
  return value === undefined || value === null ? undefined : fromUtf8.decode(value);
}

/** Reads the codec from the environment: `undefined` when `ALLOT_CODEC_KEY` is not set (or empty). */
export function codecFromEnv(env: NodeJS.ProcessEnv = process.env): AesGcmCodec | undefined {
  const current = env[CODEC_KEY_ENV]?.trim();
  if (!current) return undefined;
  const previous = (env[CODEC_PREVIOUS_KEYS_ENV] ?? '')
    .split(',')
    .map((k) => k.trim())
    .filter((k) => k !== '')
    .map((k, i) => parseCodecKey(k, `${CODEC_PREVIOUS_KEYS_ENV} (key ${i + 1})`));
  return new AesGcmCodec(parseCodecKey(current), previous);
}

/** The data converter of clients: encryption when `ALLOT_CODEC_KEY` is set, else Temporal's default. */
export function clientDataConverter(env: NodeJS.ProcessEnv = process.env): DataConverter | undefined {
  const codec = codecFromEnv(env);
  return codec ? { payloadCodecs: [codec] } : undefined;
}

/**
 * The data converter of workers: the guard against unreadable payloads, then encryption when
 * `ALLOT_CODEC_KEY` is set. (Decoding runs the codecs last to first: decryption, then the guard.)
 */
export function workerDataConverter(
  env: NodeJS.ProcessEnv = process.env,
  onDrop: (dropped: DroppedPayload) => void = warnDropped,
): DataConverter {
  const codec = codecFromEnv(env);
  return { payloadCodecs: [new UndecodablePayloadGuard(onDrop), ...(codec ? [codec] : [])] };
}

/** Logs a dropped payload on stderr, naming the workflow or activity it was for. */
export function warnDropped({ reason, context }: DroppedPayload): void {
  const target =
    context?.type === 'workflow'
      ? ` for workflow ${context.workflowId}`
      : context?.type === 'activity'
        ? ` for activity ${context.activityId ?? ''}`
        : '';
  process.stderr.write(
    `[warn] dropped a payload${target}: ${reason}; its handler receives no value (was it sent by hand?)\n`,
  );
}
