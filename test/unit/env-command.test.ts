// `slotwise env`: shell quoting, the model it names, and the variables of each client.
import { describe, expect, it } from 'vitest';
import { envLines, pickModel, shellQuote } from '../../cli/commands/env';

describe('slotwise env', () => {
  it('quotes values as one shell word, quotes included', () => {
    expect(shellQuote('abc')).toBe("'abc'");
    expect(shellQuote("it's $HOME `x`")).toBe(`'it'\\''s $HOME \`x\`'`);
  });

  it('names the only text model, or the one asked for, and says why not otherwise', () => {
    const models = [{ name: 'chat' }, { name: 'vec', kind: 'embedding' as const }];
    expect(pickModel(models, undefined)).toBe('chat');
    expect(pickModel(models, 'chat')).toBe('chat');
    expect(() => pickModel(models, 'vec')).toThrow(/model "vec" does not generate text — models that do: chat/);
    expect(() => pickModel(models, 'gpt')).toThrow(/unknown model "gpt"/);
    expect(() => pickModel([...models, { name: 'code' }], undefined)).toThrow(/choose one with --model: chat, code/);
    expect(() => pickModel([{ name: 'vec', kind: 'embedding' as const }], undefined)).toThrow(/no model that generates text/);
  });

  it("writes each client's variables", () => {
    expect(envLines('openai', 'http://127.0.0.1:7373', 't0k', 'm')).toBe("export OPENAI_BASE_URL='http://127.0.0.1:7373/v1'\nexport OPENAI_API_KEY='t0k'\nexport OPENAI_MODEL='m'\n");
    const anthropic = envLines('anthropic', 'http://127.0.0.1:7373', 't0k', 'm');
    expect(anthropic).toContain("export ANTHROPIC_BASE_URL='http://127.0.0.1:7373'\n");
    expect(anthropic).toContain("export ANTHROPIC_AUTH_TOKEN='t0k'\n");
    for (const slot of ['ANTHROPIC_MODEL', 'ANTHROPIC_DEFAULT_OPUS_MODEL', 'ANTHROPIC_DEFAULT_SONNET_MODEL', 'ANTHROPIC_DEFAULT_HAIKU_MODEL', 'ANTHROPIC_SMALL_FAST_MODEL']) expect(anthropic).toContain(`export ${slot}='m'\n`);
    expect(() => envLines('gemini', '', '', '')).toThrow(/unknown client "gemini" — use anthropic or openai/);
  });
});
