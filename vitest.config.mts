import { defineConfig } from 'vitest/config';

// Integration tests spawn real llama-server processes on a 2-core machine: run files one at a time
// so timings inside a test are not distorted by another file's model load.
export default defineConfig({
  test: {
    include: ['test/**/*.test.ts', 'extension/**/*.test.ts'],
    fileParallelism: false,
    globalSetup: ['test/helpers/temp-root.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    reporters: ['default'],
  },
});
