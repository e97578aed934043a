/**
 * The discrete-event simulator: it runs the very same scheduling cycle as the pool workflow
 * (`decide()`, then `applyDecisions()`), over a scenario's nodes, teams and jobs. At each event
 * time it applies completions, the ends of grace periods and arrivals, then runs scheduling
 * cycles until nothing changes. A preempted job loses its work since its last checkpoint and
 * queues again with its original submit time, carrying the time it waited before (aging counts
 * waiting, not running). With fair share, teams' decayed usage is counted at each event time,
 * before anything is granted or given back, by the pool's own `accrueUsage`.
 */
import type { CycleState, LeaseTerms, NodeRecord, UsageHistory } from '../core';
import { FragmentationModel, accrueUsage, applyDecisions, clusterCapacity, decide } from '../core';
import type { Scenario, SimJob } from './scenario';

/** One job's outcome, in seconds. */
export interface JobOutcome {
  name: string;
  /** First start; `null` if the job never ran. */
  start: number | null;
  /** Final completion; `null` if it never completed. */
  end: number | null;
  /** Node(s) of the last run, comma-separated for a gang spread over nodes. */
  node: string | null;
  /** GPU indices of the last run on its first node. */
  gpus: number[];
  preemptions: number;
  /** First start minus submit. */
  wait: number | null;
  /** Why it never ran or did not complete (`Unschedulable: ...`, `TimeLimit`, or the last waiting reason). */
  reason: string | null;
}

/** A GPU held by a job over an interval (for the Gantt chart). */
export interface GpuInterval {
  job: string;
  node: string;
  gpu: number;
  milli: number;
  start: number;
  end: number;
}

/** What a simulation produces. */
export interface SimulationRun {
  jobs: JobOutcome[];
  /** GPU allocation share and queue length after each event time (seconds). */
  timeline: { time: number; gpuAllocated: number; queued: number }[];
  intervals: GpuInterval[];
  gpuCapacity: number;
  /** Teams' decayed usage at the last event time, with fair share and a half-life. */
  usage?: UsageHistory;
}

interface JobState {
  job: SimJob;
  doneMs: number;
  /** Time waited in the queue in earlier attempts, ms (aging counts it, not time run). */
  waitedMs: number;
  /** When it was queued this time, ms. */
  queuedAt: number;
  attempt: number;
  firstStart?: number;
  end?: number;
  runStart?: number;
  preemptions: number;
  reason: string | null;
  node: string | null;
  gpus: number[];
  rejected: boolean;
  seq: number;
}

type Event = { at: number; kind: 'finish' | 'stopped'; job: string; attempt: number };

/** Runs a scenario to the end. */
export function simulate(scenario: Scenario): SimulationRun {
  const nodes: NodeRecord[] = scenario.nodes.map((spec) => ({ spec, status: 'Ready', registeredAt: 0 }));
  const workload = FragmentationModel.fromRequests(scenario.jobs.map((j) => j.resources));
  const states = new Map<string, JobState>();
  scenario.jobs.forEach((job, seq) =>
    states.set(job.name, {
      job,
      doneMs: 0,
      waitedMs: 0,
      queuedAt: job.submitMs,
      attempt: 0,
      preemptions: 0,
      reason: null,
      node: null,
      gpus: [],
      rejected: false,
      seq,
    }),
  );
  const arrivals = [...scenario.jobs].sort(
    (a, b) => a.submitMs - b.submitMs || (states.get(a.name)?.seq ?? 0) - (states.get(b.name)?.seq ?? 0),
  );
  const gpuCapacity = scenario.nodes.reduce((s, n) => s + n.gpus.length * 1000, 0);
  // The simulated pool's leases and queue: each cycle's decisions change them as a pool's.
  const cycle: CycleState = { leases: [], queue: [] };
  const terms: LeaseTerms = {
    leaseId: (r, replica) => `${r.requestId}#${states.get(r.requestId)?.attempt ?? 0}/${replica}`,
  };
  const events: Event[] = [];
  const intervals: GpuInterval[] = [];
  const timeline: SimulationRun['timeline'] = [];
  const open = new Map<string, GpuInterval[]>();
  let next = 0;
  const capacity = clusterCapacity(scenario.nodes);
  const { fairShare, fairShareHalfLifeMs } = scenario.policy;
  // The nodes are there from 0 s: their capacity counts from then, as in a pool whose nodes have
  // registered, not from the first arrival (which would make early use weigh more).
  let history: UsageHistory | undefined = fairShare
    ? accrueUsage(undefined, [], capacity, 0, fairShareHalfLifeMs)
    : undefined;

  const enqueue = (s: JobState, now: number): void => {
    s.queuedAt = now;
    cycle.queue.push({
      requestId: s.job.name,
      owner: { kind: 'client', name: s.job.name },
      resources: s.job.resources,
      priority: s.job.priority,
      team: s.job.team,
      label: s.job.name,
      submittedAt: s.job.submitMs,
      queuedAt: now,
      waitedMs: s.waitedMs,
      seq: s.seq,
      reason: 'Pending',
      message: 'not yet considered',
      replicas: s.job.replicas,
      ...(s.job.replicaPlacement ? { replicaPlacement: s.job.replicaPlacement } : {}),
      timeLimitMs: Math.max(1, s.job.timeLimitMs - s.doneMs),
      preemptible: s.job.preemptible,
      ...(s.job.limits ? { limits: s.job.limits } : {}),
    });
  };
  const stopRun = (s: JobState, now: number): void => {
    cycle.leases = cycle.leases.filter((l) => l.requestId !== s.job.name);
    for (const iv of open.get(s.job.name) ?? []) {
      iv.end = now / 1000;
      intervals.push(iv);
    }
    open.delete(s.job.name);
  };

  for (;;) {
    const nextArrival = arrivals[next]?.submitMs ?? Infinity;
    const nextEvent = events.reduce((m, e) => Math.min(m, e.at), Infinity);
    const now = Math.min(nextArrival, nextEvent);
    if (now === Infinity) break;
    // Usage up to now, while the leases held since the last event time are still held.
    if (fairShare) history = accrueUsage(history, cycle.leases, capacity, now, fairShareHalfLifeMs);
    // Completions and ends of grace periods, then arrivals.
    for (const e of events.filter((x) => x.at === now)) {
      const s = states.get(e.job);
      if (!s || s.attempt !== e.attempt) continue;
      if (e.kind === 'finish') {
        s.doneMs += now - (s.runStart ?? now);
        stopRun(s, now);
        s.end = now;
        if (s.doneMs < s.job.durationMs)
          s.reason = `TimeLimit: stopped after its time limit of ${s.job.timeLimitMs / 1000}s`;
      } else {
        if (!cycle.leases.some((l) => l.requestId === s.job.name)) continue;
        const progress = s.doneMs + (now - (s.runStart ?? now));
        s.doneMs = s.job.checkpointEveryMs
          ? Math.floor(progress / s.job.checkpointEveryMs) * s.job.checkpointEveryMs
          : 0;
        stopRun(s, now);
        s.attempt++;
        enqueue(s, now);
      }
    }
    for (let i = events.length - 1; i >= 0; i--) if (events[i]?.at === now) events.splice(i, 1);
    while (next < arrivals.length && arrivals[next]?.submitMs === now) {
      const s = states.get((arrivals[next] as SimJob).name);
      if (s) enqueue(s, now);
      next++;
    }
    // Scheduling cycles until nothing changes at this time.
    for (let round = 0; round < 1000; round++) {
      const d = decide(
        { ...cycle, nodes, teams: scenario.teams, ...(scenario.limits ? { limits: scenario.limits } : {}) },
        {
          now,
          policy: scenario.policy,
          workload,
          ...(fairShare ? { fairShare: { ...(history ? { history } : {}), weights: scenario.weights ?? [] } } : {}),
        },
      );
      const applied = applyDecisions(cycle, d, now, terms);
      for (const r of applied.rejected) {
        const s = states.get(r.requestId);
        if (s) {
          s.rejected = true;
          s.reason = `${r.reason}: ${r.message}`;
        }
      }
      for (const { request, leases } of applied.granted) {
        const s = states.get(request.requestId);
        if (!s) continue;
        s.firstStart ??= now;
        s.runStart = now;
        s.waitedMs += now - s.queuedAt;
        s.node = [...new Set(leases.map((l) => l.nodeId))].join(',');
        s.gpus = leases[0]?.gpus.map((x) => x.index) ?? [];
        const runs: GpuInterval[] = [];
        for (const l of leases)
          for (const gpu of l.gpus)
            runs.push({
              job: s.job.name,
              node: l.nodeId,
              gpu: gpu.index,
              milli: gpu.milli,
              start: now / 1000,
              end: now / 1000,
            });
        open.set(s.job.name, runs);
        const remaining = s.job.durationMs - s.doneMs;
        events.push({
          at: now + Math.min(remaining, request.timeLimitMs ?? remaining),
          kind: 'finish',
          job: s.job.name,
          attempt: s.attempt,
        });
      }
      let stoppedNow = false;
      for (const p of d.preemptions) {
        const s = states.get(p.requestId);
        if (!s) continue;
        s.preemptions++;
        events.push({ at: now + scenario.policy.gracePeriodMs, kind: 'stopped', job: s.job.name, attempt: s.attempt });
        if (scenario.policy.gracePeriodMs === 0) stoppedNow = true;
      }
      if (!stoppedNow) break;
      // Zero grace period: the victims stop at once, and the cycle runs again at the same time.
      for (const e of events.filter((x) => x.at === now && x.kind === 'stopped')) {
        const s = states.get(e.job);
        if (!s || s.attempt !== e.attempt) continue;
        const progress = s.doneMs + (now - (s.runStart ?? now));
        s.doneMs = s.job.checkpointEveryMs
          ? Math.floor(progress / s.job.checkpointEveryMs) * s.job.checkpointEveryMs
          : 0;
        stopRun(s, now);
        s.attempt++;
        enqueue(s, now);
      }
      for (let i = events.length - 1; i >= 0; i--)
        if (events[i]?.at === now && events[i]?.kind === 'stopped') events.splice(i, 1);
    }
    let allocated = 0;
    for (const l of cycle.leases) for (const g of l.gpus) allocated += g.milli;
    timeline.push({
      time: now / 1000,
      gpuAllocated: gpuCapacity > 0 ? allocated / gpuCapacity : 0,
      queued: cycle.queue.length,
    });
  }
  for (const r of cycle.queue) {
    const s = states.get(r.requestId);
    if (s && !s.rejected) s.reason = `${r.reason}: ${r.message}`;
  }
  const jobs = scenario.jobs.map((job): JobOutcome => {
    const s = states.get(job.name) as JobState;
    const start = s.firstStart === undefined ? null : s.firstStart / 1000;
    return {
      name: job.name,
      start,
      end: s.end === undefined ? null : s.end / 1000,
      node: s.node,
      gpus: s.gpus,
      preemptions: s.preemptions,
      wait: start === null ? null : start - job.submitMs / 1000,
      reason: s.reason,
    };
  });
  return { jobs, timeline, intervals, gpuCapacity, ...(history ? { usage: history } : {}) };
}
