/**
 * A step's artifacts on the node: its inputs downloaded into its work dir before the run (each
 * checked against its sha256), its outputs uploaded to the store after a successful run (each
 * becoming an {@link ArtifactRef} in the step's result). A file is one object; a folder is its
 * files plus a manifest of their paths, sizes and sha256, whose own sha256 is the folder's.
 */
import { mkdirSync, rmSync, statSync } from 'node:fs';
import path from 'node:path';
import { openStoreForUri } from '../store';
import { formatBytes } from '../store/format';
import { artifactPrefix, folderUri, FOLDER_MANIFEST } from '../store/layout';
import type { Store } from '../store/types';
import { StoreNotFoundError } from '../store/types';
import { inputEnvName, outputEnvName } from '../workflows/artifacts';
import type { ArtifactRef } from '../workflows/step-types';
import { progressLines, sha256Bytes, walkFiles } from './files';

/** Why the artifacts of a step stopped it: an input that cannot be had, or an output that is not there. */
export class ArtifactError extends Error {
  constructor(
    readonly type: 'InputUnavailable' | 'OutputMissing',
    message: string,
  ) {
    super(message);
    this.name = 'ArtifactError';
  }
}

/** A folder artifact's manifest. */
interface FolderManifest {
  version: 1;
  files: { path: string; size: number; sha256: string }[];
}

/** Where an artifact's URI is read from: the agent's own store when it holds it, else a store for the URI. */
function locate(uri: string, store: Store | undefined): { store: Store; key: string } {
  const key = store?.keyOf(uri);
  return store && key !== undefined ? { store, key } : openStoreForUri(uri);
}

/** The last part of a URI's path: the name an input file gets in the work dir. */
function baseName(uri: string): string {
  const parts = uri.replace(/\/+$/, '').split('/');
  return parts[parts.length - 1] || 'artifact';
}

/**
 * Downloads a step's inputs into `<workDir>/inputs/<name>/`, checks each against its sha256, and
 * returns the variables that name them (`ALLOT_INPUT_<NAME>`). Throws an `ArtifactError` naming
 * the input when one is missing or does not match.
 */
export async function stageInputs(o: {
  store: Store | undefined;
  inputs: Record<string, ArtifactRef>;
  workDir: string;
  log: (line: string) => void;
  onReceived?: (bytes: number) => void;
}): Promise<Record<string, string>> {
  const env: Record<string, string> = {};
  for (const [name, ref] of Object.entries(o.inputs)) {
    const folder = path.join(o.workDir, 'inputs', name);
    mkdirSync(folder, { recursive: true });
    const fail = (why: string): never => {
      throw new ArtifactError('InputUnavailable', `input ${name} (${ref.uri}) ${why}`);
    };
    // A folder is read through its manifest, inside it.
    const folderUri = ref.kind === 'directory' ? `${ref.uri.replace(/\/?$/, '/')}${FOLDER_MANIFEST}` : undefined;
    let where: { store: Store; key: string };
    try {
      where = locate(folderUri ?? ref.uri, o.store);
    } catch (err) {
      return fail(`cannot be read: ${(err as Error).message}`);
    }
    try {
      if (ref.kind === 'directory') {
        const prefix = where.key.slice(0, where.key.length - FOLDER_MANIFEST.length);
        const raw = await where.store.getBytes(where.key);
        if (!raw) return fail('is not in the store (was it removed?)');
        const sha256 = sha256Bytes(raw);
        if (sha256 !== ref.sha256)
          return fail(`has changed since it was made: its sha256 is ${sha256}, the step was given ${ref.sha256}`);
        const manifest = JSON.parse(Buffer.from(raw).toString('utf8')) as FolderManifest;
        for (const f of manifest.files) {
          if (f.path.split('/').includes('..') || f.path.startsWith('/'))
            return fail(`lists a file outside it: ${f.path}`);
          const got = await where.store.getFile(`${prefix}${f.path}`, path.join(folder, ...f.path.split('/')), {
            onProgress: progressLines(o.log, `allot: downloading input ${name}/${f.path}`),
          });
          if (got.sha256 !== f.sha256)
            return fail(`file ${f.path} does not match its manifest (sha256 ${got.sha256}, expected ${f.sha256})`);
          o.onReceived?.(got.size);
        }
        env[inputEnvName(name)] = folder;
        o.log(
          `allot: input ${name}: ${ref.uri} (${manifest.files.length} files, ${formatBytes(ref.size)}) → ${folder}`,
        );
      } else {
        const file = path.join(folder, baseName(ref.uri));
        const got = await where.store.getFile(where.key, file, {
          onProgress: progressLines(o.log, `allot: downloading input ${name}`),
        });
        o.onReceived?.(got.size);
        if (got.sha256 !== ref.sha256) {
          rmSync(file, { force: true });
          return fail(`has changed since it was made: its sha256 is ${got.sha256}, the step was given ${ref.sha256}`);
        }
        env[inputEnvName(name)] = file;
        o.log(
          `allot: input ${name}: ${ref.uri} (${formatBytes(got.size)}, sha256 ${got.sha256.slice(0, 12)}…) → ${file}`,
        );
      }
    } catch (err) {
      if (err instanceof ArtifactError) throw err;
      if (err instanceof StoreNotFoundError) return fail('is not in the store (was it removed?)');
      return fail(`could not be downloaded: ${(err as Error).message}`);
    }
  }
  return env;
}

/** The variables that tell the workload where to write its outputs, with their folders made. */
export function outputPaths(outputs: Record<string, string>, workDir: string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [name, rel] of Object.entries(outputs)) {
    const abs = path.resolve(workDir, rel);
    mkdirSync(path.dirname(abs), { recursive: true });
    env[outputEnvName(name)] = abs;
  }
  return env;
}

/**
 * Uploads a step's outputs from its work dir to `artifacts/<step id>/<attempt>/<name>/` and returns their
 * references. Throws an `ArtifactError` naming an output that the workload did not leave.
 */
export async function uploadOutputs(o: {
  store: Store;
  stepId: string;
  /** The attempt whose outputs these are (each attempt has its own folder in the store). */
  attempt: number;
  outputs: Record<string, string>;
  workDir: string;
  log: (line: string) => void;
  onSent?: (bytes: number) => void;
}): Promise<Record<string, ArtifactRef>> {
  const refs: Record<string, ArtifactRef> = {};
  for (const [name, rel] of Object.entries(o.outputs)) {
    const abs = path.resolve(o.workDir, rel);
    let isDir: boolean;
    try {
      const st = statSync(abs);
      if (!st.isFile() && !st.isDirectory()) throw new Error('not a file or folder');
      isDir = st.isDirectory();
    } catch {
      throw new ArtifactError(
        'OutputMissing',
        `output ${name}: the workload left nothing at ${rel} (in its work dir, ${outputEnvName(name)}=${abs})`,
      );
    }
    const prefix = artifactPrefix(o.stepId, o.attempt, name);
    // What an earlier attempt or run left there goes first: a folder's listing is only its own.
    await o.store.removePrefix(prefix);
    if (!isDir) {
      const key = `${prefix}${path.basename(abs)}`;
      const put = await o.store.putFile(key, abs, {
        onProgress: progressLines(o.log, `allot: uploading output ${name}`),
      });
      o.onSent?.(put.size);
      refs[name] = { uri: o.store.uri(key), size: put.size, sha256: put.sha256 };
    } else {
      const manifest: FolderManifest = { version: 1, files: [] };
      for (const f of walkFiles(abs)) {
        if (f.rel === FOLDER_MANIFEST) continue;
        const put = await o.store.putFile(`${prefix}${f.rel}`, f.abs, {
          onProgress: progressLines(o.log, `allot: uploading output ${name}/${f.rel}`),
        });
        o.onSent?.(put.size);
        manifest.files.push({ path: f.rel, size: put.size, sha256: put.sha256 });
      }
      const body = JSON.stringify(manifest);
      await o.store.putBytes(`${prefix}${FOLDER_MANIFEST}`, body);
      refs[name] = {
        uri: folderUri(o.store, prefix),
        size: manifest.files.reduce((s, f) => s + f.size, 0),
        sha256: sha256Bytes(body),
        kind: 'directory',
        files: manifest.files.length,
      };
    }
    const ref = refs[name];
    if (ref) o.log(`allot: output ${name}: ${ref.uri} (${formatBytes(ref.size)}, sha256 ${ref.sha256.slice(0, 12)}…)`);
  }
  return refs;
}
