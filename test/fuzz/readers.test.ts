/**
 * Fuzzing of the simulator's readers: the scenario reader and the Alibaba and Tiresias trace
 * readers. Whatever the file holds, a reader returns what it read or throws a `ValidationError`
 * whose every issue names where the problem is; it never throws anything else, never hangs on huge
 * numbers, and what it accepts is well-formed.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ValidationError } from '../../src/core';
import {
  MAX_GPUS_PER_NODE,
  MAX_SIM_NODES,
  parseAlibabaNodes,
  parseAlibabaPods,
  parseScenario,
  parseTiresiasCluster,
  parseTiresiasJobs,
  simulate,
} from '../../src/sim';

const RUNS = Number(process.env.ALLOT_FUZZ_RUNS ?? 1_000);

/** Runs a reader; returns what it read, or `undefined` after checking it refused properly. */
function read<T>(reader: () => T): T | undefined {
  try {
    return reader();
  } catch (err) {
    if (!(err instanceof ValidationError)) throw err;
    expect(err.issues.length).toBeGreaterThan(0);
    for (const issue of err.issues) expect(issue.message.length).toBeGreaterThan(0);
    return undefined;
  }
}

/** Values that are wrong for some field in every way a file can be wrong. */
const junk: fc.Arbitrary<unknown> = fc.oneof(
  fc.jsonValue(),
  fc.constantFrom(-1, 0, 1.5, 1e9, 5e9, 1e300, -0, '', '8GB', 'lots', null, [], {}),
);

/** Sets `path` in a copy of `value` to `replacement` (creating objects on the way). */
function setAt(value: unknown, path: string[], replacement: unknown): unknown {
  const [head, ...rest] = path;
  if (head === undefined) return replacement;
  const copy: Record<string, unknown> = Array.isArray(value)
    ? ({ ...value } as Record<string, unknown>)
    : typeof value === 'object' && value !== null
      ? { ...(value as Record<string, unknown>) }
      : {};
  copy[head] = setAt(copy[head], rest, replacement);
  return Array.isArray(value) ? Object.assign([...value], copy) : copy;
}

const nodeArb = fc
  .record({
    cpu: fc.constantFrom(8, '16', '500m'),
    memory: fc.constantFrom('32Gi', '64000Mi', 1 << 30),
    gpus: fc.constantFrom(0, 1, 2, 8),
    gpuMemory: fc.constantFrom('80Gi', '16Gi'),
    labels: fc.constantFrom({ zone: 'a' }, {}),
    count: fc.constantFrom(1, 1, 2, 3),
  })
  .map((n) => ({ ...n, gpuModel: 'A100' }));

const jobArb = fc.record({
  team: fc.constantFrom('vision', 'nlp', 'default'),
  submit: fc.constantFrom(0, 5, 30),
  duration: fc.constantFrom(10, 60, 0.5),
  priority: fc.constantFrom(0, 100, 'high', 'low', -1000),
  preemptible: fc.boolean(),
  checkpointEvery: fc.constantFrom(5, 30),
  replicas: fc.constantFrom(1, 1, 2),
  replicaPlacement: fc.constantFrom(undefined, 'spread', 'pack'),
  resources: fc.constantFrom(
    { gpu: 1 },
    { gpu: 0.5, cpu: '2', memory: '4Gi' },
    { cpu: 1 },
    { gpu: 2, gpuModel: 'A100' },
  ),
});

/** A well-formed scenario. */
const goodScenarioArb = fc
  .record({
    nodes: fc.array(nodeArb, { minLength: 1, maxLength: 4 }),
    jobs: fc.array(jobArb, { minLength: 1, maxLength: 6 }),
    teams: fc.constantFrom([], [{ name: 'vision', quota: { gpu: 2 } }]),
    policy: fc.record({
      placement: fc.constantFrom('best-fit', 'fragmentation-aware'),
      backfill: fc.boolean(),
      preemption: fc.boolean(),
      gracePeriod: fc.constantFrom(0, 5),
    }),
  })
  .map((s) => ({
    ...s,
    nodes: s.nodes.map((n, i) => ({ name: `n${i}`, ...n })),
    jobs: s.jobs.map((j, i) => ({ name: `j${i}`, ...j })),
  }));

const FIELDS = [
  ['nodes'],
  ['jobs'],
  ['teams'],
  ['policy'],
  ['nodes', '0', 'name'],
  ['nodes', '0', 'cpu'],
  ['nodes', '0', 'memory'],
  ['nodes', '0', 'gpus'],
  ['nodes', '0', 'gpuModel'],
  ['nodes', '0', 'count'],
  ['nodes', '0', 'labels'],
  ['nodes', '0', 'custom'],
  ['jobs', '0', 'name'],
  ['jobs', '0', 'duration'],
  ['jobs', '0', 'submit'],
  ['jobs', '0', 'priority'],
  ['jobs', '0', 'replicas'],
  ['jobs', '0', 'replicaPlacement'],
  ['jobs', '0', 'resources'],
  ['jobs', '0', 'resources', 'gpu'],
  ['jobs', '0', 'resources', 'memory'],
  ['jobs', '0', 'checkpointEvery'],
  ['teams', '0', 'quota'],
  ['policy', 'placement'],
  ['policy', 'backfillDepth'],
  ['policy', 'typo'],
];

/** A well-formed scenario, with no, one or two fields made wrong. */
const scenarioArb = fc
  .tuple(goodScenarioArb, fc.array(fc.tuple(fc.constantFrom(...FIELDS), junk), { maxLength: 2 }))
  .map(([good, mutations]) => mutations.reduce<unknown>((s, [path, value]) => setAt(s, path, value), good));

describe('the scenario reader, fuzzed', () => {
  it('reads any JSON value, or refuses it with issues that name their field', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (value) => {
        read(() => parseScenario(value));
      }),
      { numRuns: RUNS },
    );
  });

  it('reads scenario-shaped input with wrong values anywhere, and what it accepts simulates to an end', () => {
    fc.assert(
      fc.property(scenarioArb, (value) => {
        const scenario = read(() => parseScenario(value));
        if (!scenario) return;
        expect(scenario.nodes.length).toBeGreaterThan(0);
        expect(scenario.nodes.length).toBeLessThanOrEqual(MAX_SIM_NODES);
        for (const n of scenario.nodes) {
          expect(n.gpus.length).toBeLessThanOrEqual(MAX_GPUS_PER_NODE);
          expect(Number.isSafeInteger(n.cpuMilli) && Number.isSafeInteger(n.memoryMiB)).toBe(true);
        }
        const run = simulate(scenario);
        expect(run.jobs.map((j) => j.name).sort()).toEqual(scenario.jobs.map((j) => j.name).sort());
        for (const j of run.jobs) expect(j.end !== null || j.reason !== null).toBe(true);
      }),
      { numRuns: Math.ceil(RUNS / 4) },
    );
  });

  it('reads any text given as a scenario file, or refuses it', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.json()), (text) => {
        let value: unknown;
        try {
          value = JSON.parse(text);
        } catch {
          return;
        }
        read(() => parseScenario(value));
      }),
      { numRuns: RUNS },
    );
  });
});

/** A CSV cell: a number now and then, junk otherwise (quotes, commas, huge numbers, nothing). */
const cell = fc.oneof(
  { weight: 4, arbitrary: fc.nat({ max: 100_000 }).map(String) },
  {
    weight: 1,
    arbitrary: fc.oneof(
      fc.string(),
      fc.constantFrom('', '-1', '1.5', '1e3', '9999999999', '"quoted, with comma"', '"', 'NaN', 'A100', 'LS'),
    ),
  },
);

/** A CSV file with the given header (sometimes damaged) and random rows. */
function csvArb(header: string[]): fc.Arbitrary<string> {
  const headerArb = fc.oneof(
    { weight: 5, arbitrary: fc.constant(header) },
    { weight: 1, arbitrary: fc.shuffledSubarray(header) },
  );
  return fc
    .tuple(
      headerArb,
      fc.array(fc.array(cell, { minLength: 0, maxLength: header.length + 2 }), { maxLength: 8 }),
      fc.constantFrom('\n', '\r\n'),
    )
    .map(([h, rows, eol]) => [h.join(','), ...rows.map((r) => r.join(','))].join(eol));
}

describe('the trace readers, fuzzed', () => {
  const readers = [
    ['Alibaba node list', ['sn', 'cpu_milli', 'memory_mib', 'gpu', 'model'], parseAlibabaNodes],
    [
      'Alibaba pod list',
      [
        'name',
        'cpu_milli',
        'memory_mib',
        'num_gpu',
        'gpu_milli',
        'gpu_spec',
        'qos',
        'creation_time',
        'deletion_time',
        'scheduled_time',
      ],
      parseAlibabaPods,
    ],
    [
      'Tiresias job list',
      ['job_id', 'num_gpu', 'submit_time', 'iterations', 'model_name', 'duration'],
      parseTiresiasJobs,
    ],
    [
      'Tiresias cluster spec',
      ['num_switch', 'num_node_p_switch', 'num_gpu_p_node', 'num_cpu_p_node', 'mem_p_node'],
      parseTiresiasCluster,
    ],
  ] as const;

  it.each(readers)('%s: reads any text, or refuses it naming the file and the line', (_, header, reader) => {
    fc.assert(
      fc.property(fc.oneof(csvArb([...header]), fc.string()), (text) => {
        const rows = read(() => reader(text, 'trace.csv'));
        if (!rows) return;
        for (const row of rows as unknown[]) expect(JSON.stringify(row)).not.toContain('null');
      }),
      { numRuns: RUNS },
    );
  });

  it('reads node lists into nodes of sane size only', () => {
    fc.assert(
      fc.property(csvArb(['sn', 'cpu_milli', 'memory_mib', 'gpu', 'model']), (text) => {
        for (const n of read(() => parseAlibabaNodes(text, 'nodes.csv')) ?? []) {
          expect(n.gpus.length).toBeLessThanOrEqual(MAX_GPUS_PER_NODE);
          expect(n.gpus.map((g) => g.index)).toEqual(n.gpus.map((_, i) => i));
        }
      }),
      { numRuns: RUNS },
    );
  });
});
