/**
 * Figure 7, transfer: one artifact (1 GiB of random bytes by default) uploaded and downloaded
 * through allot's store, beside the same transfer by a native tool, in the same run:
 *
 * - S3 (a local SeaweedFS, started as the tests start it): allot's S3 store against `curl` signing
 *   with SigV4 (one stream each way), and against the AWS CLI (`aws s3 cp`, parallel parts) where
 *   it is installed;
 * - a folder (`file://`): allot's folder store against `cp`, and against `cp` then `sync` of the
 *   copy (the durability allot pays for).
 *
 * allot does more than the tools: it hashes every byte (sha256) and syncs a file before renaming it
 * into place, and its downloads record their parts so that they can resume. Each side runs `runs`
 * times, alternating, and the median counts.
 */
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, createWriteStream, mkdirSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { once } from 'node:events';
import { openStore } from '../../src/store';
import { s3SkipReason, startS3Server } from '../../test/helpers/s3-server';
import type { S3Server } from '../../test/helpers/s3-server';
import type { Load } from '../lib/stats';
import { LoadSampler, percentile, ratio, round } from '../lib/stats';

/** One direction of one route: allot's median beside a native tool's. */
export interface TransferRow {
  route: 'S3' | 'file';
  direction: 'upload' | 'download';
  /** The native tool, as a command a reader would recognise. */
  baseline: string;
  /** Median seconds over the runs. */
  allotSeconds: number;
  baselineSeconds: number;
  allotMiBps: number;
  baselineMiBps: number;
  /** allot seconds / baseline seconds (above 1: allot is slower). */
  ratio: number | null;
}

/** The figure. */
export interface TransferFigure {
  sizeMiB: number;
  runs: number;
  rows: TransferRow[];
  /** Routes that could not be measured, and why. */
  skipped: string[];
  load: Load;
}

/** Options of the figure. */
export interface TransferOptions {
  /** Size of the artifact, in MiB. @default 1024 */
  sizeMiB?: number;
  /** Measurements per side. @default 3 */
  runs?: number;
}

/** Measures the figure. */
export async function transferFigure(
  stage: (what: string) => void,
  { sizeMiB = 1024, runs = 3 }: TransferOptions = {},
): Promise<TransferFigure> {
  const dir = mkdtempSync(path.join(tmpdir(), 'allot-bench-transfer-'));
  const load = new LoadSampler();
  const rows: TransferRow[] = [];
  const skipped: string[] = [];
  let server: S3Server | undefined;
  try {
    stage(`transfer: writing ${sizeMiB} MiB of random bytes`);
    const source = path.join(dir, 'artifact.bin');
    const sha256 = await writeRandomFile(source, sizeMiB);
    const bytes = sizeMiB * 2 ** 20;
    const measure = (route: TransferRow['route'], direction: TransferRow['direction'], baseline: string) =>
      pairs(runs, bytes, (allot, native) => rows.push({ route, direction, baseline, ...allot, ...native }));

    stage(`transfer: file:// against cp, and cp then sync, ${runs} runs each way`);
    const folder = openStore(`file://${path.join(dir, 'store')}`);
    const inStore = (name: string): string => path.join(dir, 'store', name);
    mkdirSync(path.join(dir, 'store'), { recursive: true });
    const outDir = path.join(dir, 'out');
    mkdirSync(outDir);
    const upload = (): Promise<void> => checked(folder.putFile('allot.bin', source), sha256);
    const download = (): Promise<void> =>
      fresh(path.join(outDir, 'allot.bin'), (to) => checked(folder.getFile('allot.bin', to), sha256));
    await measure('file', 'upload', 'cp')(upload, () => run('cp', [source, inStore('cp.bin')]));
    await measure(
      'file',
      'download',
      'cp',
    )(download, () => fresh(path.join(outDir, 'cp.bin'), (to) => run('cp', [inStore('cp.bin'), to])));
    // allot syncs what it writes before renaming it into place; `sync FILE` is that part of its work.
    const cpSync = (from: string, to: string): Promise<void> =>
      run('sh', ['-c', 'cp "$1" "$2" && sync "$2"', 'sh', from, to]);
    await measure('file', 'upload', 'cp; sync')(upload, () => cpSync(source, inStore('cp.bin')));
    await measure(
      'file',
      'download',
      'cp; sync',
    )(download, () => fresh(path.join(outDir, 'cp.bin'), (to) => cpSync(inStore('cp.bin'), to)));
    rmSync(path.join(dir, 'store'), { recursive: true, force: true });

    const skip = s3SkipReason();
    if (skip) skipped.push(`S3: ${skip}`);
    else {
      stage('transfer: starting SeaweedFS');
      server = await startS3Server();
      const s3 = openStore(`s3://${server.bucket}/bench`, server.env);
      const url = (key: string): string => `${server?.endpoint}/${server?.bucket}/bench/${key}`;
      const curl = ['-sS', '--fail', '--aws-sigv4', `aws:amz:${server.env.AWS_REGION}:s3`];
      curl.push('--user', `${server.env.AWS_ACCESS_KEY_ID}:${server.env.AWS_SECRET_ACCESS_KEY}`);
      stage(`transfer: S3 against curl, ${runs} runs each way`);
      await measure(
        'S3',
        'upload',
        'curl -T (SigV4)',
      )(
        () => checked(s3.putFile('allot.bin', source), sha256),
        () => run('curl', [...curl, '-T', source, url('curl.bin')]),
      );
      await measure(
        'S3',
        'download',
        'curl -o (SigV4)',
      )(
        () => fresh(path.join(outDir, 'allot.bin'), (to) => checked(s3.getFile('allot.bin', to), sha256)),
        () => fresh(path.join(outDir, 'curl.bin'), (to) => run('curl', [...curl, '-o', to, url('curl.bin')])),
      );
      const aws = awsCli(server, dir);
      if (!(await aws.available())) skipped.push('S3 against the AWS CLI: `aws` is not installed');
      else {
        stage(`transfer: S3 against the AWS CLI, ${runs} runs each way`);
        const s3uri = (key: string): string => `s3://${server?.bucket}/bench/${key}`;
        await measure(
          'S3',
          'upload',
          'aws s3 cp',
        )(
          () => checked(s3.putFile('allot.bin', source), sha256),
          () => aws.cp(source, s3uri('aws.bin')),
        );
        await measure(
          'S3',
          'download',
          'aws s3 cp',
        )(
          () => fresh(path.join(outDir, 'allot.bin'), (to) => checked(s3.getFile('allot.bin', to), sha256)),
          () => fresh(path.join(outDir, 'aws.bin'), (to) => aws.cp(s3uri('aws.bin'), to)),
        );
      }
      await s3.removePrefix('');
    }
  } finally {
    await server?.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  return { sizeMiB, runs, rows, skipped, load: load.stop() };
}

/** Table rows (figure, allot, native baseline, ratio, load) in the form of `npm run bench`'s table. */
export function transferRows(f: TransferFigure): string[][] {
  const rate = (mibps: number, seconds: number): string => `${mibps} MiB/s (${seconds} s)`;
  const rows = f.rows.map((r) => [
    `7 ${r.route} ${r.direction}, ${f.sizeMiB} MiB (${r.baseline})`,
    rate(r.allotMiBps, r.allotSeconds),
    rate(r.baselineMiBps, r.baselineSeconds),
    r.ratio === null ? '-' : `${r.ratio}x`,
    `${f.load.mean}`,
  ]);
  for (const why of f.skipped) rows.push([`7 skipped: ${why}`, '-', '-', '-', '']);
  return rows;
}

/** Runs an allot side and a native side `runs` times, alternating which goes first, and reports medians. */
function pairs(
  runs: number,
  bytes: number,
  report: (
    allot: Pick<TransferRow, 'allotSeconds' | 'allotMiBps'>,
    native: Pick<TransferRow, 'baselineSeconds' | 'baselineMiBps' | 'ratio'>,
  ) => void,
) {
  return async (allot: () => Promise<unknown>, native: () => Promise<unknown>): Promise<void> => {
    const times: { allot: number[]; native: number[] } = { allot: [], native: [] };
    const timed = async (side: 'allot' | 'native'): Promise<void> => {
      const start = performance.now();
      await (side === 'allot' ? allot() : native());
      times[side].push((performance.now() - start) / 1000);
    };
    for (let i = 0; i < runs; i++) {
      const order: ('allot' | 'native')[] = i % 2 === 0 ? ['allot', 'native'] : ['native', 'allot'];
      for (const side of order) await timed(side);
    }
    const a = percentile(times.allot, 50);
    const n = percentile(times.native, 50);
    const mibps = (seconds: number): number => round(bytes / 2 ** 20 / seconds, 0);
    report(
      { allotSeconds: round(a, 2), allotMiBps: mibps(a) },
      { baselineSeconds: round(n, 2), baselineMiBps: mibps(n), ratio: ratio(a, n) },
    );
  };
}

/** Awaits an allot transfer and checks its sha256 against the source's. */
async function checked(transfer: Promise<{ sha256: string }>, sha256: string): Promise<void> {
  const { sha256: got } = await transfer;
  if (got !== sha256) throw new Error(`transfer: sha256 ${got} where the source has ${sha256}`);
}

/** Runs `transfer` into `file` with nothing there before (no partial download to resume), then removes it. */
async function fresh(file: string, transfer: (file: string) => Promise<void>): Promise<void> {
  rmSync(file, { force: true });
  rmSync(`${file}.partial`, { force: true });
  rmSync(`${file}.partial.json`, { force: true });
  await transfer(file);
  if (statSync(file).size === 0) throw new Error(`transfer: ${file} is empty`);
}

/** Writes `sizeMiB` MiB of random bytes to `file`; resolves with their sha256. */
async function writeRandomFile(file: string, sizeMiB: number): Promise<string> {
  const hash = createHash('sha256');
  const out = createWriteStream(file);
  for (let i = 0; i < sizeMiB; i++) {
    const chunk = randomBytes(2 ** 20);
    hash.update(chunk);
    if (!out.write(chunk)) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
  // Read it once, so that every side starts with the file in the page cache.
  for await (const chunk of createReadStream(file)) void chunk;
  return hash.digest('hex');
}

/** The AWS CLI against the server, with its own empty configuration (no user settings, no profile). */
function awsCli(
  server: S3Server,
  dir: string,
): { available(): Promise<boolean>; cp(from: string, to: string): Promise<void> } {
  const env = {
    ...server.env,
    AWS_DEFAULT_REGION: server.env.AWS_REGION ?? 'us-east-1',
    AWS_CONFIG_FILE: path.join(dir, 'aws-config'),
    AWS_SHARED_CREDENTIALS_FILE: path.join(dir, 'aws-credentials'),
  };
  return {
    available: () =>
      run('aws', ['--version'], env).then(
        () => true,
        () => false,
      ),
    cp: (from, to) => run('aws', ['--endpoint-url', server.endpoint, 's3', 'cp', '--only-show-errors', from, to], env),
  };
}

/** Runs a command to completion; rejects with its output when it fails. */
function run(command: string, args: string[], env?: Record<string, string>): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...env } });
    let errors = '';
    child.stderr?.on('data', (chunk: Buffer) => (errors = (errors + chunk.toString()).slice(-1_000)));
    child.once('error', reject);
    child.once('exit', (code) =>
      code === 0 ? resolve() : reject(new Error(`${command} exited with ${code}: ${errors.trim()}`)),
    );
  });
}
