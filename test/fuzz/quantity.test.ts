/**
 * Fuzzing of the quantity parser and of resource specs: whatever a user or a file gives, the
 * parsers either return integers in their units or reject it with a `QuantityError` naming the
 * allowed form; nothing else escapes, and what they accept means what it says.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  QuantityError,
  formatCpu,
  formatGpu,
  formatMemory,
  parseCpu,
  parseGpu,
  parseMemory,
  parseResources,
} from '../../src/core';

const RUNS = Number(process.env.ALLOT_FUZZ_RUNS ?? 2_000);

/** Text that looks like a quantity often and like junk sometimes. */
const quantityText = fc.oneof(
  fc.string(),
  fc
    .tuple(
      fc.oneof(fc.nat({ max: 1e7 }).map(String), fc.double({ min: 0, max: 1e6, noNaN: true }).map(String)),
      fc.constantFrom('', 'm', 'Ki', 'Mi', 'Gi', 'Ti', 'Pi', 'k', 'M', 'G', 'T', 'GB', 'gi', 'e3', ' ', 'mm'),
      fc.constantFrom('', ' ', '-', '+', '.', '0x'),
    )
    .map(([n, unit, prefix]) => `${prefix}${n}${unit}`),
);
const anyValue = fc.oneof(fc.jsonValue(), quantityText, fc.double(), fc.integer(), fc.bigInt().map(String));

/** Calls a parser; returns its value, or `undefined` when it rejected the input as it should. */
function attempt(parse: (v: unknown) => number, value: unknown): number | undefined {
  try {
    return parse(value);
  } catch (err) {
    expect(err).toBeInstanceOf(QuantityError);
    expect((err as QuantityError).message).toMatch(/must be .*, got /);
    return undefined;
  }
}

describe('the quantity parser, fuzzed', () => {
  it.each([
    ['parseCpu', parseCpu],
    ['parseMemory', parseMemory],
    ['parseGpu', parseGpu],
  ] as const)('%s returns a safe non-negative integer or a QuantityError, for any value', (_, parse) => {
    fc.assert(
      fc.property(anyValue, (value) => {
        const n = attempt(parse, value);
        if (n !== undefined) {
          expect(Number.isSafeInteger(n)).toBe(true);
          expect(n).toBeGreaterThanOrEqual(0);
        }
      }),
      { numRuns: RUNS },
    );
  });

  it('reads units as what they say', () => {
    fc.assert(
      fc.property(fc.nat({ max: 1_000_000 }), (n) => {
        // A zero size parses to -0, which is 0 in every use of it: compare with ===.
        expect(parseMemory(`${n}Mi`) === n).toBe(true);
        expect(parseMemory(`${n}Gi`) === n * 1024).toBe(true);
        expect(parseMemory(`${n}Ki`) === Math.ceil(n / 1024)).toBe(true);
        expect(parseCpu(`${n}m`)).toBe(n);
        expect(parseCpu(n)).toBe(n * 1000);
        expect(parseCpu(String(n))).toBe(n * 1000);
        expect(parseGpu(n)).toBe(n * 1000);
      }),
      { numRuns: RUNS },
    );
  });

  it('never rounds memory down: a request is at least the bytes asked for', () => {
    fc.assert(
      fc.property(fc.nat({ max: 2 ** 40 }), (bytes) => {
        const mib = parseMemory(bytes);
        expect(mib * 1024 * 1024).toBeGreaterThanOrEqual(bytes);
        expect((mib - 1) * 1024 * 1024).toBeLessThan(bytes);
      }),
      { numRuns: RUNS },
    );
  });

  it('orders quantities as numbers are ordered', () => {
    fc.assert(
      fc.property(fc.nat({ max: 1e6 }), fc.nat({ max: 1e6 }), (a, b) => {
        const [lo, hi] = a <= b ? [a, b] : [b, a];
        expect(parseMemory(`${lo}Mi`)).toBeLessThanOrEqual(parseMemory(`${hi}Mi`));
        expect(parseCpu(`${lo}m`)).toBeLessThanOrEqual(parseCpu(`${hi}m`));
        expect(parseMemory(`${lo}G`)).toBeLessThanOrEqual(parseMemory(`${hi}G`));
      }),
      { numRuns: RUNS },
    );
  });

  it('parses what it prints: CPU and GPU exactly, memory to within its 2 printed decimals', () => {
    fc.assert(
      fc.property(fc.nat({ max: 10_000_000 }), fc.nat({ max: 2 ** 30 }), (milli, mib) => {
        expect(parseCpu(formatCpu(milli))).toBe(milli);
        const gpuMilli = milli % 1000 === 0 || milli < 1000 ? milli - (milli % 10) : milli - (milli % 1000);
        expect(parseGpu(formatGpu(gpuMilli))).toBe(gpuMilli);
        const back = parseMemory(formatMemory(mib));
        expect(Math.abs(back - mib)).toBeLessThanOrEqual(Math.max(1, mib * 0.005));
      }),
      { numRuns: RUNS },
    );
  });

  it('takes a share of one GPU in hundredths, and nothing finer', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 99 }), fc.integer({ min: 1, max: 9 }), (hundredths, extra) => {
        expect(parseGpu(hundredths / 100)).toBe(hundredths * 10);
        expect(parseGpu(String(hundredths / 100))).toBe(hundredths * 10);
        expect(() => parseGpu(hundredths / 100 + extra / 10_000)).toThrow(QuantityError);
      }),
      { numRuns: RUNS },
    );
  });
});

describe('resource specs, fuzzed', () => {
  const specArb = fc.dictionary(
    fc.constantFrom('gpu', 'cpu', 'memory', 'gpuMemory', 'gpuModel', 'labels', 'custom', 'gpus', 'mem'),
    anyValue,
  );

  it('give a request of non-negative integers, or issues that each name a field under resources', () => {
    fc.assert(
      fc.property(fc.oneof(specArb, fc.jsonValue()), (spec) => {
        const { request, issues } = parseResources(spec);
        if (request) {
          expect(issues).toEqual([]);
          for (const v of [request.cpuMilli, request.memoryMiB, request.gpuMilli, request.gpuMemoryMiB]) {
            expect(Number.isSafeInteger(v) && v >= 0).toBe(true);
          }
          expect(request.gpuMilli < 1000 || request.gpuMilli % 1000 === 0).toBe(true);
        } else {
          expect(issues.length).toBeGreaterThan(0);
          for (const i of issues) {
            expect(i.path[0]).toBe('resources');
            expect(i.message.length).toBeGreaterThan(0);
          }
        }
      }),
      { numRuns: RUNS },
    );
  });
});
