// Lint: typescript-eslint's recommended rules (syntax only, no type information, so it stays fast)
// plus the layer rules from README.md's layout, enforced on relative imports.
import tseslint from 'typescript-eslint';

const sources = (dir) => [`${dir}/**/*.{ts,mts,cts,js,mjs,cjs}`];

// A relative import that climbs out of the importing folder (`../`, `../../`, ...) into one of `dirs`.
// Depth-free on purpose: no folder inside a layer is named like a top-level folder, so
// `(../)+daemon/` can only mean the repo's daemon/.
const into = (dirs) => `^(\\.\\./)+(${dirs.join('|')})(/|$)`;

const restrict = (...patterns) => ({ 'no-restricted-imports': ['error', { patterns }] });

const notIntoDaemon = {
  regex: into(['cli', 'bench', 'extension']),
  message: 'daemon/ may import shared/, platform/, toolchain/, gguf/ and daemon/, never cli/, bench/ or extension/.',
};

export default tseslint.config(
  { ignores: ['dist/', 'bench-out/', 'test-artifacts/', '.tmp/', '.gpu/'] },
  tseslint.configs.recommended,
  {
    rules: {
      // A leading underscore marks a binding that is unused on purpose (`for (const _ of x)`, `{ size: _size, ...rest }`).
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrorsIgnorePattern: '^_' }],
      // `let x!: T` assigned after a closure that reads it is declared before use on purpose.
      'prefer-const': ['error', { ignoreReadBeforeAssign: true }],
    },
  },

  // Layer rules. A file gets one `no-restricted-imports` setting (the last matching one wins), so a
  // nested layer (daemon/runtime) repeats the rules of the layer around it.
  {
    files: sources('extension'),
    rules: restrict({
      regex: into(['daemon', 'platform', 'cli', 'toolchain', 'gguf', 'bench', 'test']),
      message: 'extension/ may import only shared/ of ours (and extension/ itself): the extension must not bundle daemon, CLI or toolchain code.',
    }),
  },
  {
    files: sources('shared'),
    rules: restrict({
      regex: into(['platform', 'daemon', 'cli', 'toolchain', 'gguf', 'bench', 'extension', 'test']),
      message: 'shared/ imports nothing of ours outside shared/: the extension and every other layer build on it.',
    }),
  },
  {
    files: sources('platform'),
    rules: restrict({
      regex: into(['daemon', 'cli', 'toolchain', 'gguf', 'bench', 'extension', 'test']),
      message: 'platform/ may import only shared/ and platform/.',
    }),
  },
  {
    files: [...sources('toolchain'), ...sources('gguf')],
    rules: restrict({
      regex: into(['daemon', 'cli', 'bench', 'extension']),
      message: 'toolchain/ and gguf/ may import shared/, platform/, toolchain/ and gguf/, never daemon/, cli/, bench/ or extension/.',
    }),
  },
  {
    files: sources('daemon'),
    rules: restrict(notIntoDaemon),
  },
  {
    files: sources('daemon/runtime'),
    rules: restrict(notIntoDaemon, {
      regex: `^(\\.\\./)+(daemon/)?(server|api)(/|$)`,
      message: 'daemon/runtime/ never imports daemon/server/ or daemon/api/: the network surface calls into the runtime, not the other way round.',
    }),
  },
);
