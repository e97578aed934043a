/**
 * Kubernetes-style quantities, parsed into integer units: milli-CPU, MiB, milli-GPU.
 *
 * ```ts
 * parseCpu('500m'); // 500
 * parseMemory('8Gi'); // 8192
 * parseGpu(0.5); // 500
 * ```
 */
import { AllotError, describeValue } from './errors';

/** A quantity that could not be parsed; carries the field, the value and the allowed form. */
export class QuantityError extends AllotError {
  readonly code = 'invalid_quantity';
  constructor(
    readonly field: string,
    readonly value: unknown,
    readonly allowed: string,
  ) {
    super(`${field} must be ${allowed}, got ${describeValue(value)}`);
    this.name = 'QuantityError';
  }
}

const CPU_FORM = 'a number of cores like 2, "2", "1.5" or milli-cores like "500m"';
const MEMORY_FORM =
  'a size like "512Mi", "8Gi", "1Ti" or a number of bytes (binary suffixes Ki, Mi, Gi, Ti; or k, M, G, T)';
const GPU_FORM = 'a whole number of GPUs (0, 1, 2, ...) or a fraction of one GPU in (0, 1) with at most 2 decimals';

const NUMBER = /^(\d+(?:\.\d+)?|\.\d+)$/;

/** Parses CPU into milli-cores. Accepts `2`, `"2"`, `"1.5"`, `"500m"`. */
export function parseCpu(value: unknown, field = 'cpu'): number {
  if (typeof value === 'number') {
    if (!Number.isFinite(value) || value < 0) throw new QuantityError(field, value, CPU_FORM);
    return checkedInteger(Math.round(value * 1000), field, value, CPU_FORM);
  }
  if (typeof value !== 'string') throw new QuantityError(field, value, CPU_FORM);
  const text = value.trim();
  if (text.endsWith('m')) {
    const digits = text.slice(0, -1);
    if (!/^\d+$/.test(digits)) throw new QuantityError(field, value, CPU_FORM);
    return checkedInteger(Number(digits), field, value, CPU_FORM);
  }
  if (!NUMBER.test(text)) throw new QuantityError(field, value, CPU_FORM);
  const milli = Number(text) * 1000;
  if (!Number.isInteger(Math.round(milli * 1e6) / 1e6)) throw new QuantityError(field, value, CPU_FORM);
  return checkedInteger(Math.round(milli), field, value, CPU_FORM);
}

const MEMORY_UNITS: Record<string, number> = {
  '': 1 / (1024 * 1024),
  Ki: 1 / 1024,
  Mi: 1,
  Gi: 1024,
  Ti: 1024 * 1024,
  Pi: 1024 * 1024 * 1024,
  k: 1000 / (1024 * 1024),
  M: 1e6 / (1024 * 1024),
  G: 1e9 / (1024 * 1024),
  T: 1e12 / (1024 * 1024),
};

/** Parses memory into MiB (rounded up). Accepts `"512Mi"`, `"8Gi"`, `"1G"`, or a number of bytes. */
export function parseMemory(value: unknown, field = 'memory'): number {
  if (typeof value === 'number') {
    if (!Number.isFinite(value) || value < 0) throw new QuantityError(field, value, MEMORY_FORM);
    return checkedInteger(Math.ceil(value / (1024 * 1024)), field, value, MEMORY_FORM);
  }
  if (typeof value !== 'string') throw new QuantityError(field, value, MEMORY_FORM);
  const match = /^(\d+(?:\.\d+)?|\.\d+)(Ki|Mi|Gi|Ti|Pi|k|M|G|T)?$/.exec(value.trim());
  if (!match) throw new QuantityError(field, value, MEMORY_FORM);
  const unit = MEMORY_UNITS[match[2] ?? ''];
  if (unit === undefined) throw new QuantityError(field, value, MEMORY_FORM);
  return checkedInteger(Math.ceil(Number(match[1]) * unit - 1e-9), field, value, MEMORY_FORM);
}

/** Parses a GPU count into milli-GPUs: whole GPUs (`2` → 2000) or a fraction of one (`0.25` → 250). */
export function parseGpu(value: unknown, field = 'gpu'): number {
  const n = typeof value === 'string' && NUMBER.test(value.trim()) ? Number(value.trim()) : value;
  if (typeof n !== 'number' || !Number.isFinite(n) || n < 0) throw new QuantityError(field, value, GPU_FORM);
  if (Number.isInteger(n)) return checkedInteger(n * 1000, field, value, GPU_FORM);
  if (n > 1) throw new QuantityError(field, value, GPU_FORM);
  const hundredths = Math.round(n * 100);
  if (Math.abs(hundredths - n * 100) > 1e-9 || hundredths <= 0) throw new QuantityError(field, value, GPU_FORM);
  return hundredths * 10;
}

/** Formats milli-CPU for people: `1500` → `"1.5"`, `250` → `"250m"`. */
export function formatCpu(milli: number): string {
  return milli % 1000 === 0 || milli >= 1000 ? String(milli / 1000) : `${milli}m`;
}

/** Formats MiB for people: `8192` → `"8Gi"`, `1536` → `"1.5Gi"`, `300` → `"300Mi"`. */
export function formatMemory(mib: number): string {
  if (mib >= 1024 * 1024 && mib % (1024 * 1024) === 0) return `${mib / (1024 * 1024)}Ti`;
  if (mib >= 1024) return `${Math.round((mib / 1024) * 100) / 100}Gi`;
  return `${mib}Mi`;
}

/** Formats milli-GPU for people: `2000` → `"2"`, `500` → `"0.5"`. */
export function formatGpu(milli: number): string {
  return String(milli / 1000);
}

function checkedInteger(n: number, field: string, value: unknown, allowed: string): number {
  if (!Number.isSafeInteger(n)) throw new QuantityError(field, value, allowed);
  return n;
}
