/**
 * The list of live patches: each names a replay fixture that pins its old branch, the fixtures hold
 * no marker of a patch that is gone, and a patch missing from the list is refused.
 */
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import type { LivePatch } from '../../src/workflows/versions';
import { COMPACT_AFTER_REPLAY_MARKER, LIVE_PATCHES, isPatched } from '../../src/workflows/versions';

const FIXTURES = path.resolve(__dirname, '../fixtures/histories');

/** The patch markers a recorded history holds. */
function markersOf(file: string): string[] {
  const history = JSON.parse(readFileSync(path.join(FIXTURES, file), 'utf8')) as {
    events: {
      markerRecordedEventAttributes?: {
        markerName?: string;
        details?: Record<string, { payloads?: { data?: string }[] }>;
      };
    }[];
  };
  return history.events.flatMap((e) => {
    const attrs = e.markerRecordedEventAttributes;
    const data = attrs?.markerName === 'core_patch' ? attrs.details?.['patch-data']?.payloads?.[0]?.data : undefined;
    return data ? [(JSON.parse(Buffer.from(data, 'base64').toString('utf8')) as { id: string }).id] : [];
  });
}

describe('live patches', () => {
  it('each names a recorded fixture from before the change, and has a unique id', () => {
    const manifest = JSON.parse(readFileSync(path.join(FIXTURES, 'manifest.json'), 'utf8')) as Record<string, string>;
    for (const patch of LIVE_PATCHES) {
      expect(manifest, `fixture of ${patch.id}`).toHaveProperty([patch.fixture]);
      expect(markersOf(patch.fixture), `${patch.fixture} pins the old branch of ${patch.id}`).not.toContain(patch.id);
      expect(patch.id).toMatch(/^allot-[a-z0-9-]+-v\d+$/);
    }
    expect(new Set(LIVE_PATCHES.map((p) => p.id)).size).toBe(LIVE_PATCHES.length);
  });

  it('are the only markers in the recorded fixtures, besides the decision to compact', () => {
    const known = new Set([COMPACT_AFTER_REPLAY_MARKER, ...LIVE_PATCHES.map((p) => p.id)]);
    const files = Object.keys(JSON.parse(readFileSync(path.join(FIXTURES, 'manifest.json'), 'utf8')) as object);
    const stale = files.flatMap((file) =>
      markersOf(file)
        .filter((id) => !known.has(id))
        .map((id) => `${file}: ${id}`),
    );
    expect(stale).toEqual([]);
  });

  it('refuses a patch that is not listed, naming the ones that are', () => {
    const listed: LivePatch[] = [
      { id: 'allot-a-v1', change: 'a', fixture: 'step-succeeded.json', since: '0.1.0', deprecated: false },
    ];
    expect(() => isPatched('allot-b-v1', listed)).toThrow(/"allot-b-v1" is not in LIVE_PATCHES \(listed: allot-a-v1\)/);
    expect(() => isPatched('allot-b-v1')).toThrow(/listed: allot-fair-share-progressive-v1/);
  });
});
