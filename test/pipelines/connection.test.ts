/**
 * Connection settings come from the environment and the Temporal config file the way Temporal's
 * own tools read them (`@temporalio/envconfig`), so CI can keep them in secrets.
 */
import { writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { connectionSettings } from '../../src/workers/connection';
import { tempDir } from '../helpers/temp';

const saved = { ...process.env };
afterEach(() => {
  for (const key of Object.keys(process.env)) if (key.startsWith('TEMPORAL_')) delete process.env[key];
  Object.assign(process.env, saved);
});

function useEnv(vars: Record<string, string>): void {
  for (const key of Object.keys(process.env)) if (key.startsWith('TEMPORAL_')) delete process.env[key];
  Object.assign(process.env, vars);
}

describe('connectionSettings', () => {
  it('defaults to localhost:7233 and namespace default', () => {
    useEnv({ TEMPORAL_CONFIG_FILE: path.join(tmpdir(), 'no-such-temporal.toml') });
    const s = connectionSettings();
    expect(s.connectionOptions.address).toBe('localhost:7233');
    expect(s.namespace).toBe('default');
    expect(s.connectionOptions.apiKey).toBeUndefined();
  });

  it('reads address, namespace, API key and TLS settings from TEMPORAL_* variables', () => {
    const dir = tempDir('tls');
    const ca = path.join(dir, 'ca.pem');
    writeFileSync(ca, '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n');
    useEnv({
      TEMPORAL_ADDRESS: 'ml.a1b2c.tmprl.cloud:7233',
      TEMPORAL_NAMESPACE: 'ml.a1b2c',
      TEMPORAL_API_KEY: 'secret-key',
      TEMPORAL_TLS_SERVER_CA_CERT_PATH: ca,
      TEMPORAL_TLS_SERVER_NAME: 'temporal.internal',
    });
    const s = connectionSettings();
    expect(s.connectionOptions.address).toBe('ml.a1b2c.tmprl.cloud:7233');
    expect(s.namespace).toBe('ml.a1b2c');
    expect(s.connectionOptions.apiKey).toBe('secret-key');
    const tls = s.connectionOptions.tls as { serverNameOverride?: string; serverRootCACertificate?: Uint8Array };
    expect(tls.serverNameOverride).toBe('temporal.internal');
    expect(Buffer.from(tls.serverRootCACertificate ?? []).toString()).toContain('BEGIN CERTIFICATE');
  });

  it('reads a profile of the Temporal config file, with TLS on for an API key', () => {
    const dir = tempDir('profile');
    const file = path.join(dir, 'temporal.toml');
    writeFileSync(
      file,
      '[profile.prod]\naddress = "prod.example:7233"\nnamespace = "ml-prod"\napi_key = "from-profile"\n',
    );
    useEnv({ TEMPORAL_CONFIG_FILE: file, TEMPORAL_PROFILE: 'prod' });
    const s = connectionSettings();
    expect(s.connectionOptions.address).toBe('prod.example:7233');
    expect(s.namespace).toBe('ml-prod');
    expect(s.connectionOptions.apiKey).toBe('from-profile');
    expect(s.connectionOptions.tls).toBe(true);
  });

  it('takes an empty variable, as CI sets for a missing secret, as not set', () => {
    useEnv({
      TEMPORAL_ADDRESS: '127.0.0.1:7233',
      TEMPORAL_API_KEY: '',
      TEMPORAL_TLS_CLIENT_CERT_DATA: '',
      TEMPORAL_TLS_CLIENT_KEY_DATA: '',
      TEMPORAL_CONFIG_FILE: path.join(tmpdir(), 'no-such-temporal.toml'),
    });
    const s = connectionSettings();
    expect(s.connectionOptions.apiKey).toBeUndefined();
    expect(s.connectionOptions.tls).toBeUndefined();
  });
});
