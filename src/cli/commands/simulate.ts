/**
 * `allot simulate`: runs the scheduling core on a scenario file or a public trace, without a
 * cluster. See docs/simulate.md.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { Option } from 'commander';
import type { PlacementPolicyName, SchedulingPolicy } from '../../core';
import { PLACEMENT_POLICIES } from '../../core';
import type { PolicyRun, Scenario, SimJob } from '../../sim';
import {
  SIMULATION_POLICY,
  computeMetrics,
  parseAlibabaNodes,
  parseAlibabaPods,
  parseScenario,
  parseTiresiasCluster,
  parseTiresiasJobs,
  renderHtml,
  renderPacking,
  renderRuns,
  runPacking,
  simulate,
  tiresiasJobs,
} from '../../sim';
import { UserError } from '../errors';
import { parseDuration } from '../parse';

/** Options of `allot simulate`, as commander gives them. */
interface SimulateOptions {
  json?: boolean;
  html?: string;
  trace?: string;
  nodes?: string;
  format?: 'alibaba' | 'tiresias';
  mode: 'timeline' | 'packing';
  placement?: string;
  preemption?: string;
  backfill?: string;
  fairShare?: string;
  fairShareHalfLife?: string;
  gracePeriod?: string;
  compare?: 'backfill' | 'placement' | 'preemption' | 'fairShare';
  limit?: string;
}

/** Adds `simulate` to the program. */
export function registerSimulate(program: Command): void {
  program
    .command('simulate')
    .description('simulate the scheduler on a scenario file or a public cluster trace (see docs/simulate.md)')
    .argument('[scenario]', 'scenario JSON file (nodes, teams, policy, jobs)')
    .option('--json', 'print one JSON object')
    .option('--html <file>', 'write a page with a Gantt chart of GPU occupancy and the queue length')
    .option('--trace <file>', 'trace jobs: Alibaba pod list or Tiresias job list (instead of a scenario)')
    .option('--nodes <file>', 'trace nodes: Alibaba node list or Tiresias cluster spec')
    .addOption(new Option('--format <format>', 'trace format').choices(['alibaba', 'tiresias']))
    .addOption(
      new Option('--mode <mode>', 'timeline: jobs arrive and finish; packing: the FGD experiment')
        .choices(['timeline', 'packing'])
        .default('timeline'),
    )
    .option('--placement <policy>', `placement policy: ${PLACEMENT_POLICIES.join(' or ')}`)
    .option('--preemption <on|off>', 'override the policy: preemption')
    .option('--backfill <on|off>', 'override the policy: backfill')
    .option('--fair-share <on|off>', 'override the policy: fair share across teams')
    .option(
      '--fair-share-half-life <duration>',
      'override the policy: half-life of recent usage, e.g. 6h; 0: leases only',
    )
    .option('--grace-period <seconds>', 'override the policy: grace period of preempted jobs')
    .addOption(
      new Option('--compare <knob>', 'run twice, with this policy knob off and on (placement: both policies)').choices([
        'backfill',
        'placement',
        'preemption',
        'fairShare',
      ]),
    )
    .option('--limit <n>', 'use only the first n jobs of a trace')
    .action((file: string | undefined, o: SimulateOptions) => runSimulate(file, o));
}

function runSimulate(file: string | undefined, o: SimulateOptions): void {
  if (o.mode === 'packing') return runPackingMode(o);
  const scenario = loadScenario(file, o);
  scenario.policy = applyOverrides(scenario.policy, o);
  const variants: { label: string; policy: SchedulingPolicy }[] = o.compare
    ? compareVariants(scenario.policy, o.compare)
    : [{ label: describePolicy(scenario.policy), policy: scenario.policy }];
  const runs: PolicyRun[] = [];
  let first: ReturnType<typeof simulate> | undefined;
  for (const v of variants) {
    const s = { ...scenario, policy: v.policy };
    const run = simulate(s);
    first ??= run;
    runs.push({ label: v.label, policy: v.policy, jobs: run.jobs, metrics: computeMetrics(s, run) });
  }
  if (o.html && first) {
    write(o.html, renderHtml(`allot simulate: ${file ?? o.trace ?? ''} (${runs[0]?.label ?? ''})`, scenario, first));
  }
  if (o.json) {
    const out = o.compare
      ? {
          compare: o.compare,
          runs: runs.map((r) => ({ label: r.label, policy: r.policy, jobs: r.jobs, metrics: r.metrics })),
        }
      : { jobs: runs[0]?.jobs ?? [], metrics: runs[0]?.metrics };
    process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
    return;
  }
  const cite =
    o.format === 'tiresias'
      ? "\n(trace: Tiresias, Gu et al., NSDI '19)"
      : o.format === 'alibaba'
        ? "\n(trace: Alibaba GPU v2023, Weng et al., USENIX ATC '23)"
        : '';
  process.stdout.write(`${renderRuns(runs)}${cite}\n`);
}

function runPackingMode(o: SimulateOptions): void {
  if (!o.trace || !o.nodes)
    throw new UserError('--mode packing needs --trace PODS.csv and --nodes NODES.csv (Alibaba format)');
  if (o.format !== undefined && o.format !== 'alibaba') {
    throw new UserError(`--mode packing reads Alibaba traces (GPU shares and models); got --format ${o.format}`);
  }
  const nodes = parseAlibabaNodes(read(o.nodes), o.nodes);
  const tasks = parseAlibabaPods(read(o.trace), o.trace).map((t) => t.resources);
  const limited = o.limit ? tasks.slice(0, positive(o.limit, '--limit')) : tasks;
  const chosen = (o.placement ?? 'fragmentation-aware') as PlacementPolicyName;
  checkPlacement(chosen);
  const policies: PlacementPolicyName[] = chosen === 'best-fit' ? ['best-fit'] : [chosen, 'best-fit'];
  const results = policies.map((p) => runPacking(nodes, limited, p));
  if (o.json) {
    const out = {
      mode: 'packing',
      results: results.map((r) => ({
        policy: r.policy,
        arrived: r.arrived,
        unallocatedGpuShare: r.unallocatedGpuShare,
        tasks: r.tasks,
      })),
    };
    process.stdout.write(`${JSON.stringify(out, null, 2)}\n`);
    return;
  }
  const gpus = nodes.reduce((s, n) => s + n.gpus.length, 0);
  process.stdout.write(
    `${renderPacking(results, gpus)}\n(${nodes.length} nodes, ${gpus} GPUs; ${limited.length} tasks in trace order)\n`,
  );
}

function loadScenario(file: string | undefined, o: SimulateOptions): Scenario {
  if (o.trace || o.nodes || o.format) {
    if (file) throw new UserError(`give either a scenario file (${file}) or --trace/--nodes/--format, not both`);
    if (!o.trace || !o.nodes || !o.format) {
      throw new UserError('a trace needs all of --trace FILE, --nodes FILE and --format alibaba|tiresias');
    }
    const limit = o.limit ? positive(o.limit, '--limit') : Infinity;
    if (o.format === 'tiresias') {
      const nodes = parseTiresiasCluster(read(o.nodes), o.nodes);
      const perNode = Math.max(...nodes.map((n) => n.gpus.length));
      const jobs = tiresiasJobs(parseTiresiasJobs(read(o.trace), o.trace).slice(0, limit), perNode);
      return { nodes, teams: [], policy: { ...SIMULATION_POLICY }, jobs };
    }
    const nodes = parseAlibabaNodes(read(o.nodes), o.nodes);
    const pods = parseAlibabaPods(read(o.trace), o.trace).slice(0, limit);
    const jobs: SimJob[] = pods.map((p, i) => {
      if (p.creationTime === undefined || p.deletionTime === undefined) {
        throw new UserError(
          `${o.trace}: pod ${p.name} has no creation_time/deletion_time, so it cannot be replayed over time; use --mode packing`,
        );
      }
      const start = p.scheduledTime ?? p.creationTime;
      const duration = Math.max(1, p.deletionTime - start) * 1000;
      return {
        name: p.name || `pod-${i}`,
        team: 'default',
        submitMs: p.creationTime * 1000,
        durationMs: duration,
        timeLimitMs: duration,
        priority: p.priority,
        preemptible: true,
        replicas: 1,
        resources: p.resources,
      };
    });
    return { nodes, teams: [], policy: { ...SIMULATION_POLICY }, jobs };
  }
  if (!file) throw new UserError('give a scenario file, or --trace FILE --nodes FILE --format alibaba|tiresias');
  let value: unknown;
  try {
    value = JSON.parse(read(file));
  } catch (err) {
    if (err instanceof UserError) throw err;
    throw new UserError(`${file} is not valid JSON: ${(err as Error).message}`);
  }
  return parseScenario(value);
}

function applyOverrides(policy: SchedulingPolicy, o: SimulateOptions): SchedulingPolicy {
  const p = { ...policy };
  if (o.placement !== undefined) {
    checkPlacement(o.placement);
    p.placement = o.placement;
  }
  if (o.preemption !== undefined) p.preemption = onOff(o.preemption, '--preemption');
  if (o.backfill !== undefined) p.backfill = onOff(o.backfill, '--backfill');
  if (o.fairShare !== undefined) p.fairShare = onOff(o.fairShare, '--fair-share');
  const halfLife = parseDuration(o.fairShareHalfLife, '--fair-share-half-life');
  if (halfLife !== undefined) p.fairShareHalfLifeMs = halfLife;
  if (o.gracePeriod !== undefined) {
    const s = Number(o.gracePeriod);
    if (!Number.isFinite(s) || s < 0)
      throw new UserError(`--grace-period must be a number of seconds >= 0, got "${o.gracePeriod}"`);
    p.gracePeriodMs = Math.round(s * 1000);
  }
  return p;
}

function compareVariants(
  policy: SchedulingPolicy,
  knob: NonNullable<SimulateOptions['compare']>,
): { label: string; policy: SchedulingPolicy }[] {
  if (knob === 'placement') {
    return PLACEMENT_POLICIES.map((placement) => ({ label: placement, policy: { ...policy, placement } }));
  }
  const off = { ...policy, [knob]: false };
  const on = { ...policy, [knob]: true };
  const names: Record<string, [string, string]> = {
    backfill: ['FIFO (no backfill)', 'backfill'],
    preemption: ['no preemption', 'preemption'],
    fairShare: ['no fair share', 'fair share'],
  };
  const [a, b] = names[knob] ?? [`${knob} off`, `${knob} on`];
  return [
    { label: a, policy: off },
    { label: b, policy: on },
  ];
}

function describePolicy(p: SchedulingPolicy): string {
  return [
    p.placement,
    p.backfill ? 'backfill' : 'FIFO',
    p.preemption ? 'preemption' : '',
    p.fairShare ? 'fair share' : '',
  ]
    .filter((s) => s !== '')
    .join(', ');
}

function checkPlacement(value: string): asserts value is PlacementPolicyName {
  if (!(PLACEMENT_POLICIES as readonly string[]).includes(value)) {
    throw new UserError(`--placement must be one of ${PLACEMENT_POLICIES.join(', ')}, got "${value}"`);
  }
}

function onOff(value: string, flag: string): boolean {
  if (['on', 'true', 'yes'].includes(value)) return true;
  if (['off', 'false', 'no'].includes(value)) return false;
  throw new UserError(`${flag} must be on or off, got "${value}"`);
}

function positive(value: string, flag: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 1) throw new UserError(`${flag} must be a whole number >= 1, got "${value}"`);
  return n;
}

function read(file: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new UserError(`cannot read ${file}: ${code === 'ENOENT' ? 'no such file' : (err as Error).message}`);
  }
}

function write(file: string, content: string): void {
  try {
    writeFileSync(file, content);
  } catch (err) {
    throw new UserError(`cannot write ${path.resolve(file)}: ${(err as Error).message}`);
  }
}
