/**
 * The one module that sets versioning markers (`patched`, `deprecatePatch`; lint forbids them
 * elsewhere). A workflow change that would make a run in flight replay differently ships behind a
 * patch listed in `LIVE_PATCHES`:
 *
 * ```ts
 * // 1. List it, naming the fixture recorded *before* the change, which pins the old branch.
 * export const LIVE_PATCHES: readonly LivePatch[] = [
 *   { id: 'allot-renew-jitter-v1', change: 'renewals spread over a third of the TTL',
 *     fixture: 'step-succeeded.json', since: '0.2.0', deprecated: false },
 * ];
 * // 2. Branch on it in the workflow.
 * if (isPatched('allot-renew-jitter-v1')) await sleep(jittered); else await sleep(third);
 * ```
 *
 * Retirement: one release after the patch ships, set `deprecated: true` (the old branch goes, the
 * marker stays, so that runs started on either side still replay); in the release after that,
 * remove the entry and the call, and record the fixtures again (docs/upgrading.md).
 */
import { deprecatePatch, patched } from '@temporalio/workflow';

/** A patch that workflow code still branches on. */
export interface LivePatch {
  /** The marker written into histories, `allot-<change>-v<n>`; never reused once shipped. */
  id: string;
  /** What the new branch does differently, in a user's words. */
  change: string;
  /** The replay fixture (test/fixtures/histories) recorded before the change, which pins the old branch. */
  fixture: string;
  /** The release that shipped the patch: deprecate in the next release, remove in the one after. */
  since: string;
  /** True once only the new branch is left (`deprecatePatch`); the entry goes one release later. */
  deprecated: boolean;
}

/** Progressive filling, decayed usage and team weights in fair share (asked only while fair share is on). */
export const FAIR_SHARE_PATCH = 'allot-fair-share-progressive-v1';

/** The live patches, oldest first. */
export const LIVE_PATCHES: readonly LivePatch[] = [
  {
    id: FAIR_SHARE_PATCH,
    change:
      'fair share raises a team share after every grant in a cycle, counts decayed usage, and divides by team weights',
    fixture: 'pool-fair-share-before-progressive.json',
    since: '0.3.0',
    deprecated: false,
  },
];

/**
 * Whether this run takes the new branch of the listed patch `id`: always for a new run, and on
 * replay only where the history holds the marker. A deprecated patch always takes it.
 */
export function isPatched(id: string, patches: readonly LivePatch[] = LIVE_PATCHES): boolean {
  const patch = patches.find((p) => p.id === id);
  if (!patch) {
    const listed = patches.map((p) => p.id).join(', ') || 'none';
    throw new Error(`patch ${JSON.stringify(id)} is not in LIVE_PATCHES (listed: ${listed}); list it in versions.ts`);
  }
  if (patch.deprecated) {
    deprecatePatch(id);
    return true;
  }
  return patched(id);
}

/**
 * The marker of a pool run that continues as new because a fresh worker had to replay it. Not a
 * version: it records a decision that replay cannot work out again (a replay always replays), so
 * that replay takes it at the same task. It never retires.
 */
export const COMPACT_AFTER_REPLAY_MARKER = 'allot-compact-after-replay-v2';

/**
 * Records, once, that this run continues as new after a replay; on replay, true from the task at
 * which the original run recorded it. Call it only when this worker had to replay the run.
 */
export function decideCompactionAfterReplay(): boolean {
  return patched(COMPACT_AFTER_REPLAY_MARKER);
}
