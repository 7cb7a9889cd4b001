// Split file names as llama.cpp makes and reads them (src/llama.cpp llama_split_path, llama_split_prefix).
import { describe, expect, it } from 'vitest';
import { splitPath, splitPaths, splitPrefix } from '../../gguf/split';

describe('split names', () => {
  it('numbers splits from 1, five digits each, as llama_split_path does', () => {
    expect(splitPath('/m/qwen', 0, 3)).toBe('/m/qwen-00001-of-00003.gguf');
    expect(splitPath('/m/qwen', 11, 12)).toBe('/m/qwen-00012-of-00012.gguf');
  });

  it('finds every split from the first, and nothing from a name that is not the first of that count', () => {
    expect(splitPaths('/m/Qwen3-235B-Q4_K_M-00001-of-00003.gguf', 3)).toEqual([
      '/m/Qwen3-235B-Q4_K_M-00001-of-00003.gguf',
      '/m/Qwen3-235B-Q4_K_M-00002-of-00003.gguf',
      '/m/Qwen3-235B-Q4_K_M-00003-of-00003.gguf',
    ]);
    expect(splitPaths('/m/qwen-00002-of-00003.gguf', 3)).toBeUndefined();
    expect(splitPaths('/m/qwen-00001-of-00004.gguf', 3)).toBeUndefined();
    expect(splitPaths('/m/qwen.gguf', 3)).toBeUndefined();
    expect(splitPaths('-00001-of-00003.gguf', 3)).toBeUndefined(); // no prefix at all
  });

  it('takes the prefix off split N', () => {
    expect(splitPrefix('/m/qwen-00002-of-00003.gguf', 1, 3)).toBe('/m/qwen');
    expect(splitPrefix('/m/qwen-00002-of-00003.gguf', 0, 3)).toBeUndefined();
  });
});
