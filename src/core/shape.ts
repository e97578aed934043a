/**
 * Keys of request shapes: requests with equal keys place the same way, so placement and the
 * scheduling cycle cache their answers per key.
 */
import type { PendingRequest, ReplicaPlacement, ResourceRequest } from './types';

/**
 * Keys computed so far, per request object: a queue is scheduled again and again, and one string
 * per request (with its hash cached by the engine) is cheaper than building and hashing a new one
 * each cycle. Requests are never changed once parsed.
 */
const shapeKeys = new WeakMap<ResourceRequest, string>();

/** Distinct keys kept by `intern`; past this many it starts afresh (equal keys stay equal text). */
const INTERN_LIMIT = 50_000;
const interned = new Map<string, string>();

/**
 * One string object per distinct key text. Maps keyed by interned keys find them by identity
 * instead of comparing text (keys built by concatenation are compared character by character).
 */
export function intern(key: string): string {
  const known = interned.get(key);
  if (known !== undefined) return known;
  if (interned.size >= INTERN_LIMIT) interned.clear();
  interned.set(key, key);
  return key;
}

/** A key equal for requests that place the same way (same shape and constraints). */
export function shapeKey(r: ResourceRequest): string {
  let key = shapeKeys.get(r);
  if (key === undefined) {
    const labels = Object.keys(r.labels).length > 0 ? JSON.stringify(r.labels) : '';
    const custom = r.custom ? JSON.stringify(r.custom) : '';
    key = intern(
      `${r.cpuMilli}|${r.memoryMiB}|${r.gpuMilli}|${r.gpuMemoryMiB}|${JSON.stringify(r.gpuModels)}|${labels}|${custom}`,
    );
    shapeKeys.set(r, key);
  }
  return key;
}

/**
 * Where a request object keeps its gang key. A symbol: JSON (the carried state) and structured
 * clones leave it out, and reading it is a plain property load. It is read once per queued request
 * per cycle: at 10,000 queued, a WeakMap lookup and then comparing un-interned key text in the
 * cycle's maps took a third of the cycle.
 */
const GANG_KEY = Symbol('allot.gangKey');

/** How the request's copies are placed (`spread` unless it says otherwise). */
export function replicaPlacement(r: Pick<PendingRequest, 'replicaPlacement'>): ReplicaPlacement {
  return r.replicaPlacement ?? 'spread';
}

/**
 * The shape of a request, its gang size and, for a gang, how its copies are placed: requests with
 * equal keys place the same way. A single copy places alike either way, so its key leaves it out.
 */
export function gangKey(r: PendingRequest): string {
  const cached = (r as { [GANG_KEY]?: string })[GANG_KEY];
  if (cached !== undefined) return cached;
  const replicas = r.replicas ?? 1;
  const key = intern(`${shapeKey(r.resources)}#${replicas}${replicas > 1 ? `:${replicaPlacement(r)}` : ''}`);
  if (Object.isExtensible(r)) Object.defineProperty(r, GANG_KEY, { value: key });
  return key;
}
