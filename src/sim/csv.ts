/**
 * A small CSV reader for trace files: a header line, then comma-separated rows (fields may be
 * double-quoted). Every problem names the file, the line and the column.
 */
import type { Issue } from '../core';
import { ValidationError } from '../core';

/** One data row: its 1-based line number and its fields by column name. */
export interface CsvRow {
  line: number;
  fields: Record<string, string>;
}

/** Parses CSV text; throws a `ValidationError` naming missing columns. */
export function parseCsv(text: string, file: string, required: readonly string[]): CsvRow[] {
  const lines = text.split(/\r?\n/);
  const header = splitLine(lines[0] ?? '').map((h) => h.trim());
  const missing = required.filter((c) => !header.includes(c));
  if (header.length === 0 || missing.length > 0) {
    throw new ValidationError([
      {
        code: 'missing_column',
        path: [file],
        message: `line 1 must be a header with the columns ${required.join(',')}; missing ${missing.join(', ')} (found ${JSON.stringify(lines[0] ?? '')})`,
      },
    ]);
  }
  const rows: CsvRow[] = [];
  for (let i = 1; i < lines.length; i++) {
    const raw = lines[i] ?? '';
    if (raw.trim() === '') continue;
    const values = splitLine(raw);
    const fields: Record<string, string> = {};
    header.forEach((h, j) => (fields[h] = (values[j] ?? '').trim()));
    rows.push({ line: i + 1, fields });
  }
  return rows;
}

function splitLine(line: string): string[] {
  if (!line.includes('"')) return line.split(',');
  const out: string[] = [];
  let field = '';
  let quoted = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (quoted) {
      if (c === '"' && line[i + 1] === '"') {
        field += '"';
        i++;
      } else if (c === '"') quoted = false;
      else field += c;
    } else if (c === '"') quoted = true;
    else if (c === ',') {
      out.push(field);
      field = '';
    } else field += c;
  }
  out.push(field);
  return out;
}

/** Reads rows with a per-row parser, collecting every problem (up to 20) before throwing. */
export function readRows<T>(
  rows: readonly CsvRow[],
  file: string,
  parse: (row: CsvRow, issues: Issue[]) => T | undefined,
): T[] {
  const issues: Issue[] = [];
  const out: T[] = [];
  for (const row of rows) {
    const before = issues.length;
    const value = parse(row, issues);
    if (issues.length === before && value !== undefined) out.push(value);
    if (issues.length >= 20) break;
  }
  if (issues.length > 0) throw new ValidationError(issues.map((i) => ({ ...i, path: [file, ...i.path] })));
  return out;
}

/** A whole number >= 0 from a CSV field, or an issue naming the line, column and value. */
export function wholeNumber(row: CsvRow, column: string, issues: Issue[], optional = false): number | undefined {
  const text = row.fields[column] ?? '';
  if (text === '' && optional) return undefined;
  const n = Number(text);
  if (text === '' || !Number.isFinite(n) || n < 0 || !Number.isInteger(n)) {
    issues.push({
      code: 'invalid_field',
      path: [`line ${row.line}`, column],
      message: `must be a whole number >= 0, got ${JSON.stringify(text)}`,
    });
    return undefined;
  }
  return n;
}
