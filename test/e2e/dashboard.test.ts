/**
 * The allot dashboard shows data for every panel: a real Prometheus scrapes `allot dev
 * --metrics-port`, steps run through it (one succeeds, one fails, one is preempted and waits in
 * the queue, one holds a GPU with a fake nvidia-smi reporting its utilization), then every panel
 * target of the dashboard's JSON, with its variables set as Grafana would set them, must return at
 * least one series from Prometheus's HTTP API.
 *
 * Prometheus comes from Debian (`apt-get install -y prometheus`; `.ci/run` installs it and sets
 * `ALLOT_REQUIRE_PROMETHEUS=1`, which turns a missing binary into a failure). Without it and
 * without that variable, the test is skipped with a note. Set `PROMETHEUS_PATH` to use another
 * build.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, allot, freePort, startAllot } from '../helpers/cli';
import { eventually } from '../helpers/harness';
import { tempDir } from '../helpers/temp';

const DASHBOARD = path.join(REPO_ROOT, 'deploy', 'grafana', 'dashboards', 'allot.json');
/** A fake nvidia-smi for 8 A100s: the agent samples the utilization of its steps' GPUs from it. */
const FAKE_NVIDIA_SMI = path.join(REPO_ROOT, 'test', 'fixtures', 'nvidia-smi', 'a100x8');
/** What Grafana's interval variables become in the queries: the whole test fits in the window. */
const INTERVALS: Record<string, string> = { __rate_interval: '2m', __interval: '15s', __range: '2m' };

function findPrometheus(): string | undefined {
  if (process.env.PROMETHEUS_PATH) return process.env.PROMETHEUS_PATH;
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    const candidate = path.join(dir, 'prometheus');
    if (dir !== '' && existsSync(candidate)) return candidate;
  }
  return undefined;
}

const PROMETHEUS = findPrometheus();
const REQUIRED = process.env.ALLOT_REQUIRE_PROMETHEUS === '1';
if (!PROMETHEUS && !REQUIRED) {
  process.stderr.write(
    '[dashboard test] skipped: no prometheus on PATH (install it with `apt-get install -y prometheus`, or set PROMETHEUS_PATH)\n',
  );
}

/** A panel target of the dashboard, its variables not yet substituted. */
interface Target {
  panel: string;
  refId: string;
  expr: string;
}

interface Dashboard {
  panels: { title: string; targets?: { refId: string; expr: string }[] }[];
  templating: { list: { name: string; allValue?: string; definition?: string }[] };
}

const dashboard = JSON.parse(readFileSync(DASHBOARD, 'utf8')) as Dashboard;

/** `expr` with the dashboard's variables as Grafana sets them: every pool, fixed windows. */
function substitute(expr: string): string {
  const values: Record<string, string> = { ...INTERVALS };
  for (const v of dashboard.templating.list) values[v.name] = v.allValue ?? '.*';
  return expr.replace(/\$\{(\w+)\}|\$(\w+)/g, (whole, braced: string | undefined, bare: string | undefined) => {
    const name = braced ?? bare ?? '';
    return values[name] ?? whole;
  });
}

let prometheus: ChildProcess | undefined;
let promUrl: string;
let dev: { child: ChildProcess; output: () => string } | undefined;
let env: NodeJS.ProcessEnv;

/** The series an instant query returns. */
async function query(expr: string): Promise<unknown[]> {
  const res = await fetch(`${promUrl}/api/v1/query?query=${encodeURIComponent(expr)}`);
  const body = (await res.json()) as { status: string; error?: string; data?: { result: unknown[] } };
  if (body.status !== 'success') throw new Error(`query ${expr} failed: ${body.error ?? res.status}`);
  return body.data?.result ?? [];
}

/** `allot submit --no-wait --json ARGS`; returns the step's workflow id. */
async function submit(args: string[]): Promise<string> {
  const r = await allot(['submit', '--no-wait', '--json', ...args], env);
  expect(r.code, r.stderr).toBe(0);
  return (JSON.parse(r.stdout) as { workflowId: string }).workflowId;
}

/** Whether `expr` has a series now, as Prometheus last scraped it. */
async function shows(expr: string): Promise<true | undefined> {
  return (await query(expr)).length > 0 ? true : undefined;
}

async function startPrometheus(binary: string, metricsPort: number): Promise<void> {
  const work = tempDir('prometheus');
  const config = path.join(work, 'prometheus.yml');
  writeFileSync(
    config,
    [
      'global:',
      '  scrape_interval: 1s',
      'scrape_configs:',
      '  - job_name: allot-dev',
      '    static_configs:',
      `      - targets: ['127.0.0.1:${metricsPort}']`,
      '',
    ].join('\n'),
  );
  const port = await freePort();
  promUrl = `http://127.0.0.1:${port}`;
  let output = '';
  prometheus = spawn(
    binary,
    [
      `--config.file=${config}`,
      `--storage.tsdb.path=${path.join(work, 'data')}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--log.level=warn',
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  prometheus.stdout?.on('data', (d: Buffer) => (output += d.toString()));
  prometheus.stderr?.on('data', (d: Buffer) => (output += d.toString()));
  await eventually(
    async () => {
      if (prometheus?.exitCode !== null) throw new Error(`prometheus exited: ${output}`);
      return (await fetch(`${promUrl}/-/ready`)).ok ? true : undefined;
    },
    30_000,
    'Prometheus to be ready',
  );
}

beforeAll(async () => {
  if (!PROMETHEUS) {
    if (REQUIRED)
      throw new Error('ALLOT_REQUIRE_PROMETHEUS=1 but no prometheus on PATH: `apt-get install -y prometheus`');
    return;
  }
  const work = tempDir('dashboard');
  const [port, uiPort, metricsPort] = [await freePort(), await freePort(), await freePort()];
  env = { TEMPORAL_ADDRESS: `127.0.0.1:${port}` };
  await startPrometheus(PROMETHEUS, metricsPort);
  dev = await startAllot(
    [
      'dev',
      ...['--gpus', '2', '--gpu-model', 'A100', '--cpu', '8', '--memory', '16Gi', '--node-id', 'dash-node'],
      ...['--data-dir', path.join(work, 'dev'), '--port', String(port), '--ui-port', String(uiPort)],
      ...['--metrics-port', String(metricsPort)],
    ],
    /allot dev is up/,
    { PATH: [FAKE_NVIDIA_SMI, process.env.PATH ?? ''].join(path.delimiter) },
  );
}, 150_000);

afterAll(async () => {
  if (dev) {
    const exited = new Promise((r) => dev?.child.once('exit', r));
    dev.child.kill('SIGTERM');
    const timer = setTimeout(() => dev?.child.kill('SIGKILL'), 30_000);
    await exited;
    clearTimeout(timer);
  }
  if (prometheus && prometheus.exitCode === null) {
    const exited = new Promise((r) => prometheus?.once('exit', r));
    prometheus.kill('SIGTERM');
    await exited;
  }
}, 60_000);

describe.skipIf(!PROMETHEUS && !REQUIRED)('the allot dashboard', () => {
  const targets: Target[] = dashboard.panels.flatMap((p) =>
    (p.targets ?? []).map((t) => ({ panel: p.title, refId: t.refId, expr: t.expr })),
  );

  it('has panel targets, and no variable the test does not set', () => {
    expect(targets.length).toBeGreaterThanOrEqual(7);
    for (const t of targets) expect(substitute(t.expr), `${t.panel} ${t.refId}`).not.toContain('$');
  });

  it('shows at least one series for every panel target once steps have run', async () => {
    const common = ['--cpu', '500m', '--memory', '256Mi'];
    // Outcomes: one step succeeds, one fails.
    const ok = await allot(['submit', '--name', 'ok', ...common, '--', 'true'], env);
    expect(ok.code, ok.stderr).toBe(0);
    const broken = await allot(['submit', '--name', 'broken', ...common, '--', 'sh', '-c', 'exit 3'], env);
    expect(broken.code).toBe(3);
    // A preemptible step takes both GPUs; an urgent one takes one of them back: the first is
    // preempted and waits in the queue while the urgent one runs on a GPU the fake nvidia-smi shows busy.
    await submit([
      ...['--name', 'victim', '--team', 'batch', '--gpu', '2', '--preemptible', '--priority', '-10'],
      ...['--grace-period', '1', ...common, '--', 'sleep', '90'],
    ]);
    await eventually(() => shows('allot_pool_team_gpus_allocated{team="batch"} == 2'), 30_000, 'the victim to run');
    await submit([
      ...['--name', 'urgent', '--team', 'research', '--gpu', '1', '--priority', '10', '--grace-period', '1'],
      ...['--env', 'FAKE_GPU_UTIL=70', '--env', 'FAKE_GPU_MEMORY_MIB=2048', ...common, '--', 'sleep', '90'],
    ]);
    await eventually(
      async () =>
        (await shows('allot_pool_team_gpus_allocated{team="research"} == 1')) &&
        shows('allot_pool_queue_by_reason{reason="Resources"}'),
      40_000,
      'the urgent step to run while the victim waits',
    );

    // Every panel target, queried until each has a series (Prometheus scrapes every second).
    let empty: string[] = [];
    await eventually(
      async () => {
        empty = [];
        for (const t of targets) {
          if ((await query(substitute(t.expr))).length === 0) empty.push(`${t.panel} ${t.refId}: ${t.expr}`);
        }
        return empty.length === 0 ? true : undefined;
      },
      45_000,
      'every panel target to return a series',
    ).catch(() => undefined);
    expect(empty, 'panel targets without a series').toEqual([]);
    // The pool variable's values come from `label_values(allot_pool_up, pool)`.
    expect(await query('allot_pool_up{pool="default"}')).toHaveLength(1);
  }, 150_000);
});
