// The layer rules in eslint.config.mjs: each forbidden import fails lint with a message naming what
// the layer may import, and the imports each layer relies on pass. Lints snippets under made-up
// paths so the table does not depend on what the code imports today.
import { resolve } from 'node:path';
import { ESLint } from 'eslint';
import { beforeAll, describe, expect, it } from 'vitest';

type Case = {
  /** the importing file, relative to the repo root (need not exist) */
  file: string;
  /** the module specifier it imports */
  from: string;
  /** how it imports; `import` unless given */
  form?: 'import' | 'import type' | 'export from';
};

type Forbidden = Case & { /** part of the rule's message */ says: string };

const EXTENSION = 'extension/ may import only shared/';
const SHARED = 'shared/ imports nothing of ours outside shared/';
const PLATFORM = 'platform/ may import only shared/ and platform/';
const TOOLCHAIN_GGUF = 'toolchain/ and gguf/ may import';
const DAEMON = 'daemon/ may import shared/, platform/, toolchain/, gguf/ and daemon/, never cli/, bench/ or extension/';
const RUNTIME = 'daemon/runtime/ never imports daemon/server/ or daemon/api/';

const forbidden: Forbidden[] = [
  { file: 'extension/core/x.ts', from: '../../daemon/main', says: EXTENSION },
  { file: 'extension/core/x.ts', from: '../../daemon/status/capacity', form: 'import type', says: EXTENSION },
  { file: 'extension/x.ts', from: '../platform/log', says: EXTENSION },
  { file: 'extension/webview/x.ts', from: '../../cli/main', says: EXTENSION },
  { file: 'extension/views/x.ts', from: '../../toolchain/binary', says: EXTENSION },
  { file: 'extension/commands/x.ts', from: '../../gguf/gguf', form: 'export from', says: EXTENSION },
  { file: 'extension/x.ts', from: '../bench/stats', says: EXTENSION },
  { file: 'shared/x.ts', from: '../platform/log', says: SHARED },
  { file: 'shared/x.ts', from: '../daemon/config/types', form: 'import type', says: SHARED },
  { file: 'shared/x.ts', from: '../extension/core/format', says: SHARED },
  { file: 'platform/x.ts', from: '../daemon/config/types', says: PLATFORM },
  { file: 'platform/x.ts', from: '../toolchain/binary', says: PLATFORM },
  { file: 'platform/x.ts', from: '../gguf/gguf', says: PLATFORM },
  { file: 'toolchain/x.ts', from: '../daemon/main', says: TOOLCHAIN_GGUF },
  { file: 'toolchain/x.ts', from: '../extension/extension', says: TOOLCHAIN_GGUF },
  { file: 'gguf/x.ts', from: '../cli/main', says: TOOLCHAIN_GGUF },
  { file: 'gguf/x.ts', from: '../bench/stats', says: TOOLCHAIN_GGUF },
  { file: 'daemon/main-x.ts', from: '../cli/main', says: DAEMON },
  { file: 'daemon/server/x.ts', from: '../../bench/stats', says: DAEMON },
  { file: 'daemon/api/x.ts', from: '../../extension/core/format', says: DAEMON },
  { file: 'daemon/runtime/x.ts', from: '../server/http', says: RUNTIME },
  { file: 'daemon/runtime/x.ts', from: '../api/openai', form: 'import type', says: RUNTIME },
  { file: 'daemon/runtime/x.ts', from: '../../daemon/server/ws', says: RUNTIME },
  // daemon/runtime/ is still daemon/: the outer layer's rule holds there too.
  { file: 'daemon/runtime/x.ts', from: '../../cli/main', says: DAEMON },
];

const allowed: Case[] = [
  { file: 'extension/core/x.ts', from: '../../shared/protocol' },
  { file: 'extension/core/x.ts', from: './format' },
  { file: 'extension/webview/x.ts', from: '../core/gpu-render' },
  { file: 'extension/x.ts', from: './core/connection' },
  { file: 'extension/x.ts', from: 'node:path' },
  { file: 'shared/x.ts', from: './errors' },
  { file: 'shared/x.ts', from: 'node:fs' },
  { file: 'platform/x.ts', from: '../shared/errors' },
  { file: 'platform/x.ts', from: './log' },
  { file: 'toolchain/x.ts', from: '../platform/procfs' },
  { file: 'toolchain/x.ts', from: '../shared/paths' },
  { file: 'gguf/x.ts', from: '../toolchain/binary' },
  { file: 'daemon/main-x.ts', from: './runtime/supervisor' },
  { file: 'daemon/server/x.ts', from: '../api/openai' },
  { file: 'daemon/api/x.ts', from: '../runtime/instance' },
  { file: 'daemon/runtime/x.ts', from: '../status/hub' },
  { file: 'daemon/runtime/x.ts', from: '../../platform/procfs' },
  { file: 'daemon/runtime/x.ts', from: '../../gguf/gguf' },
  { file: 'daemon/runtime/x.ts', from: '../../toolchain/binary' },
  { file: 'cli/commands/x.ts', from: '../../daemon/main' },
  { file: 'bench/x.ts', from: '../daemon/main' },
];

const root = resolve(__dirname, '../..');
let eslint: ESLint;

beforeAll(() => {
  eslint = new ESLint({ cwd: root });
});

const withForm = <C extends Case>(c: C): C => ({ form: 'import', ...c });

function snippet({ from, form = 'import' }: Case): string {
  if (form === 'export from') return `export { thing } from '${from}';\n`;
  const type = form === 'import type' ? 'type ' : '';
  return `import ${type}{ thing } from '${from}';\nexport { thing };\n`;
}

async function lint(c: Case): Promise<ESLint.LintResult> {
  const [result] = await eslint.lintText(snippet(c), { filePath: resolve(root, c.file) });
  if (!result) throw new Error(`ESLint returned no result for ${c.file}`);
  return result;
}

describe('layer rules (eslint.config.mjs)', () => {
  it.each(forbidden.map(withForm))('$file may not $form $from', async (c) => {
    const { messages } = await lint(c);
    expect(messages).toHaveLength(1);
    expect(messages[0]).toMatchObject({ ruleId: 'no-restricted-imports', severity: 2 });
    expect(messages[0]?.message).toContain(c.says);
    expect(messages[0]?.message).toContain(`'${c.from}'`);
  });

  it.each(allowed.map(withForm))('$file may $form $from', async (c) => {
    const { messages } = await lint(c);
    expect(messages).toEqual([]);
  });
});
