/**
 * The folder store against the store contract, and what only a folder has: the files it leaves
 * while writing are neither listed nor left behind.
 */
import { readdirSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { FileStore, openStore } from '../../src/store';
import { tempDir } from '../helpers/temp';
import { storeContract } from './contract';

describe('FileStore', () => {
  const root = tempDir('file-store');
  const store = openStore(`file://${root}`);

  it('opens from a file:// URL as a folder store', () => {
    expect(store).toBeInstanceOf(FileStore);
    expect(store.url).toBe(`file://${root}`);
  });

  storeContract(() => store);

  it('removes the folders a removal empties, and only those', async () => {
    await store.putBytes('prune/a/b/c', 'x');
    await store.putBytes('prune/keep', 'x');
    await store.removePrefix('prune/a/');
    expect(readdirSync(`${root}/prune`)).toEqual(['keep']);
  });
});
