/**
 * A real S3 server for the store's tests and its benchmark: SeaweedFS (`weed server -s3`), built
 * once per machine by `npm run setup`, on free ports and a temporary folder, with one bucket.
 * Without the binary, tests skip with a message, unless `ALLOT_REQUIRE_S3=1` (CI), where they fail.
 *
 * The server runs under `sh`, which kills it when its standard input closes: `stop()` closes it,
 * and so does the death of the process that started it, however it dies, so no server outlives
 * its test worker.
 */
import { CreateBucketCommand, DeleteObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { seaweedBinary } from '../../scripts/seaweedfs';
import { freePort } from './cli';

/** A running S3 server with one empty bucket. */
export interface S3Server {
  /** `http://127.0.0.1:<port>`. */
  endpoint: string;
  /** What the AWS SDK (and allot's S3 store) needs to reach it: endpoint, region, credentials. */
  env: Record<string, string>;
  /** The bucket created for the caller. */
  bucket: string;
  /** Stops the server and removes its data. */
  stop(): Promise<void>;
}

const NOT_INSTALLED = 'SeaweedFS is not installed: run `npm run setup`';

/** Why S3 tests should skip (the binary is missing), or undefined when they run (it is there, or CI requires it). */
export function s3SkipReason(): string | undefined {
  if (existsSync(seaweedBinary()) || process.env.ALLOT_REQUIRE_S3 === '1') return undefined;
  return `${NOT_INSTALLED}; skipping the tests against a real S3 server (ALLOT_REQUIRE_S3=1 makes this a failure)`;
}

/** The server exited before it answered (for one, a port it needs was taken meanwhile). */
class ServerExited extends Error {}

/** Starts SeaweedFS's S3 gateway (with its master, volume server and filer) and creates a bucket. */
export async function startS3Server(): Promise<S3Server> {
  const binary = seaweedBinary();
  if (!existsSync(binary)) throw new Error(`${NOT_INSTALLED} (ALLOT_REQUIRE_S3=1 requires it)`);
  // A port free when chosen can be taken before the server binds it: then try other ports.
  for (let attempt = 1; ; attempt++) {
    try {
      return await startOnFreePorts(binary);
    } catch (err) {
      if (!(err instanceof ServerExited) || attempt >= 3) throw err;
    }
  }
}

async function startOnFreePorts(binary: string): Promise<S3Server> {
  const ports = new Set<number>();
  while (ports.size < 8) ports.add(await freePort());
  const [master, masterGrpc, volume, volumeGrpc, filer, filerGrpc, s3, s3Grpc] = [...ports];
  const dir = mkdtempSync(path.join(tmpdir(), 'allot-seaweedfs-'));
  const args = [
    'server',
    `-dir=${dir}`,
    '-ip=127.0.0.1',
    '-ip.bind=127.0.0.1',
    `-master.port=${master}`,
    `-master.port.grpc=${masterGrpc}`,
    '-master.telemetry=false',
    `-volume.port=${volume}`,
    `-volume.port.grpc=${volumeGrpc}`,
    '-filer',
    `-filer.port=${filer}`,
    `-filer.port.grpc=${filerGrpc}`,
    '-s3',
    `-s3.port=${s3}`,
    `-s3.port.grpc=${s3Grpc}`,
    '-s3.port.iceberg=0',
    '-s3.port.lance=0',
  ];
  // `sh` runs the server and a reader of its own standard input; when that input ends (stop(), or
  // the death of this process), the reader kills the server (its data is thrown away: a graceful
  // stop takes half a minute).
  // (An asynchronous command's input is /dev/null unless redirected, hence descriptor 3.)
  const script =
    'exec 3<&0; weed="$1"; shift; "$weed" "$@" 3<&- & w=$!; (cat <&3 >/dev/null; kill -KILL $w 2>/dev/null) & wait $w';
  const child = spawn('sh', ['-c', script, 'sh', binary, ...args], {
    cwd: dir,
    detached: true,
    stdio: ['pipe', 'ignore', 'pipe'],
  });
  let output = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    output = (output + chunk.toString('utf8')).slice(-2_000);
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const killGroup = (): void => {
    try {
      if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
    } catch {
      // Already gone.
    }
  };
  process.once('exit', killGroup);
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    child.stdin?.end();
    const timer = setTimeout(killGroup, 5_000);
    await exited;
    clearTimeout(timer);
    process.off('exit', killGroup);
    rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
  };

  const endpoint = `http://127.0.0.1:${s3}`;
  const env = {
    AWS_ENDPOINT_URL: endpoint,
    AWS_REGION: 'us-east-1',
    // Without an S3 configuration SeaweedFS accepts any credentials; the SDK insists on some.
    AWS_ACCESS_KEY_ID: 'allot-test',
    AWS_SECRET_ACCESS_KEY: 'allot-test-secret',
  };
  const bucket = 'allot-test';
  const client = new S3Client({
    endpoint,
    region: env.AWS_REGION,
    forcePathStyle: true,
    credentials: { accessKeyId: env.AWS_ACCESS_KEY_ID, secretAccessKey: env.AWS_SECRET_ACCESS_KEY },
    maxAttempts: 1,
  });
  try {
    // Ready once a bucket can be created and written (the volume server registers after S3 answers).
    const deadline = Date.now() + 60_000;
    let created = false;
    for (;;) {
      if (child.exitCode !== null || child.signalCode !== null)
        throw new ServerExited(`weed server exited before it answered: ${output.trim() || '(no output)'}`);
      try {
        if (!created) await client.send(new CreateBucketCommand({ Bucket: bucket }));
        created = true;
        await client.send(new PutObjectCommand({ Bucket: bucket, Key: 'probe', Body: 'probe' }));
        await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: 'probe' }));
        break;
      } catch (err) {
        if (Date.now() > deadline)
          throw new Error(`SeaweedFS did not accept a write within 60 s: ${(err as Error).message}; ${output.trim()}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  } catch (err) {
    await stop();
    throw err;
  } finally {
    client.destroy();
  }
  return { endpoint, env, bucket, stop };
}
