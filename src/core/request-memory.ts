/**
 * What a pool remembers of requests beyond its queue: the ids of requests released or rejected
 * (a late duplicate of their acquire must not queue them again), the rejections of this run (a
 * repeated acquire hears the same answer), and the waiting that steps carry into their next
 * attempt (aging counts it).
 *
 * Invariant: at most `RELEASED_MEMORY` released ids (plus a tenth, forgotten in a batch) and
 * `CARRIED_WAITS` carried waits are kept, so the state stays small; the oldest go first.
 */
import { hash53 } from './hash';
import type { PoolStateData } from './pool-data';
import type { Rejection } from './types';

/** How many released request ids are remembered to drop late duplicates of their acquire. */
export const RELEASED_MEMORY = 10_000;

/** How many steps' carried waiting the pool remembers until they queue again. */
export const CARRIED_WAITS = 2_000;

/** Released ids, this run's rejections and carried waits; owns `released`, `releasedKeys` and `carriedWaits`. */
export class RequestMemory {
  private readonly releasedSet: Set<string>;
  private readonly rejections = new Map<string, Rejection>();

  constructor(private readonly data: PoolStateData) {
    // Released ids are remembered by a short hash: ten thousand of them fit in a small state.
    const keys = [...(data.releasedKeys ?? []), ...data.released.map(hash53)];
    data.releasedKeys = keys.slice(Math.max(0, keys.length - RELEASED_MEMORY));
    data.released = [];
    this.releasedSet = new Set(data.releasedKeys);
  }

  /** Whether the request was released (or rejected) within memory. */
  isReleased(requestId: string): boolean {
    return this.releasedSet.has(hash53(requestId));
  }

  /** Remembers that the request is done with: its acquire, arriving late, is dropped. */
  remember(requestId: string): void {
    const key = hash53(requestId);
    if (this.releasedSet.has(key)) return;
    const keys = (this.data.releasedKeys ??= []);
    this.releasedSet.add(key);
    keys.push(key);
    if (keys.length > RELEASED_MEMORY + RELEASED_MEMORY / 10) {
      // Forget the oldest in a batch: one shift per release would copy the whole list each time.
      for (const old of keys.splice(0, keys.length - RELEASED_MEMORY)) this.releasedSet.delete(old);
    }
  }

  /** Records a rejection: a repeated acquire of the request hears it again. */
  reject(rejection: Rejection): void {
    this.rejections.set(rejection.requestId, rejection);
    this.remember(rejection.requestId);
  }

  /** The rejection recorded for a request in this run, if any. */
  rejectionOf(requestId: string): Rejection | undefined {
    return this.rejections.get(requestId);
  }

  /** Keeps what a step waited so far until it queues again (replacing what it carried before). */
  carryWait(owner: string, waitedMs: number): void {
    const waits = (this.data.carriedWaits ??= []).filter((w) => w.owner !== owner);
    waits.push({ owner, waitedMs });
    if (waits.length > CARRIED_WAITS) waits.splice(0, waits.length - CARRIED_WAITS);
    this.data.carriedWaits = waits;
  }

  /** What a step carries as it queues again, ms (0 if nothing), and forgets it. */
  takeCarriedWait(owner: string): number {
    const waits = this.data.carriedWaits;
    if (!waits || waits.length === 0) return 0;
    const at = waits.findIndex((w) => w.owner === owner);
    if (at < 0) return 0;
    const [w] = waits.splice(at, 1);
    return w?.waitedMs ?? 0;
  }
}
