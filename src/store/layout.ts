/**
 * Where things live in a store, one layout for every store (documented in docs/pipelines.md):
 *
 * ```
 * checkpoints/<pipeline id>/<step>/manifests/<n>.json  each save: each file's path, size, sha256 (the highest n is the latest)
 * checkpoints/<pipeline id>/<step>/blobs/<sha256>     file contents, by their sha256
 * artifacts/<pipeline id>/<step>/<attempt>/<output>/<file>   a step's output file
 * artifacts/<pipeline id>/<step>/<attempt>/<output>/...      a step's output folder, with .allot-manifest.json
 * ```
 *
 * A step id is `<pipeline id>/<step name>`; each of its `/`-separated parts is percent-encoded
 * where it holds anything but letters, digits and `._-`, so that no id can reach outside its own
 * prefix.
 */

/** The key prefix of a step id (no trailing `/`). */
export function stepKey(stepId: string): string {
  return stepId
    .split('/')
    .map((part) =>
      part === '' ? '%' : encodeURIComponent(part).replace(/^\.\.?$/, (dots) => '%2E'.repeat(dots.length)),
    )
    .join('/');
}

/** The folder of a step's checkpoint (ends with `/`). */
export function checkpointPrefix(stepId: string): string {
  return `checkpoints/${stepKey(stepId)}/`;
}

/** The folder of a step's checkpoint manifests, one per save (ends with `/`). */
export function checkpointManifestPrefix(stepId: string): string {
  return `${checkpointPrefix(stepId)}manifests/`;
}

/** The folder of a step's checkpoint blobs (ends with `/`). */
export function checkpointBlobPrefix(stepId: string): string {
  return `${checkpointPrefix(stepId)}blobs/`;
}

/**
 * The folder of one output of one attempt of a step (ends with `/`): each attempt writes its own,
 * so that a late upload of an attempt whose step has moved on never changes what another returned.
 */
export function artifactPrefix(stepId: string, attempt: number, output: string): string {
  return `artifacts/${stepKey(stepId)}/${attempt}/${encodeURIComponent(output)}/`;
}

/** The manifest of an output folder, inside it. */
export const FOLDER_MANIFEST = '.allot-manifest.json';

/** The URI of a folder (a key prefix ending with `/`) in a store. */
export function folderUri(store: { uri(key: string): string }, prefix: string): string {
  return store.uri(`${prefix}_`).slice(0, -1);
}
