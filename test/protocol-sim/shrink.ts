/**
 * Shrinking a failing run (delta debugging): drop input events, in ever smaller chunks, as long as
 * the run still breaks the same invariant. Returns the indices of the events kept.
 */
import { runScenario } from './run';
import type { Scenario } from './scenario';

/** Most runs a shrink may take. */
const MAX_RUNS = 400;

export function shrink(scenario: Scenario, invariant: string): number[] {
  let kept = scenario.events.map((_, i) => i);
  let runs = 0;
  const fails = (indices: number[]): boolean => {
    runs++;
    const events = indices.map((i) => scenario.events[i]).filter((e) => e !== undefined);
    return runScenario({ ...scenario, events }, { trace: 0 }).violations.some((v) => v.invariant === invariant);
  };
  let chunk = Math.max(1, Math.floor(kept.length / 2));
  while (chunk >= 1 && runs < MAX_RUNS) {
    let removed = false;
    for (let start = 0; start < kept.length && runs < MAX_RUNS;) {
      const candidate = [...kept.slice(0, start), ...kept.slice(start + chunk)];
      if (candidate.length > 0 && fails(candidate)) {
        kept = candidate;
        removed = true;
      } else start += chunk;
    }
    if (!removed) chunk = Math.floor(chunk / 2);
  }
  return kept;
}
