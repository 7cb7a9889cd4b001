// The daemon reads a model's GGUF header once per version of the file (daemon/memory/model-file.ts):
// status info, the plan and every instance launch share that read.
import { copyFile, mkdtemp, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeGgufHeader, readGgufHeader } from '../../gguf/gguf';
import { cachedModelFileRead, readModelFacts, readModelFile } from '../../daemon/memory/model-file';
import { tinyModelPath } from '../helpers/tiny';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'slotwise-model-file-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function countingReader(): { read: typeof readGgufHeader; reads: () => number } {
  let n = 0;
  return {
    read: (path, opts) => {
      n++;
      return readGgufHeader(path, opts);
    },
    reads: () => n,
  };
}

describe('readModelFile', () => {
  it('reads a file once, for calls in turn and at once, and again once the file changed', async () => {
    const path = join(dir, 'model.gguf');
    await copyFile(await tinyModelPath(), path);
    const { read, reads } = countingReader();
    const readModelFile = cachedModelFileRead(read);

    const first = await readModelFile(path);
    expect(first.summary).toMatchObject({ architecture: 'llama', layers: 2 });
    expect(first.facts).toMatchObject({ architecture: 'llama', layers: 2 });
    expect(first.canInfill).toBe(false);
    await Promise.all([readModelFile(path), readModelFile(path), readModelFile(path)]);
    expect(reads()).toBe(1);

    // The same size, another mtime: a model swapped on disk is read again.
    const later = new Date(Date.now() + 60_000);
    await utimes(path, later, later);
    await readModelFile(path);
    expect(reads()).toBe(2);
    await readModelFile(path);
    expect(reads()).toBe(2);
  });

  it('keeps no failure: a missing file fails with the reader\'s reason, and is read once it exists', async () => {
    const path = join(dir, 'late.gguf');
    const { read, reads } = countingReader();
    const readModelFile = cachedModelFileRead(read);
    await expect(readModelFile(path, { model: 'late' })).rejects.toThrow(/late/);
    await copyFile(await tinyModelPath(), path);
    await expect(readModelFile(path)).resolves.toMatchObject({ summary: { architecture: 'llama' } });

    // A read that failed (an I/O error, say) is not kept for the unchanged file: the next call reads again.
    let fail = true;
    const flaky = cachedModelFileRead(async (p, o) => {
      if (fail) {
        fail = false;
        throw new Error('EIO: i/o error, read');
      }
      return read(p, o);
    });
    await expect(flaky(path)).rejects.toThrow(/EIO/);
    await expect(flaky(path)).resolves.toMatchObject({ summary: { architecture: 'llama' } });
    expect(reads()).toBe(3); // the missing file, the file once there, the flaky reader's second try
  });

  it('reads a valid GGUF that is not a model (no architecture) with the reasons in place of its summary and facts', async () => {
    const path = join(dir, 'vocab-only.gguf');
    await writeFile(path, encodeGgufHeader({ metadata: new Map([['general.name', { type: 'string', value: 'vocab' }]]), tensors: [] }));
    const file = await cachedModelFileRead()(path);
    expect(file.summary).toBeInstanceOf(Error);
    expect((file.summary as Error).message).toMatch(/general\.architecture/);
    expect(file.facts).toBeInstanceOf(Error);
    expect(file.canInfill).toBe(false);
  });

  it('readModelFacts: the plan facts of a model, null for a missing file or a GGUF that is not a model', async () => {
    const facts = await readModelFacts(await tinyModelPath());
    expect(facts).not.toBeNull();
    expect(facts).toEqual((await readModelFile(await tinyModelPath())).facts);
    expect(await readModelFacts(join(dir, 'nope.gguf'), { model: 'm' })).toBeNull();
    const vocab = join(dir, 'vocab-only-2.gguf');
    await writeFile(vocab, encodeGgufHeader({ metadata: new Map([['general.name', { type: 'string', value: 'vocab' }]]), tensors: [] }));
    expect(await readModelFacts(vocab)).toBeNull();
  });
});
