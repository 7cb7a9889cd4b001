// Inline completions in real VS Code (code-server + headless Chromium, as extension.e2e.test.ts): with
// slotwise.completions.enabled and a --fim tiny model, typing in a file shows ghost text that the
// daemon's /infill produced (its request count for the model goes up). Screenshot in test-artifacts/e2e/.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { chromium, type Browser } from 'playwright-core';
import { beforeAll, describe, expect, it, onTestFailed, onTestFinished } from 'vitest';
import { startTestDaemon, tempDir, type TestDaemon } from '../helpers/daemon';
import { startWorkspace, type E2eTools } from './code-server';
import { ensureE2eTools } from './setup-e2e.mjs';

const ROOT = resolve(__dirname, '../..');
const SHOTS = join(ROOT, 'test-artifacts', 'e2e');
const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'];

let tools: E2eTools;
let vsix: string;

const progress = (line: string): void => void process.stderr.write(`[e2e completions] ${line}\n`);

beforeAll(async () => {
  tools = await ensureE2eTools({ log: progress });
  if (!existsSync(join(ROOT, 'dist/extension.js'))) execFileSync(process.execPath, ['esbuild.mjs'], { cwd: ROOT, stdio: 'inherit' });
  vsix = join(tempDir('e2e-vsix'), 'slotwise.vsix');
  execFileSync(process.execPath, ['extension/package-vsix.mjs', '--out', vsix], { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'] });
  progress(`packaged ${vsix} (${(statSync(vsix).size / 1024).toFixed(0)} KiB)`);
  mkdirSync(SHOTS, { recursive: true });
}, 30 * 60_000);

/** /infill requests the daemon received for the model (admitted or refused). */
async function requestsFor(d: TestDaemon, model: string): Promise<number> {
  return (await d.status()).models.find((m) => m.name === model)?.requests ?? 0;
}

describe('inline completions in code-server', () => {
  it('shows ghost text from the daemon while typing, and $(sparkle) in the status bar', async () => {
    const d = await startTestDaemon({ models: { coder: { slots: 2, ctxPerSlot: 2048, variant: 'fim' } } });
    await d.waitFor((s) => s.models[0]?.instances[0]?.state === 'ready', 'coder ready', 90_000);

    const cs = await startWorkspace(tools, {
      vsix,
      stateDir: d.stateDir,
      files: { 'main.py': 'def add(a, b):\n    return a + b\n\n' },
      settings: {
        'editor.inlineSuggest.enabled': true,
        'editor.quickSuggestions': { other: false, comments: false, strings: false },
        'slotwise.completions.enabled': true,
        'slotwise.completions.maxTokens': 12,
      },
    });
    onTestFinished(() => cs.stop());
    const browser: Browser = await chromium.launch({ executablePath: tools.chromium, args: CHROMIUM_ARGS, headless: true });
    onTestFinished(() => browser.close());
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    onTestFailed(() => progress(`failed; code-server output tail:\n${cs.output().slice(-2000)}`));
    try {
      await page.goto(cs.url);
      await page.locator('.monaco-workbench').waitFor({ timeout: 60_000 });
      // Connected, with completions on: the slots item carries the sparkle codicon.
      const status = page.locator('.statusbar-item', { hasText: /\d+\/2/ });
      await status.waitFor({ timeout: 60_000 });
      await expect.poll(() => status.locator('.codicon-sparkle').count(), { timeout: 30_000 }).toBeGreaterThan(0);

      // Open main.py through Quick Open, go to its end and type.
      await page.keyboard.press('Control+P');
      await page.locator('.quick-input-widget input').fill('main.py');
      await page.locator('.quick-input-list .monaco-list-row', { hasText: 'main.py' }).first().waitFor();
      await page.keyboard.press('Enter');
      const editor = page.locator('.editor-instance .monaco-editor').first();
      await editor.locator('.view-lines').waitFor();
      await editor.click();
      await page.keyboard.press('Control+End');
      const before = await requestsFor(d, 'coder');
      await page.keyboard.type('def mul(a, b):\n', { delay: 30 });
      await page.keyboard.type('ret', { delay: 30 });

      const ghost = page.locator('.ghost-text-decoration, .ghost-text').first();
      await ghost.waitFor({ state: 'visible', timeout: 30_000 });
      const after = await requestsFor(d, 'coder');
      progress(`ghost text "${(await ghost.innerText()).slice(0, 60)}"; /infill requests for coder ${before} → ${after}`);
      expect(after).toBeGreaterThan(before);
      const outcomes = (await d.status()).models[0]!.outcomes!;
      expect(outcomes.completed).toBeGreaterThan(0);
      await page.screenshot({ path: join(SHOTS, 'completions-ghost-text.png') });
    } catch (err) {
      await page.screenshot({ path: join(SHOTS, 'completions-failure.png') });
      throw err;
    }
  }, 5 * 60_000);
});
