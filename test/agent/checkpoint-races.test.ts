/**
 * two attempts of one step writing the same checkpoint, and two steps sharing one
 * local checkpoint folder. Each test states the invariant it expects.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CheckpointSync, latestCheckpoint } from '../../src/activities/checkpoint-sync';
import type { CheckpointManifest } from '../../src/activities/checkpoint-sync';
import { stepPaths } from '../../src/activities/launch';
import { openStore } from '../../src/store';
import { checkpointBlobPrefix } from '../../src/store/layout';
import type { Store } from '../../src/store/types';
import { tempDir } from '../helpers/temp';

const STEP = 'pipe-1/train';

async function manifest(store: Store, stepId = STEP): Promise<CheckpointManifest | undefined> {
  return (await latestCheckpoint(store, stepId))?.manifest;
}

/** Blobs a manifest lists that the store does not hold. */
async function missingBlobs(store: Store, stepId = STEP): Promise<string[]> {
  const m = await manifest(store, stepId);
  const out: string[] = [];
  for (const f of m?.files ?? []) {
    if (!(await store.stat(`${checkpointBlobPrefix(stepId)}${f.sha256}`))) out.push(f.path);
  }
  return out;
}

function sync(
  store: Store,
  dir: string,
  nodeId: string,
  attempt: number,
  o: { stepId?: string; lines?: string[]; lease?: string } = {},
): CheckpointSync {
  return new CheckpointSync({
    store,
    stepId: o.stepId ?? STEP,
    dir,
    nodeId,
    attempt,
    leaseId: o.lease ?? `default-${attempt * 10}`,
    intervalMs: 60_000,
    log: (l) => o.lines?.push(l),
  });
}

/** A store whose manifest writes wait for `gate` when it is set (a slow write of a cut-off agent). */
function gated(inner: Store): Store & { gate?: Promise<void>; reached?: () => void } {
  const s: Store & { gate?: Promise<void>; reached?: () => void } = Object.create(inner) as Store;
  s.putBytes = async (key, body) => {
    if (key.includes('/manifests/') && s.gate) {
      s.reached?.();
      await s.gate;
    }
    return inner.putBytes(key, body);
  };
  return s;
}

describe('checkpoint races', () => {
  it("a superseded attempt that succeeds late removes the running attempt's checkpoint; the store then lists blobs it does not hold", async () => {
    const store = openStore(`file://${tempDir('store')}`);
    const a = path.join(tempDir('node-a'), 'ckpt');
    const b = path.join(tempDir('node-b'), 'ckpt');
    const c = path.join(tempDir('node-c'), 'ckpt');
    const onA = sync(store, a, 'a', 1);
    await onA.restore();
    writeFileSync(path.join(a, 'epoch.txt'), '3');
    writeFileSync(path.join(a, 'weights.bin'), Buffer.alloc(50_000, 3));
    await onA.finish();
    // Node a is cut off; attempt 2 (lease default-20) restores on node b and saves.
    const onB = sync(store, b, 'b', 2);
    await onB.restore();
    writeFileSync(path.join(b, 'epoch.txt'), '4');
    await onB.finish();
    // Node a's workload had exited 0; its afterRun (slow output upload, then checkpointRetention
    // "remove") runs late: remove() checks no lease and deletes the manifest and every blob.
    await onA.remove();
    // Attempt 2 goes on and saves again: it lists weights.bin, which it verified once, as present.
    writeFileSync(path.join(b, 'epoch.txt'), '5');
    await onB.finish();
    expect((await manifest(store))?.nodeId).toBe('b');
    // Invariant: every blob the latest manifest lists is in the store (else the checkpoint is lost).
    expect(await missingBlobs(store)).toEqual([]);
    // And a third attempt on another node can restore it (on the code as landed it throws, the
    // launch fails StoreUnavailable, and after 10 such tries the step fails).
    await expect(sync(store, c, 'c', 3).restore()).resolves.toBeUndefined();
  });

  it('an older attempt whose check passed before a newer attempt saved still overwrites the newer manifest (check-then-write race)', async () => {
    const root = tempDir('store');
    const base = openStore(`file://${root}`);
    const slow = gated(openStore(`file://${root}`));
    const a = path.join(tempDir('node-a'), 'ckpt');
    const b = path.join(tempDir('node-b'), 'ckpt');
    const onA = sync(slow, a, 'a', 1);
    await onA.restore();
    writeFileSync(path.join(a, 'epoch.txt'), '3');
    writeFileSync(path.join(a, 'weights.bin'), Buffer.alloc(50_000, 3));
    await onA.finish();
    // Attempt 2 restores on node b.
    const onB = sync(base, b, 'b', 2);
    await onB.restore();
    // Node a (cut off, its workload killed by the fence) makes its final save: its lease check
    // reads its own manifest and passes; the manifest write is slow.
    writeFileSync(path.join(a, 'epoch.txt'), '4');
    let release!: () => void;
    slow.gate = new Promise<void>((r) => (release = r));
    const reached = new Promise<void>((r) => (slow.reached = r));
    const lateFinal = onA.finish().catch(() => undefined);
    await reached;
    // Meanwhile attempt 2 saves new weights and its epoch (its final save: it is preempted).
    writeFileSync(path.join(b, 'weights.bin'), Buffer.alloc(50_000, 9));
    writeFileSync(path.join(b, 'epoch.txt'), '7');
    await onB.finish();
    expect((await manifest(base))?.nodeId).toBe('b');
    release();
    await lateFinal;
    // Invariant: a superseded attempt never replaces a later attempt's checkpoint...
    expect.soft((await manifest(base))?.leaseId).toBe('default-20');
    // ...and the manifest in the store never lists a blob that is gone (b removed a's old weights).
    expect.soft(await missingBlobs(base)).toEqual([]);
  });
});

describe('two steps share one local checkpoint folder', () => {
  it('steps "s_t" of pipeline P and "t" of its sub-pipeline "s" get the same ALLOT_CHECKPOINT_DIR and work dir', () => {
    const a = stepPaths('/data', 'P/s/t', 1);
    const b = stepPaths('/data', 'P/s_t', 1);
    // Invariant: two different steps never share a checkpoint folder, work dir or log.
    expect(a.checkpoint).not.toBe(b.checkpoint);
    expect(a.work).not.toBe(b.work);
    expect(a.log).not.toBe(b.log);
  });

  it('starting one step wipes the running checkpoint of another, and that loss reaches the store', async () => {
    const store = openStore(`file://${tempDir('store')}`);
    const data = tempDir('node');
    // Step "train 1" and step "train_1" of one pipeline (names may hold spaces), on one node.
    const one = stepPaths(data, 'P/train 1', 1).checkpoint;
    const two = stepPaths(data, 'P/train_1', 1).checkpoint;
    const first = sync(store, one, 'n', 1, { stepId: 'P/train 1' });
    await first.restore();
    writeFileSync(path.join(one, 'epoch.txt'), '12');
    await first.finish();
    // The other step starts on the same node: the store has no checkpoint for it, and the folder's
    // state file (the first step's) says this node saved one once: restore empties the folder.
    const second = sync(store, two, 'n', 1, { stepId: 'P/train_1' });
    await second.restore();
    // Invariant: the first step's checkpoint is untouched, on the node and in the store.
    expect(existsSync(path.join(one, 'epoch.txt'))).toBe(true);
    await first.finish();
    expect((await manifest(store, 'P/train 1'))?.files.map((f) => f.path)).toEqual(['epoch.txt']);
  });
});

describe('a folder store that is not there', () => {
  it('restore treats a missing store folder (an unmounted share) as "no checkpoint" and wipes the local copy', async () => {
    const root = tempDir('store');
    const storeDir = path.join(root, 'mnt');
    mkdirSync(storeDir);
    const store = openStore(`file://${storeDir}`);
    const dir = path.join(tempDir('node'), 'ckpt');
    const first = sync(store, dir, 'a', 1);
    await first.restore();
    writeFileSync(path.join(dir, 'epoch.txt'), '40');
    await first.finish();
    // The share is not mounted when the agent restarts the step (its folder is gone).
    renameSync(storeDir, path.join(root, 'elsewhere'));
    const lines: string[] = [];
    const again = sync(store, dir, 'a', 2, { lines });
    // Invariant: a store that cannot be read stops the attempt (StoreUnavailable) rather than
    // starting it from scratch over a checkpoint.
    await expect(again.restore()).rejects.toThrow();
    expect(readFileSync(path.join(dir, 'epoch.txt'), 'utf8')).toBe('40');
  });
});
