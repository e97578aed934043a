/**
 * Figure 7 alone: an artifact's upload and download through allot's store (S3 on a local
 * SeaweedFS, and a folder) beside native tools, printed as a table.
 *
 *   npx tsx bench/transfer.ts [--size-mib 1024] [--runs 3]
 */
import { loadavg } from 'node:os';
import { transferFigure, transferRows } from './figures/transfer';
import { alignColumns } from './lib/table';

function option(name: string): number | undefined {
  const i = process.argv.indexOf(`--${name}`);
  if (i < 0) return undefined;
  const value = Number(process.argv[i + 1]);
  if (!Number.isInteger(value) || value < 1)
    throw new Error(`--${name} must be a whole number from 1 up, got ${JSON.stringify(process.argv[i + 1])}`);
  return value;
}

async function main(): Promise<void> {
  const t0 = Date.now();
  const stage = (what: string): void =>
    void process.stderr.write(
      `[bench ${((Date.now() - t0) / 1000).toFixed(0).padStart(4)}s, load ${(loadavg()[0] ?? 0).toFixed(1)}] ${what}\n`,
    );
  const figure = await transferFigure(stage, { sizeMiB: option('size-mib'), runs: option('runs') });
  const rows = [['figure', 'allot', 'native baseline', 'ratio', 'load (1-min, mean)'], ...transferRows(figure)];
  process.stdout.write(`${alignColumns(rows).join('\n')}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
