/**
 * The bad-input table: malformed inputs at every door of allot, each with the clear error it must
 * get. The tests beside this file feed every row to the real thing: the `allot` binary, the
 * simulator's file readers, a running pool (through the plain `temporal` CLI, bypassing allot's
 * client) and the step workflow.
 */

/** A command line of `allot` that must exit 2 with a message naming the problem, without a stack trace. */
export interface CliRow {
  name: string;
  args: string[];
  expect: RegExp;
  /** Environment variables of the run (on top of a reachable TEMPORAL_ADDRESS). */
  env?: Record<string, string>;
}

/** A file given to `allot simulate` (`{file}` in `args` is replaced by its path). */
export interface FileRow {
  name: string;
  /** File name (its extension matters to nobody; it helps reading). */
  file: string;
  content: string;
  args: string[];
  expect: RegExp;
}

/** A message sent straight to a running pool with `temporal workflow update execute` or `signal`. */
export interface PoolRow {
  name: string;
  kind: 'update' | 'signal' | 'query';
  /** Update, signal or query name. */
  message: string;
  /** Extra arguments of the `temporal` command (`--input`, `--input-meta`, ...). */
  args: string[];
  /** Updates and queries: what the rejection says. Signals: what the worker logs when it drops it (absent: dropped silently). */
  expect?: RegExp;
  /**
   * A payload the `temporal` CLI refuses to send (it checks that json/plain parses): sent with a
   * raw gRPC SignalWorkflowExecution instead, as any other client could.
   */
  raw?: { encoding: string; data: string };
}

/** Options of a step workflow started directly: it must fail as InvalidInput naming the field. */
export interface StepRow {
  name: string;
  options: Record<string, unknown>;
  expect: RegExp;
}

const input = (value: unknown): string[] => ['--input', JSON.stringify(value)];
const node = (patch: Record<string, unknown>): Record<string, unknown> => ({
  id: 'bad-node',
  cpuMilli: 4000,
  memoryMiB: 8192,
  gpus: [{ index: 0, model: 'A100', memoryMiB: 81920 }],
  labels: {},
  ...patch,
});
const request = (patch: Record<string, unknown>): Record<string, unknown> => ({
  requestId: 'bad-request',
  owner: { kind: 'client', name: 'bad-input-test' },
  resources: { cpuMilli: 1000, memoryMiB: 1024, gpuMilli: 1000, gpuMemoryMiB: 0, gpuModels: [], labels: {} },
  ...patch,
});

/**
 * `--resource NAME=N` of the commands that take it: a node's custom resources (agent, dev) and a
 * step's (submit). Each malformed form, on each command.
 */
const RESOURCE_FLAG_ROWS: CliRow[] = (
  [
    ['agent', []],
    ['dev', []],
    ['submit', ['--', 'true']],
  ] as const
).flatMap(([command, rest]) => [
  {
    name: `${command}: --resource without =`,
    args: [command, '--resource', 'nvme', ...rest],
    expect: /--resource: must be NAME=N, a custom resource and a whole number \(e\.g\. nvme=2\), got "nvme"/,
  },
  {
    name: `${command}: --resource with a negative amount`,
    args: [command, '--resource', 'nvme=-1', ...rest],
    expect: /--resource: the amount in "nvme=-1" must be a whole number >= 0, got "-1"/,
  },
  {
    name: `${command}: --resource with a fraction`,
    args: [command, '--resource', 'nvme=0.5', ...rest],
    expect: /--resource: the amount in "nvme=0\.5" must be a whole number >= 0, got "0\.5"/,
  },
  {
    name: `${command}: --resource with a name in capitals`,
    args: [command, '--resource', 'NVMe=1', ...rest],
    expect: /--resource: the name in "NVMe=1" must be a lowercase letter, then lowercase letters, digits/,
  },
]);

/** CLI flags, including the agent's inventory flags. */
export const CLI_ROWS: CliRow[] = [
  ...RESOURCE_FLAG_ROWS,
  {
    name: 'status: an ALLOT_CODEC_KEY that is too short',
    args: ['status'],
    env: { ALLOT_CODEC_KEY: 'c2hvcnQ=' },
    expect: /ALLOT_CODEC_KEY must be 32 random bytes .*got 5 bytes; make one with `openssl rand -base64 32`/,
  },
  {
    name: 'codec-server: no ALLOT_CODEC_KEY',
    args: ['codec-server'],
    env: { ALLOT_CODEC_KEY: '' },
    expect: /ALLOT_CODEC_KEY is not set: the codec server needs the key/,
  },
  {
    name: 'codec-server: a UI origin with a path',
    args: ['codec-server', '--ui', 'http://localhost:8233/namespaces'],
    expect: /--ui must be an origin/,
  },
  {
    name: 'submit: negative GPUs',
    args: ['submit', '--gpu', '-1', '--', 'true'],
    expect: /--gpu: must be a whole number/,
  },
  {
    name: 'submit: zero replicas',
    args: ['submit', '--replicas', '0', '--', 'true'],
    expect: /--replicas: must be a whole number of copies from 1 to 1024, got 0/,
  },
  {
    name: 'submit: replicas as a word',
    args: ['submit', '--replicas', 'two', '--', 'true'],
    expect: /--replicas: must be a whole number of copies from 1 to 1024, got "two"/,
  },
  {
    name: 'submit: an unknown placement',
    args: ['submit', '--replicas', '2', '--replica-placement', 'scatter', '--', 'true'],
    expect: /--replica-placement: must be "spread" \(one replica per node\) or "pack".*got "scatter"/,
  },
  {
    name: 'agent: an advertise address with a slash',
    args: ['agent', '--gpus', '1', '--advertise-address', 'http://gpu-a'],
    expect: /--advertise-address must be a host name or an IP address without a port .*got "http:\/\/gpu-a"/,
  },
  {
    name: 'agent: an advertise address with a port',
    args: ['agent', '--gpus', '1', '--advertise-address', '10.0.0.1:29500'],
    expect: /--advertise-address must be a host name or an IP address without a port .*got "10\.0\.0\.1:29500"/,
  },
  {
    name: 'agent: an advertise address that is no IPv4 address',
    args: ['agent', '--gpus', '1', '--advertise-address', '999.1.1.1'],
    expect: /--advertise-address must be a host name or an IP address without a port .*got "999\.1\.1\.1"/,
  },
  { name: 'submit: 1.5 GPUs', args: ['submit', '--gpu', '1.5', '--', 'true'], expect: /fraction of one GPU.*got 1\.5/ },
  { name: 'submit: memory in GB', args: ['submit', '--memory', '8GB', '--', 'true'], expect: /--memory: .*got "8GB"/ },
  { name: 'submit: CPU as words', args: ['submit', '--cpu', 'abc', '--', 'true'], expect: /--cpu: .*got "abc"/ },
  {
    name: 'submit: priority out of range',
    args: ['submit', '--priority', '5000', '--', 'true'],
    expect: /--priority must be an integer from -1000 to 1000, got "5000"/,
  },
  {
    name: 'submit: label without =',
    args: ['submit', '--label', 'zone', '--', 'true'],
    expect: /--label must be KEY=VALUE/,
  },
  {
    name: 'queue: a limit that is not a number',
    args: ['queue', '--limit', 'all'],
    expect: /--limit must be an integer from 0 to 20000, got "all"/,
  },
  // Named limits: `allot limit` and `allot submit --limit`.
  {
    name: 'limit set: a name with a space',
    args: ['limit', 'set', 'feature store', '--max', '4'],
    expect:
      /limit name must be 1-63 letters, digits, '\.', '_' or '-', starting with a letter or digit, got "feature store"/,
  },
  {
    name: 'limit set: a negative max',
    args: ['limit', 'set', 'fs', '--max', '-1'],
    expect: /--max must be an integer from 0 to 1000000, got "-1"/,
  },
  {
    name: 'limit set: a fractional max',
    args: ['limit', 'set', 'fs', '--max', '1.5'],
    expect: /--max must be an integer/,
  },
  { name: 'limit set: no max', args: ['limit', 'set', 'fs'], expect: /required option '--max <n>' not specified/ },
  {
    name: 'submit: a limit without =',
    args: ['submit', '--limit', 'fs', '--', 'true'],
    expect: /--limit must be KEY=VALUE, got "fs"/,
  },
  {
    name: 'submit: a limit of zero units',
    args: ['submit', '--limit', 'fs=0', '--', 'true'],
    expect: /--limit fs: must be a whole number of units from 1 to 1000000, got 0/,
  },
  {
    name: 'submit: a limit amount in words',
    args: ['submit', '--limit', 'fs=one', '--', 'true'],
    expect: /--limit fs: must be a whole number of units from 1 to 1000000, got "one"/,
  },
  {
    name: 'submit: a limit name with a slash',
    args: ['submit', '--limit', 'a/b=1', '--', 'true'],
    expect: /--limit a\/b: is not a limit name/,
  },
  {
    name: 'submit: negative time limit',
    args: ['submit', '--time-limit', '-3', '--', 'true'],
    expect: /--time-limit must be a non-negative number of seconds/,
  },
  {
    name: 'submit: variable name starting with a digit',
    args: ['submit', '--env', '1BAD=x', '--', 'true'],
    expect: /env\.1BAD: is not a variable name/,
  },
  {
    name: 'submit: setting CUDA_VISIBLE_DEVICES itself',
    args: ['submit', '--env', 'CUDA_VISIBLE_DEVICES=0', '--', 'true'],
    expect: /env\.CUDA_VISIBLE_DEVICES: .*set by allot/,
  },
  { name: 'submit: no command', args: ['submit'], expect: /nothing to run/ },
  { name: 'run: input that is not JSON', args: ['run', 'p', '--input', '{bad'], expect: /--input must be JSON/ },
  {
    name: 'run: input file that does not exist',
    args: ['run', 'p', '--input', '@/nonexistent/input.json'],
    expect: /cannot read \/nonexistent\/input\.json/,
  },
  { name: 'status: unknown flag', args: ['status', '--bogus'], expect: /unknown option '--bogus'/ },
  { name: 'dev: port out of range', args: ['dev', '--port', '99999'], expect: /--port must be a port number/ },
  {
    name: 'schedule: malformed cron',
    args: ['schedule', 'create', 'nightly', '--cron', 'every night', 'trainPipeline'],
    expect: /--cron must be a cron expression/,
  },
  { name: 'agent: negative GPUs', args: ['agent', '--gpus', '-2'], expect: /--gpus: must be a whole number of GPUs/ },
  { name: 'agent: more GPUs than a node has', args: ['agent', '--gpus', '5000'], expect: /from 0 to 1024/ },
  {
    name: 'agent: GPU memory in XB',
    args: ['agent', '--gpus', '2', '--gpu-memory', '80XB'],
    expect: /--gpu-memory: .*got "80XB"/,
  },
  { name: 'agent: CPU in hex', args: ['agent', '--cpu', '0x10'], expect: /--cpu: .*got "0x10"/ },
  {
    name: 'agent: label without a key',
    args: ['agent', '--label', '=v'],
    expect: /--label must be KEY=VALUE, got "=v"/,
  },
  {
    name: 'agent: drain timeout in words',
    args: ['agent', '--drain-timeout', 'never'],
    expect: /--drain-timeout must be a non-negative number of seconds/,
  },
  {
    name: 'agent: sampling too often',
    args: ['agent', '--sample-interval', '5'],
    expect: /--sample-interval must be an integer from 50 to 60000/,
  },
  {
    name: 'quota set: a fair-share weight of 0',
    args: ['quota', 'set', 'vision', '--weight', '0'],
    expect: /--weight must be a number greater than 0 and at most 1000000 .*got "0"/,
  },
  {
    name: 'policy: a fair-share half-life in weeks',
    args: ['policy', '--fair-share-half-life', '2w'],
    expect: /--fair-share-half-life must be a duration: .*s, m, h or d .*got "2w"/,
  },
];

const NODES = 'sn,cpu_milli,memory_mib,gpu,model\nn1,8000,16384,2,A100\n';
const CLUSTER = 'num_switch,num_node_p_switch,num_gpu_p_node,num_cpu_p_node,mem_p_node\n1,2,4,8,64\n';
const JOBS = 'job_id,num_gpu,submit_time,duration\n1,2,0,10\n';
const scenario = (patch: Record<string, unknown>): string =>
  JSON.stringify({
    nodes: [{ name: 'n', cpu: '8', memory: '32Gi', gpus: 2, gpuModel: 'A100' }],
    jobs: [{ name: 'j', duration: 10, resources: { gpu: 1 } }],
    ...patch,
  });

/** Scenario and trace files for `allot simulate`. */
export const FILE_ROWS: FileRow[] = [
  { name: 'scenario: not JSON', file: 's.json', content: '{"nodes": [', args: ['{file}'], expect: /is not valid JSON/ },
  {
    name: 'scenario: an array',
    file: 's.json',
    content: '[]',
    args: ['{file}'],
    expect: /must be an object, got \[\]/,
  },
  {
    name: 'scenario: no nodes and no jobs',
    file: 's.json',
    content: '{"nodes":[],"jobs":[]}',
    args: ['{file}'],
    expect: /nodes: must be a non-empty array[\s\S]*jobs: must be a non-empty array/,
  },
  {
    name: 'scenario: memory in GB and a negative duration, reported together',
    file: 's.json',
    content: scenario({
      nodes: [{ name: 'n', cpu: '4', memory: '8GB' }],
      jobs: [{ name: 'j', duration: -1 }],
    }),
    args: ['{file}'],
    expect: /nodes\.0\.memory: .*"8GB"[\s\S]*jobs\.0\.duration: must be a number of seconds > 0/,
  },
  {
    name: 'scenario: a custom resource in capitals on a node and a fraction of one in a job',
    file: 's.json',
    content: scenario({
      nodes: [{ name: 'n', cpu: '4', memory: '8Gi', custom: { NVMe: 2 } }],
      jobs: [{ name: 'j', duration: 10, resources: { custom: { nvme: 0.5 } } }],
    }),
    args: ['{file}'],
    expect:
      /nodes\.0\.custom\.NVMe: must be a lowercase letter[\s\S]*jobs\.0\.resources\.custom\.nvme: must be a whole number >= 0, got 0\.5/,
  },
  {
    name: 'scenario: five billion GPUs on a node',
    file: 's.json',
    content: scenario({ nodes: [{ name: 'n', cpu: '4', memory: '8Gi', gpus: 5e9, gpuModel: 'A100' }] }),
    args: ['{file}'],
    expect: /nodes\.0\.gpus: must be a whole number from 0 to 1024/,
  },
  {
    name: 'scenario: a hundred million nodes',
    file: 's.json',
    content: scenario({ nodes: [{ name: 'n', cpu: '4', memory: '8Gi', count: 1e8 }] }),
    args: ['{file}'],
    expect: /nodes\.0\.count: must be a whole number from 1 to 100000/,
  },
  {
    name: 'scenario: a typo of a field and an unknown placement',
    file: 's.json',
    content: scenario({ policy: { placement: 'random', backfil: true } }),
    args: ['{file}'],
    expect: /policy\.backfil: is not a field here[\s\S]*policy\.placement: must be one of/,
  },
  {
    name: 'scenario: a negative fair-share half-life and a team weight of 0, reported together',
    file: 's.json',
    content: scenario({ policy: { fairShare: true, fairShareHalfLife: -1 }, teams: [{ name: 'a', weight: 0 }] }),
    args: ['{file}'],
    expect:
      /teams\.0\.weight: must be a number greater than 0[\s\S]*policy\.fairShareHalfLife: must be a number of seconds >= 0, got -1/,
  },
  {
    name: 'scenario: two jobs with one name',
    file: 's.json',
    content: scenario({
      jobs: [
        { name: 'j', duration: 1 },
        { name: 'j', duration: 2 },
      ],
    }),
    args: ['{file}'],
    expect: /jobs\.1\.name: "j" names two jobs/,
  },
  {
    name: 'scenario: a limit with a negative max',
    file: 's.json',
    content: scenario({ limits: { fs: -1 } }),
    args: ['{file}'],
    expect: /limits\.fs: must be a whole number from 0 to 1000000, got -1/,
  },
  {
    name: 'scenario: limits as a list',
    file: 's.json',
    content: scenario({ limits: ['fs'] }),
    args: ['{file}'],
    expect: /limits: must be an object, got \["fs"\] \(array\)/,
  },
  {
    name: 'scenario: a job asking for a limit the scenario does not declare',
    file: 's.json',
    content: scenario({ limits: { fs: 1 }, jobs: [{ name: 'j', duration: 1, limits: { db: 1 } }] }),
    args: ['{file}'],
    expect: /jobs\.0\.limits\.db: names a limit the scenario does not declare; declared: fs/,
  },
  {
    name: 'scenario: a job asking for half a unit of a limit',
    file: 's.json',
    content: scenario({ limits: { fs: 1 }, jobs: [{ name: 'j', duration: 1, limits: { fs: 0.5 } }] }),
    args: ['{file}'],
    expect: /jobs\.0\.limits\.fs: must be a whole number of units from 1 to 1000000, got 0\.5/,
  },
  {
    name: 'tiresias trace: a missing column',
    file: 'jobs.csv',
    content: 'job_id,num_gpu,submit_time\n1,2,3\n',
    args: ['--trace', '{file}', '--nodes', '{cluster}', '--format', 'tiresias'],
    expect: /line 1 must be a header with the columns .*missing duration/,
  },
  {
    name: 'tiresias trace: words and negatives in numbers',
    file: 'jobs.csv',
    content: 'job_id,num_gpu,submit_time,duration\n1,two,3,4\n2,0,1,-5\n',
    args: ['--trace', '{file}', '--nodes', '{cluster}', '--format', 'tiresias'],
    expect: /line 2\.num_gpu: must be a whole number >= 0, got "two"[\s\S]*line 3\.duration/,
  },
  {
    name: 'tiresias cluster: ten billion nodes',
    file: 'cluster.csv',
    content: 'num_switch,num_node_p_switch,num_gpu_p_node,num_cpu_p_node,mem_p_node\n100000,100000,4,8,64\n',
    args: ['--trace', '{jobs}', '--nodes', '{file}', '--format', 'tiresias'],
    expect: /must be at most 100000 nodes, got 100000 × 100000/,
  },
  {
    name: 'alibaba nodes: ten billion GPUs on a node',
    file: 'nodes.csv',
    content: 'sn,cpu_milli,memory_mib,gpu,model\nn1,1000,1024,9999999999,A100\n',
    args: ['--mode', 'packing', '--trace', '{pods}', '--nodes', '{file}'],
    expect: /line 2\.gpu: must be at most 1024 GPUs per node/,
  },
  {
    name: 'alibaba pods: a GPU share over one GPU',
    file: 'pods.csv',
    content: 'name,cpu_milli,memory_mib,num_gpu,gpu_milli\np,1,1,1,2000\n',
    args: ['--mode', 'packing', '--trace', '{file}', '--nodes', '{nodes}'],
    expect: /line 2\.gpu_milli: must be 0\.\.1000/,
  },
  {
    name: 'alibaba pods: binary junk',
    file: 'pods.csv',
    content: '\u0000\u0001\u0002binary',
    args: ['--mode', 'packing', '--trace', '{file}', '--nodes', '{nodes}'],
    expect: /line 1 must be a header with the columns name,cpu_milli/,
  },
  {
    name: 'alibaba pods over time without their times',
    file: 'pods.csv',
    content: 'name,cpu_milli,memory_mib,num_gpu,gpu_milli\np,1000,1024,1,1000\n',
    args: ['--trace', '{file}', '--nodes', '{nodes}', '--format', 'alibaba'],
    expect: /has no creation_time\/deletion_time.*use --mode packing/,
  },
];

/** Companion files the file rows refer to as `{nodes}`, `{cluster}`, `{jobs}` and `{pods}`. */
export const COMPANION_FILES: Record<string, string> = {
  nodes: NODES,
  cluster: CLUSTER,
  jobs: JOBS,
  pods: 'name,cpu_milli,memory_mib,num_gpu,gpu_milli\np,1000,1024,1,1000\n',
};

/** Updates and signals sent to a running pool with the `temporal` CLI. */
export const POOL_ROWS: PoolRow[] = [
  {
    name: 'status: a queue limit that is a string',
    kind: 'query',
    message: 'status',
    args: input({ queueLimit: '5' }),
    expect: /queueLimit must be an integer from 0 to 20000, got "5" \(string\)/,
  },
  {
    name: 'status: options that are a number',
    kind: 'query',
    message: 'status',
    args: input(7),
    expect: /status options must be an object like \{"queueLimit": 100\}, got 7/,
  },
  {
    name: 'setLimit: a negative max',
    kind: 'update',
    message: 'setLimit',
    args: input({ name: 'fs', max: -1 }),
    expect: /invalid limit:\s+max: must be a whole number from 0 to 1000000, got -1 \(number\)/,
  },
  {
    name: 'setLimit: a name with a space and a max that is a string',
    kind: 'update',
    message: 'setLimit',
    args: input({ name: 'feature store', max: '4' }),
    expect:
      /name: must be 1-63 letters.*got "feature store" \(string\)\s+max: must be a whole number.*got "4" \(string\)/s,
  },
  {
    name: 'setLimit: a string instead of an object',
    kind: 'update',
    message: 'setLimit',
    args: input('fs=4'),
    expect: /limit must be an object like \{"name": "feature-store", "max": 4\}, got "fs=4" \(string\)/,
  },
  {
    name: 'removeLimit: a limit that does not exist',
    kind: 'update',
    message: 'removeLimit',
    args: input({ name: 'no-such-limit' }),
    expect: /limit "no-such-limit" does not exist in pool .*; limits: none/,
  },
  {
    name: 'removeLimit: a bare name instead of { name }',
    kind: 'update',
    message: 'removeLimit',
    args: input('fs'),
    expect: /removeLimit needs \{ name: string \}, got "fs" \(string\)/,
  },
  {
    name: 'acquire: zero units of a limit',
    kind: 'update',
    message: 'acquire',
    args: input(request({ limits: { fs: 0 } })),
    expect: /limits\.fs: must be a whole number of units from 1 to 1000000, got 0 \(number\)/,
  },
  {
    name: 'acquire: half a replica',
    kind: 'update',
    message: 'acquire',
    args: input(request({ replicas: 0.5 })),
    expect: /replicas: must be a whole number of copies from 1 to 1024, got 0\.5 \(number\)/,
  },
  {
    name: 'acquire: a placement that is neither spread nor pack',
    kind: 'update',
    message: 'acquire',
    args: input(request({ replicas: 2, replicaPlacement: 'everywhere' })),
    expect: /replicaPlacement: must be "spread" \(one replica per node\) or "pack"/,
  },
  {
    name: 'register: an address with a space',
    kind: 'update',
    message: 'register',
    args: [...input(node({ address: 'gpu a' })), ...input({})],
    expect: /address: must be a host name or IP address without a port/,
  },
  {
    name: 'register: an address with a port',
    kind: 'update',
    message: 'register',
    args: [...input(node({ address: 'gpu-a:29500' })), ...input({})],
    expect: /address: must be a host name or IP address without a port, got "gpu-a:29500"/,
  },
  {
    name: 'register: an inventory that is a string',
    kind: 'update',
    message: 'register',
    args: [...input('gpu-box'), ...input({})],
    expect: /invalid node inventory:\s+node inventory must be an object/,
  },
  {
    name: 'register: negative CPU',
    kind: 'update',
    message: 'register',
    args: [...input(node({ cpuMilli: -1 })), ...input({})],
    expect: /cpuMilli: must be a non-negative integer, got -1/,
  },
  {
    name: 'register: a node id that is a path',
    kind: 'update',
    message: 'register',
    args: [...input(node({ id: '../etc/passwd' })), ...input({})],
    expect: /id: must be 1-63 letters, digits/,
  },
  {
    name: 'register: two GPUs with one index',
    kind: 'update',
    message: 'register',
    args: [...input(node({ gpus: [0, 0].map((index) => ({ index, model: 'A100', memoryMiB: 1 })) })), ...input({})],
    expect: /gpus\.1\.index: must be a unique non-negative integer/,
  },
  {
    name: 'register: a GPU that is null',
    kind: 'update',
    message: 'register',
    args: [...input(node({ gpus: [null] })), ...input({})],
    expect: /gpus\.0: must be a GPU device/,
  },
  {
    name: 'register: running leases that are not a list',
    kind: 'update',
    message: 'register',
    args: [...input(node({})), ...input({ runningLeases: 'lease-1' })],
    expect: /runningLeases must be an array of lease ids/,
  },
  {
    name: 'acquire: no resources',
    kind: 'update',
    message: 'acquire',
    args: input(request({ resources: undefined })),
    expect: /resources: must be an object, got undefined/,
  },
  {
    name: 'acquire: no owner',
    kind: 'update',
    message: 'acquire',
    args: input(request({ owner: undefined })),
    expect: /owner: must be \{ kind: "workflow", workflowId \} or \{ kind: "client", name \}/,
  },
  {
    name: 'acquire: one and a half GPUs in milli-GPU',
    kind: 'update',
    message: 'acquire',
    args: input(request({ resources: { ...(request({}).resources as object), gpuMilli: 1500 } })),
    expect: /gpuMilli: must be a multiple of 1000 above one GPU, got 1500/,
  },
  {
    name: 'acquire: negative memory',
    kind: 'update',
    message: 'acquire',
    args: input(request({ resources: { ...(request({}).resources as object), memoryMiB: -5 } })),
    expect: /memoryMiB: must be a non-negative integer, got -5/,
  },
  {
    name: 'acquire: priority as a word',
    kind: 'update',
    message: 'acquire',
    args: input(request({ priority: 'high' })),
    expect: /priority: must be an integer from -1000 to 1000, got "high"/,
  },
  {
    // A priority only checked to be a safe integer let a hand-sent acquire outrank every step.
    name: 'acquire: a priority far out of range',
    kind: 'update',
    message: 'acquire',
    args: input(request({ priority: 1e12 })),
    expect: /priority: must be an integer from -1000 to 1000, got 1000000000000/,
  },
  {
    // A submit time far in the past aged a request to the top of the queue.
    name: 'acquire: a submit time before 1970',
    kind: 'update',
    message: 'acquire',
    args: input(request({ submittedAt: -1e15 })),
    expect: /submittedAt: must be .*got -1000000000000000/,
  },
  {
    name: 'acquire: a request for nothing at all',
    kind: 'update',
    message: 'acquire',
    args: input(
      request({ resources: { ...(request({}).resources as object), cpuMilli: 0, memoryMiB: 0, gpuMilli: 0 } }),
    ),
    expect: /resources: must ask for some cpu, memory or gpu/,
  },
  {
    name: 'acquire: no argument at all',
    kind: 'update',
    message: 'acquire',
    args: [],
    expect: /acquire must be an object, got undefined/,
  },
  {
    name: 'setQuota: a team name with a space and a quantity in words',
    kind: 'update',
    message: 'setQuota',
    args: input({ team: 'bad team', quota: { gpu: 'lots' } }),
    expect: /invalid quota:[\s\S]*team: must be 1-63 letters[\s\S]*quota\.gpu/,
  },
  {
    name: 'setQuota: a list instead of a quota',
    kind: 'update',
    message: 'setQuota',
    args: input([]),
    expect: /quota must be an object, got \[\] \(array\)/,
  },
  {
    name: 'removeQuota: a team without a quota',
    kind: 'update',
    message: 'removeQuota',
    args: input('nobody'),
    expect: /team "nobody" has no quota; teams with quotas: vision/,
  },
  {
    name: 'setPolicy: an unknown placement',
    kind: 'update',
    message: 'setPolicy',
    args: input({ placement: 'random' }),
    expect: /placement: must be one of .*got "random"/,
  },
  {
    name: 'setPolicy: preemption as a word',
    kind: 'update',
    message: 'setPolicy',
    args: input({ preemption: 'yes' }),
    expect: /preemption: must be true or false, got "yes"/,
  },
  {
    name: 'setPolicy: a fair-share half-life below zero',
    kind: 'update',
    message: 'setPolicy',
    args: input({ fairShareHalfLifeMs: -5 }),
    expect: /fairShareHalfLifeMs: must be a whole number >= 0, got -5/,
  },
  {
    name: 'setQuota: a fair-share weight of 0',
    kind: 'update',
    message: 'setQuota',
    args: input({ team: 'vision', weight: 0 }),
    expect: /invalid quota:[\s\S]*weight: must be a number greater than 0 .*got 0/,
  },
  {
    name: 'setPolicy: a setting that does not exist',
    kind: 'update',
    message: 'setPolicy',
    args: input({ noSuchKnob: 1 }),
    expect: /noSuchKnob: is not a policy setting/,
  },
  {
    name: 'setHealthPolicy: a lease TTL of 5 ms',
    kind: 'update',
    message: 'setHealthPolicy',
    args: input({ leaseTtlMs: 5 }),
    expect: /leaseTtlMs: must be a whole number of milliseconds, at least 1000/,
  },
  {
    name: 'setHealthPolicy: a node lost before it is not ready',
    kind: 'update',
    message: 'setHealthPolicy',
    args: input({ nodeNotReadyAfterMs: 50000, nodeLostAfterMs: 40000 }),
    expect: /nodeLostAfterMs: must be at least nodeNotReadyAfterMs \(50000\)/,
  },
  {
    name: 'drain: a node the pool does not have',
    kind: 'update',
    message: 'drain',
    args: input({ nodeId: 'ghost', drain: true }),
    expect: /no node "ghost" in pool/,
  },
  {
    name: 'drain: drain as a word',
    kind: 'update',
    message: 'drain',
    args: input({ nodeId: 'ghost', drain: 'yes' }),
    expect: /drain needs \{ nodeId: string, drain: boolean \}/,
  },
  {
    name: 'release: a number for a request id',
    kind: 'update',
    message: 'release',
    args: input(42),
    expect: /release needs a request id/,
  },
  {
    name: 'an Update the pool does not have (quota by another name)',
    kind: 'update',
    message: 'setQuotas',
    args: input({ team: 'vision', quota: { gpu: 100 } }),
    expect: /setQuotas/,
  },
  {
    name: 'acquire: a payload in an encoding allot never writes',
    kind: 'update',
    message: 'acquire',
    args: ['--input', '"x"', '--input-meta', 'encoding=binary/weird'],
    expect: /acquire must be an object/,
  },
  {
    name: 'acquire signal: an empty object',
    kind: 'signal',
    message: 'acquire',
    args: input({}),
    expect: /dropped an invalid acquire signal/,
  },
  {
    name: 'acquire signal: a string',
    kind: 'signal',
    message: 'acquire',
    args: input('give me GPUs'),
    expect: /dropped an invalid acquire signal/,
  },
  {
    name: 'release signal: a string instead of { requestId }',
    kind: 'signal',
    message: 'release',
    args: input('lease-1'),
    expect: /dropped an invalid release signal/,
  },
  {
    name: 'release signal: a request the pool never saw',
    kind: 'signal',
    message: 'release',
    args: input({ requestId: 'never-seen' }),
  },
  {
    name: 'registerNode signal: an inventory that is a string',
    kind: 'signal',
    message: 'registerNode',
    args: [...input('gpu-box'), ...input({ token: 't1' })],
    expect: /dropped a node registration/,
  },
  {
    name: 'registerNode signal: negative CPU',
    kind: 'signal',
    message: 'registerNode',
    args: [...input(node({ cpuMilli: -1 })), ...input({ token: 't2' })],
    expect: /dropped a node registration/,
  },
  {
    name: 'renew signal: no request id',
    kind: 'signal',
    message: 'renew',
    args: input({}),
    expect: /dropped an invalid renew signal/,
  },
  {
    name: 'renew signal: a lease the pool does not hold',
    kind: 'signal',
    message: 'renew',
    args: input({ requestId: 'not-held' }),
    expect: /renewal of a lease the pool does not hold/,
  },
  {
    name: 'nodeHeartbeat signal: a number',
    kind: 'signal',
    message: 'nodeHeartbeat',
    args: input(42),
    expect: /dropped an invalid nodeHeartbeat signal/,
  },
  {
    name: 'nodeHeartbeat signal: a node the pool does not have',
    kind: 'signal',
    message: 'nodeHeartbeat',
    args: input({ nodeId: 'ghost' }),
  },
  {
    name: 'a signal the pool does not have (quota by signal)',
    kind: 'signal',
    message: 'setQuota',
    args: input({ team: 'vision', quota: { gpu: 100 } }),
    expect: /dropped a signal the pool does not have: setQuota/,
  },
  {
    name: 'acquire signal: a payload in an encoding allot never writes',
    kind: 'signal',
    message: 'acquire',
    args: ['--input', '"x"', '--input-meta', 'encoding=binary/weird'],
    expect: /dropped a payload for workflow allot-pool\/.*not one allot reads/,
  },
  {
    name: 'release signal: json/plain that is not JSON (raw gRPC)',
    kind: 'signal',
    message: 'release',
    args: [],
    raw: { encoding: 'json/plain', data: '{"requestId":' },
    expect: /dropped a payload for workflow allot-pool\/.*is not JSON/,
  },
  {
    name: 'release signal: raw bytes instead of JSON',
    kind: 'signal',
    message: 'release',
    args: [
      '--input-base64',
      '--input',
      Buffer.from('lease-1').toString('base64'),
      '--input-meta',
      'encoding=binary/plain',
    ],
    expect: /dropped an invalid release signal/,
  },
];

/** Step options given straight to the `allotStep` workflow. */
export const STEP_ROWS: StepRow[] = [
  { name: 'negative GPUs', options: { resources: { gpu: -1 } }, expect: /resources\.gpu: .*got -1/ },
  { name: 'memory in GB', options: { resources: { memory: '8GB' } }, expect: /resources\.memory: .*got "8GB"/ },
  {
    name: 'a command as one shell string',
    options: { command: 'python train.py --lr 0.1' },
    expect: /command: must be a non-empty array of strings \(argv/,
  },
  {
    name: 'an environment value that is a number',
    options: { env: { EPOCHS: 5 } },
    expect: /env\.EPOCHS: must be a string/,
  },
  { name: 'a GPU model that is a list', options: { resources: { gpuModel: ['A100'] } }, expect: /resources\.gpuModel/ },
  { name: 'a typo of an option', options: { gpus: 2 }, expect: /gpus: is not an option of step\(\)/ },
  {
    name: 'limits as a string',
    options: { limits: 'feature-store' },
    expect: /limits: must be an object of whole numbers like \{ "feature-store": 1 \}, got "feature-store" \(string\)/,
  },
  {
    name: 'a negative amount of a limit',
    options: { limits: { fs: -1 } },
    expect: /limits\.fs: must be a whole number of units/,
  },
  { name: 'a name with a slash', options: { name: 'a/b' }, expect: /name: .*without "\/"/ },
  { name: 'a grace period in words', options: { gracePeriodMs: 'long' }, expect: /gracePeriodMs/ },
  {
    name: 'a custom resource amount that is a fraction',
    options: { resources: { custom: { nvme: 0.5 } } },
    expect: /resources\.custom\.nvme: must be a whole number >= 0, got 0\.5/,
  },
  {
    name: 'a custom resource that is negative',
    options: { resources: { custom: { nvme: -1 } } },
    expect: /resources\.custom\.nvme: must be a whole number >= 0, got -1/,
  },
  {
    name: 'a custom resource named like a built-in one',
    options: { resources: { custom: { gpu: 1 } } },
    expect: /resources\.custom\.gpu: must not be gpu, cpu, memory \(built-in resources\)/,
  },
  {
    name: 'a custom resource name with a space',
    options: { resources: { custom: { 'fast disk': 1 } } },
    expect: /resources\.custom\.fast disk: must be a lowercase letter/,
  },
  {
    name: 'custom resources as a string',
    options: { resources: { custom: 'nvme=1' } },
    expect: /resources\.custom: must be an object of whole numbers like \{ "licenses": 2 \}/,
  },
];
