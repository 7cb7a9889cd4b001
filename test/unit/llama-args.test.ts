import { describe, expect, it } from 'vitest';
import { flagOf, setsFlag } from '../../daemon/config/llama-args';

describe('llama-args: which llama-server flags a model’s args set', () => {
  it('reads the flag of `--flag=value` and leaves flags and values as they are', () => {
    expect(flagOf('--threads=4')).toBe('--threads');
    expect(flagOf('--threads')).toBe('--threads');
    expect(flagOf('-t')).toBe('-t');
    expect(flagOf('8')).toBe('8');
    expect(flagOf('--override-kv=a=b')).toBe('--override-kv');
  });

  it('finds a flag in either form, and never by prefix', () => {
    expect(setsFlag(['--top-k', '5', '--threads', '2'], ['-t', '--threads'])).toBe(true);
    expect(setsFlag(['--threads=2'], ['-t', '--threads'])).toBe(true);
    // --threads-http and --threads-batch are other flags than --threads
    expect(setsFlag(['--threads-http', '3', '--threads-batch=2'], ['-t', '--threads'])).toBe(false);
    expect(setsFlag(['-tb', '2'], ['-t'])).toBe(false);
    expect(setsFlag([], ['--threads-http'])).toBe(false);
  });
});
