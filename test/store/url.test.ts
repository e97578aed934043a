/**
 * Store URLs and artifact URIs: which are refused, and that each refusal names the value (never a
 * secret in it) and says what is allowed.
 */
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { FileStore, S3Store, StoreUrlError, openStore, openStoreForUri, storeUrlProblem } from '../../src/store';

describe('storeUrlProblem', () => {
  it.each([
    ['file:///srv/allot-store'],
    ['file:///srv/allot-store/'],
    ['file://localhost/srv/allot-store'],
    ['s3://bucket'],
    ['s3://bucket/'],
    ['s3://my.bucket-1/runs/2024'],
    ['s3://bucket/runs/2024/'],
  ])('accepts %j', (url) => {
    expect(storeUrlProblem(url)).toBeUndefined();
  });

  it.each([
    ['', /^store URL is empty: use file:\/\/\/path or s3:\/\/bucket\/prefix$/],
    ['ftp://x', /^store URL "ftp:\/\/x" is not supported: use file:\/\/\/path or s3:\/\/bucket\/prefix$/],
    ['https://example.com/b', /"https:\/\/example.com\/b" is not supported/],
    ['/srv/store', /"\/srv\/store" is not supported: use file:\/\/\/srv\/store for a folder/],
    ['store/here', /"store\/here" is not supported/],
    ['file:store', /"file:store" is a relative path: a folder is file:\/\/ followed by an absolute path/],
    ['file://store/here', /"file:\/\/store\/here" names the host "store" \(or a relative path\)/],
    ['file:///srv/store?x=1', /"file:\/\/\/srv\/store\?x=1" has a query or fragment/],
    ['s3://', /"s3:\/\/" has no bucket: use s3:\/\/bucket/],
    ['s3:///prefix', /"s3:\/\/\/prefix" has no bucket/],
    ['s3:bucket', /"s3:bucket" is not supported: an S3 store is s3:\/\/bucket/],
    ['s3://My_Bucket/x', /invalid bucket name "My_Bucket": bucket names are 3-63 lowercase letters/],
    ['s3://ab', /invalid bucket name "ab"/],
    ['s3://bucket:9000/x', /invalid bucket name "bucket:9000"/],
    ['s3://a..b', /invalid bucket name "a..b"/],
    [
      's3://bucket?region=eu-west-1',
      /"s3:\/\/bucket\?region=eu-west-1" has a query: S3 settings come from the environment/,
    ],
    ['s3://bucket/../x', /"s3:\/\/bucket\/..\/x" has a prefix that cannot be used: .*leaves the store/],
    ['s3://bucket/a//b', /has a prefix that cannot be used: .*empty segment/],
  ])('refuses %j, naming it and what is allowed', (url, message) => {
    expect(storeUrlProblem(url)).toMatch(message);
  });

  it.each(['s3://AKIAEXAMPLE:wJalrXUtnFEMI@bucket/p', 's3://AKIAEXAMPLE@bucket'])(
    'refuses credentials in %j without repeating them',
    (url) => {
      const problem = storeUrlProblem(url) ?? '';
      expect(problem).toMatch(
        /^store URL "s3:\/\/\*\*\*@bucket(\/p)?" carries credentials: put credentials in the environment \(AWS_ACCESS_KEY_ID, AWS_PROFILE...\), never in the URL$/,
      );
      expect(problem).not.toContain('AKIAEXAMPLE');
      expect(() => openStore(url)).toThrow(StoreUrlError);
      expect(() => openStore(url)).not.toThrow(/AKIAEXAMPLE|wJalr/);
    },
  );
});

describe('openStore', () => {
  it('opens a folder at the absolute path of a file URL, percent-decoded', () => {
    const store = openStore('file:///srv/allot%20store/');
    expect(store).toBeInstanceOf(FileStore);
    expect((store as FileStore).root).toBe('/srv/allot store');
    expect(store.url).toBe('file:///srv/allot%20store');
  });

  it('opens a bucket under a prefix without slashes at either end', () => {
    const store = openStore('s3://bucket/runs/', { AWS_REGION: 'eu-west-1' });
    expect(store).toBeInstanceOf(S3Store);
    expect(store.url).toBe('s3://bucket/runs');
    expect(store.uri('a/b')).toBe('s3://bucket/runs/a/b');
    expect(store.keyOf('s3://bucket/runs/a/b')).toBe('a/b');
    expect(store.keyOf('s3://bucket/runs2/a/b')).toBeUndefined();
    expect(store.keyOf('s3://bucket/runs/../a')).toBeUndefined();
  });

  it('throws StoreUrlError with the problem for a URL it refuses', () => {
    expect(() => openStore('ftp://x')).toThrow(new StoreUrlError('ftp://x', storeUrlProblem('ftp://x') ?? ''));
  });
});

describe('openStoreForUri', () => {
  it('reads a file URI from the folder that holds the file', () => {
    const { store, key } = openStoreForUri('file:///srv/runs/42/model.ckpt');
    expect(store).toBeInstanceOf(FileStore);
    expect((store as FileStore).root).toBe(path.normalize('/srv/runs/42'));
    expect(key).toBe('model.ckpt');
    expect(store.uri(key)).toBe('file:///srv/runs/42/model.ckpt');
  });

  it('reads an s3 URI from its bucket, the rest being the key', () => {
    const { store, key } = openStoreForUri('s3://bucket/runs/42/model.ckpt', { AWS_REGION: 'eu-west-1' });
    expect(store).toBeInstanceOf(S3Store);
    expect(key).toBe('runs/42/model.ckpt');
    expect(store.uri(key)).toBe('s3://bucket/runs/42/model.ckpt');
  });

  it.each(['s3://bucket', 's3://bucket/runs/', 'file:///srv/runs/', 'file:///', 'ftp://x/y'])(
    'refuses %j, which names no object',
    (uri) => {
      expect(() => openStoreForUri(uri)).toThrow(StoreUrlError);
    },
  );
});
