/**
 * The state a pool carries across continue-as-new. Temporal refuses payloads over 2 MiB, and a
 * pool with ten thousand queued requests has about 5 MB of state as JSON; deflated, it is a
 * tenth of that. Small states stay plain JSON, readable in the Temporal UI as the run's input.
 */
import { deflateSync, inflateSync, strFromU8, strToU8 } from 'fflate';
import type { PoolStateData } from '../core';

/** States up to this size (characters of JSON) are carried as plain JSON. */
export const PLAIN_STATE_LIMIT = 256 * 1024;

/** The most a carried state may weigh, bytes: Temporal's limit is 2 MiB for the whole input. */
export const CARRIED_STATE_LIMIT = 1.75 * 1024 * 1024;

/** A state ready to carry: as JSON, or as deflated JSON bytes. */
export type CarriedState = { state: PoolStateData; bytes: number } | { packed: Uint8Array; bytes: number };

/** Packs a state for continue-as-new. */
export function packState(state: PoolStateData): CarriedState {
  const json = JSON.stringify(state);
  if (json.length <= PLAIN_STATE_LIMIT) return { state, bytes: json.length };
  const packed = deflateSync(strToU8(json), { level: 6 });
  return { packed, bytes: packed.length };
}

/** Reads a state that {@link packState} deflated. */
export function unpackState(packed: Uint8Array): PoolStateData {
  return JSON.parse(strFromU8(inflateSync(packed))) as PoolStateData;
}
