// The prompt-cache listing watch, on lines as the pinned llama-server prints them at -lv 4 (recorded
// from a run of the tiny model with distinct prompts; only the counts and sizes differ between them).
import { describe, expect, it } from 'vitest';
import { cachedPromptsOf, cacheListingWarning, LOG_QUEUE_LINES } from '../../daemon/runtime/cache-listing';
import { isLogNoise } from '../../daemon/runtime/instance';

const state = (n: number): string =>
  `0.09.522.818 I srv        update:  - cache state: ${n} prompts, ${(n * 0.042).toFixed(3)} MiB (limits: 768.000 MiB, 16384 tokens, 1533360 est)`;
const LISTED = '0.02.163.424 I srv        update:    - prompt 0x561a46de3350:      84 tokens, checkpoints:  0,     0.042 MiB';
const TIMING = '0.17.683.866 I slot print_timing: id  4 | task 17548 |        eval time =      42.57 ms /    64 tokens (    0.68 ms per token,  1480.02 tokens per second)';

describe('the prompt-cache listing watch', () => {
  it('reads the prompt count of a "cache state" line and nothing from other lines', () => {
    expect(cachedPromptsOf(state(1))).toBe(1);
    expect(cachedPromptsOf(state(1542))).toBe(1542);
    expect(cachedPromptsOf(LISTED)).toBeUndefined();
    expect(cachedPromptsOf(TIMING)).toBeUndefined();
    // the listed prompts are dropped from the log as noise, the "cache state" line that counts them is kept
    expect(isLogNoise(LISTED)).toBe(true);
    expect(isLogNoise(state(600))).toBe(false);
  });

  it('names the count, the cost and the way out that fits why the listing stays, in one line', () => {
    const args = cacheListingWarning(1542, 'args');
    const placement = cacheListingWarning(1542, 'placement');
    for (const text of [args, placement]) {
      expect(text).toMatch(/^llama-server's prompt cache holds 1542 prompts, and at -lv 4 it logs every one on every request/);
      expect(text).toContain(`${LOG_QUEUE_LINES}-line log queue`);
      expect(text).toContain('promptCacheMiB');
      expect(text).not.toContain('\n');
    }
    // the user's args chose -lv 4: dropping that is the way out, not adding -lv 3 beside it
    expect(args).toContain('"args" set its log verbosity; drop that');
    expect(args).not.toContain('"-lv", "3"');
    // a placement that may change: a restart would list again, so -lv 3 in args
    expect(placement).toContain('a restart would list again');
    expect(placement).toContain('add "-lv", "3" to this model\'s "args"');
  });
});
