/**
 * The Temporal UI as a user sees it: `allot dev` serves it, the example pipeline runs, and headless
 * Chromium filters the workflow list by `AllotPool`, finds the pipeline's steps with their states,
 * and opens the pipeline's page with its table of steps. Screenshots go to `test-artifacts/`.
 *
 * Chromium comes from Debian (`apt-get install -y chromium`; `.ci/run` installs it). Set
 * `CHROMIUM_PATH` to use another build.
 */
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { Client, Connection } from '@temporalio/client';
import type { Browser, Page } from 'playwright-core';
import { chromium } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, allot, freePort, startAllot } from '../helpers/cli';
import { eventually } from '../helpers/harness';
import { tempDir } from '../helpers/temp';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const ARTIFACTS = path.join(REPO_ROOT, 'test-artifacts');

let dev: { child: ChildProcess; output: () => string };
let env: NodeJS.ProcessEnv;
let uiPort: number;
let client: Client;
let browser: Browser;

beforeAll(async () => {
  if (!existsSync(CHROMIUM)) {
    throw new Error(`no Chromium at ${CHROMIUM}: install it with \`apt-get install -y chromium\` or set CHROMIUM_PATH`);
  }
  mkdirSync(ARTIFACTS, { recursive: true });
  const work = tempDir('ui');
  const port = await freePort();
  uiPort = await freePort();
  env = { TEMPORAL_ADDRESS: `127.0.0.1:${port}` };
  dev = await startAllot(
    [
      'dev',
      ...['--gpus', '4', '--gpu-model', 'A100', '--cpu', '16', '--memory', '64Gi', '--node-id', 'ui-node'],
      ...['--data-dir', path.join(work, 'dev'), '--port', String(port), '--ui-port', String(uiPort)],
    ],
    /allot dev is up/,
  );
  client = new Client({ connection: await Connection.connect({ address: `127.0.0.1:${port}` }) });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-background-networking',
      '--disable-gpu',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
  });
});

afterAll(async () => {
  await browser?.close();
  await client?.connection.close();
  if (!dev) return;
  const exited = new Promise((r) => dev.child.once('exit', r));
  dev.child.kill('SIGTERM');
  await exited;
});

/** Adds allot's search attributes as columns of the workflow table (the UI keeps this per browser). */
async function showAllotColumns(page: Page): Promise<void> {
  await page.click('[data-testid="workflows-summary-table-configuration-button"]');
  for (const column of ['AllotStep', 'AllotState', 'AllotNode', 'AllotGpus']) {
    await page.click(`[data-testid="orderable-list-item-${column}-add-button"]`);
  }
  for (const column of ['Run ID', 'End']) {
    await page.click(`[data-testid="orderable-list-item-${column}-remove-button"]`);
  }
  await page.click('[data-testid="drawer-close-button"]');
}

/** The text of the table row of a workflow, once the list shows it with `expected` in it. */
async function rowOf(page: Page, workflowId: string, expected: RegExp): Promise<string> {
  return eventually(
    async () => {
      await page.reload();
      const row = page.locator('tr', { hasText: workflowId }).first();
      await row.waitFor({ timeout: 5000 });
      const text = (await row.innerText()).replace(/\s+/g, ' ');
      return expected.test(text) ? text : undefined;
    },
    45_000,
    `the row of ${workflowId} to show ${expected}`,
  );
}

describe('the Temporal UI', () => {
  it('lists the example pipeline’s steps with their states under an AllotPool filter', async () => {
    const done = `ui-example-${Date.now()}`;
    const finished = await allot(
      ['run', 'trainPipeline', '--input', '{"epochs": 1, "epochSeconds": 0.1}', '--id', done],
      env,
    );
    expect(finished.code, finished.stderr).toBe(0);
    // A second run, caught while it trains, so that the list shows a running step beside finished ones.
    const live = `ui-live-${Date.now()}`;
    const running = allot(['run', 'trainPipeline', '--input', '{"epochs": 60, "epochSeconds": 1}', '--id', live], env);
    await eventually(
      async () =>
        (await client.workflow.getHandle(`${live}/train`).describe()).status.name === 'RUNNING' ? true : undefined,
      30_000,
      'the live pipeline to train',
    );

    const page = await browser.newPage({ viewport: { width: 1800, height: 800 } });
    const query = encodeURIComponent('AllotPool="default"');
    await page.goto(`http://127.0.0.1:${uiPort}/namespaces/default/workflows?query=${query}`);
    await page
      .locator('tr', { hasText: `${done}/prepare` })
      .first()
      .waitFor({ timeout: 30_000 });
    await expect(page.getByText('AllotPool = "default"').first().isVisible()).resolves.toBe(true);
    await showAllotColumns(page);

    for (const step of ['prepare', 'train', 'evaluate']) {
      const row = await rowOf(page, `${done}/${step}`, /succeeded/);
      expect(row).toMatch(new RegExp(`COMPLETED ${done}/${step} allotStep .*${step} succeeded ui-node`));
    }
    expect(await rowOf(page, `${done}/train`, /succeeded/)).toMatch(/succeeded ui-node \d/);
    expect(await rowOf(page, `${live}/train`, /running/)).toMatch(
      new RegExp(`RUNNING ${live}/train allotStep .*train running ui-node \\d`),
    );
    const screenshot = path.join(ARTIFACTS, 'temporal-ui-steps.png');
    await page.screenshot({ path: screenshot });
    expect(statSync(screenshot).size).toBeGreaterThan(10_000);

    // The pipeline's own page shows its table of steps (its current details).
    await page.goto(`http://127.0.0.1:${uiPort}/namespaces/default/workflows/${encodeURIComponent(done)}`);
    await page.getByText('User Metadata').first().click();
    await page.getByText('Current Details').first().waitFor({ timeout: 30_000 });
    // The UI renders markdown in frames of its own: find the one with the table.
    const table = await eventually(
      async () => {
        for (const frame of page.frames()) {
          const text = await frame.innerText('body').catch(() => '');
          if (text.includes('allot pipeline — 3 steps')) return text;
        }
        return undefined;
      },
      30_000,
      'the table of steps in Current Details',
    );
    for (const step of ['prepare', 'train', 'evaluate']) {
      expect(table).toMatch(new RegExp(`${step}\\s+succeeded\\s+ui-node`));
    }
    expect(page.frames().some((f) => f.url().includes('allot%20pipeline%20trainPipeline'))).toBe(true);
    const details = path.join(ARTIFACTS, 'temporal-ui-pipeline.png');
    await page.screenshot({ path: details, fullPage: true });
    expect(statSync(details).size).toBeGreaterThan(10_000);

    expect((await allot(['cancel', live], env)).code).toBe(0);
    expect((await running).code).toBe(130);
    await page.close();
  });
});
