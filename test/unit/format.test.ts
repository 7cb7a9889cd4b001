import { describe, expect, it } from 'vitest';
import { formatBytes, formatDuration, formatMiB, type ByteStyle } from '../../shared/format';

describe('formatBytes', () => {
  // One row per caller style, with the output each caller printed before they shared this function.
  it.each<[number, ByteStyle | undefined, string]>([
    // Extension views (default): one decimal below 100, none from 100.
    [0, undefined, '0 B'],
    [512, undefined, '512 B'],
    [1023, undefined, '1023 B'],
    [1024, undefined, '1.0 KiB'],
    [1024 * 1024, undefined, '1.0 MiB'],
    [3.25 * 1024 ** 3, undefined, '3.3 GiB'],
    [812 * 1024 * 1024, undefined, '812 MiB'],
    [2 * 1024 ** 5, undefined, '2048 TiB'],
    [Number.NaN, undefined, '0 B'],
    [-5, undefined, '0 B'],
    // Daemon's body-limit message: trailing zeros dropped.
    [4096, { digits: 1, trim: true }, '4 KiB'],
    [1024 * 1024, { digits: 1, trim: true }, '1 MiB'],
    [1.5 * 1024 * 1024, { digits: 1, trim: true }, '1.5 MiB'],
    [100, { digits: 1, trim: true }, '100 B'],
    // GGUF file sizes: decimal units, always one decimal.
    [95, { decimal: true, digits: 1 }, '95 B'],
    [999, { decimal: true, digits: 1 }, '999 B'],
    [1000, { decimal: true, digits: 1 }, '1.0 kB'],
    [1_234_567, { decimal: true, digits: 1 }, '1.2 MB'],
    [4_100_000_000, { decimal: true, digits: 1 }, '4.1 GB'],
    [123_400_000, { decimal: true, digits: 1 }, '123.4 MB'],
  ])('%s with %j → %s', (bytes, style, want) => {
    expect(formatBytes(bytes, style)).toBe(want);
  });
});

describe('formatMiB', () => {
  it.each<[number, string]>([
    [812, '812 MiB'],
    [3276.8, '3.2 GiB'],
    [0.5, '512 KiB'],
  ])('%s MiB → %s', (mib, want) => {
    expect(formatMiB(mib)).toBe(want);
  });
});

describe('formatDuration', () => {
  it.each<[number, string]>([
    [849.6, '850 ms'],
    [12_340, '12.3 s'],
    [245_000, '4m 05s'],
  ])('%s ms → %s', (ms, want) => {
    expect(formatDuration(ms)).toBe(want);
  });
});
