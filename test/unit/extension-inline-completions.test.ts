// The inline-completion core (extension/core/inline-completions.ts): windowing, the /infill body,
// model choice, debounce and newest-wins per editor. fetch is a recording fake; timers are vitest's.
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import {
  InlineCompleter,
  completionsBadge,
  infillBody,
  infillWindow,
  pickCompletionModel,
  type CompletionSettings,
  type FetchLike,
} from '../../extension/core/inline-completions';
import { model, snapshot } from './extension-fixtures';

const doc = (text: string) => {
  const lines = text.split('\n');
  return { lineCount: lines.length, lineAt: (i: number) => ({ text: lines[i]! }) };
};

describe('infillWindow', () => {
  it('splits at the cursor: the prefix ends and the suffix starts mid-line', () => {
    const w = infillWindow(doc('def f(x):\n    return x + 1\nprint(f(2))'), { line: 1, character: 12 });
    expect(w).toEqual({ prefix: 'def f(x):\n    return x', suffix: ' + 1\nprint(f(2))' });
  });

  it('keeps at most N lines before and M lines after the cursor line', () => {
    const text = Array.from({ length: 20 }, (_, i) => `l${i}`).join('\n');
    const w = infillWindow(doc(text), { line: 10, character: 1 }, 3, 2);
    expect(w.prefix).toBe('l7\nl8\nl9\nl');
    expect(w.suffix).toBe('10\nl11\nl12');
  });

  it('handles the first and last line', () => {
    expect(infillWindow(doc('abc'), { line: 0, character: 0 }, 5, 5)).toEqual({ prefix: '', suffix: 'abc' });
    expect(infillWindow(doc('a\nb'), { line: 1, character: 1 }, 5, 5)).toEqual({ prefix: 'a\nb', suffix: '' });
  });
});

describe('infillBody and model choice', () => {
  it('sends the window, the model and n_predict, not streamed', () => {
    expect(infillBody('coder', { prefix: 'p', suffix: 's' }, 64)).toEqual({
      model: 'coder', input_prefix: 'p', input_suffix: 's', n_predict: 64, stream: false, cache_prompt: true,
    });
  });

  it('takes the configured model, else the first completion model that can infill', () => {
    const snap = snapshot({
      models: [
        model({ name: 'chat', info: { fileBytes: 1, canInfill: false } }),
        model({ name: 'embed', kind: 'embedding', info: { fileBytes: 1, canInfill: true } }),
        model({ name: 'coder', kind: 'completion', info: { fileBytes: 1, canInfill: true } }),
      ],
    });
    expect(pickCompletionModel(snap, '')).toBe('coder');
    expect(pickCompletionModel(snap, 'chat')).toBe('chat');
    expect(pickCompletionModel(snapshot({ models: [model({ name: 'chat' })] }), '')).toBeUndefined();
    expect(pickCompletionModel(undefined, '')).toBeUndefined();
  });

  it('shows a status-bar badge only while enabled', () => {
    const on: CompletionSettings = { enabled: true, model: '', debounceMs: 150, maxTokens: 64 };
    expect(completionsBadge({ ...on, enabled: false }, 'coder')).toBeUndefined();
    expect(completionsBadge(on, 'coder')).toEqual({ text: '$(sparkle)', tooltip: expect.stringContaining('**coder**') });
    expect(completionsBadge(on, undefined)!.tooltip).toMatch(/no model can fill in the middle.*slotwise\.completions\.model/);
  });
});

interface Call {
  url: string;
  headers: Record<string, string>;
  body: Record<string, unknown>;
  signal: AbortSignal;
  resolve: (content: string) => void;
}

describe('InlineCompleter', () => {
  let calls: Call[];
  let settings: CompletionSettings;
  let errors: string[];
  let completer: InlineCompleter;

  beforeEach(() => {
    vi.useFakeTimers();
    calls = [];
    errors = [];
    settings = { enabled: true, model: '', debounceMs: 150, maxTokens: 32 };
    // Answers when the test calls resolve(); rejects with an AbortError when its signal aborts, as fetch does.
    const fetch: FetchLike = (url, init) =>
      new Promise((resolve, reject) => {
        init.signal.addEventListener('abort', () => reject(Object.assign(new Error('aborted'), { name: 'AbortError' })), { once: true });
        calls.push({
          url,
          headers: init.headers,
          body: JSON.parse(init.body) as Record<string, unknown>,
          signal: init.signal,
          resolve: (content) => resolve({ ok: true, status: 200, json: async () => ({ content }), text: async () => '' }),
        });
      });
    completer = new InlineCompleter({
      fetch,
      endpoint: () => ({ url: 'http://127.0.0.1:7373', token: 'tok', stateDir: '/s' }),
      settings: () => settings,
      model: () => 'coder',
      onError: (m) => errors.push(m),
    });
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  const req = (session: string, prefix = 'a', signal?: AbortSignal) => ({ session, window: { prefix, suffix: 'z' }, signal });

  it('waits debounceMs, then posts /infill with the token, session header and body', async () => {
    const result = completer.complete(req('file:///a.py', 'def '));
    await vi.advanceTimersByTimeAsync(149);
    expect(calls).toHaveLength(0);
    await vi.advanceTimersByTimeAsync(1);
    expect(calls).toHaveLength(1);
    expect(calls[0]!.url).toBe('http://127.0.0.1:7373/infill');
    expect(calls[0]!.headers).toMatchObject({ Authorization: 'Bearer tok', 'X-Slotwise-Session': 'file:///a.py' });
    expect(calls[0]!.body).toEqual({ model: 'coder', input_prefix: 'def ', input_suffix: 'z', n_predict: 32, stream: false, cache_prompt: true });
    calls[0]!.resolve('main():');
    expect(await result).toBe('main():');
    expect(completer.pending).toBe(0);
  });

  it('debounces: keystrokes inside the wait send only the last one', async () => {
    const first = completer.complete(req('file:///a.py', 'd'));
    await vi.advanceTimersByTimeAsync(100);
    const second = completer.complete(req('file:///a.py', 'de'));
    await vi.advanceTimersByTimeAsync(150);
    expect(calls.map((c) => c.body.input_prefix)).toEqual(['de']);
    expect(await first).toBeUndefined();
    calls[0]!.resolve('f');
    expect(await second).toBe('f');
  });

  it('newest wins per editor: a new request aborts the one in flight; other editors are untouched', async () => {
    const a1 = completer.complete(req('file:///a.py', 'one'));
    const b1 = completer.complete(req('file:///b.py', 'other'));
    await vi.advanceTimersByTimeAsync(150);
    expect(calls).toHaveLength(2);
    const a2 = completer.complete(req('file:///a.py', 'two'));
    expect(calls[0]!.signal.aborted).toBe(true);
    expect(calls[1]!.signal.aborted).toBe(false);
    expect(await a1).toBeUndefined();
    await vi.advanceTimersByTimeAsync(150);
    calls[2]!.resolve('2');
    calls[1]!.resolve('b');
    expect(await a2).toBe('2');
    expect(await b1).toBe('b');
    expect(errors).toEqual([]); // a superseded request is not an error
  });

  it("is cancelled by the caller's signal, during the wait or the request", async () => {
    const early = new AbortController();
    const r1 = completer.complete(req('file:///a.py', 'x', early.signal));
    early.abort();
    await vi.advanceTimersByTimeAsync(200);
    expect(calls).toHaveLength(0);
    expect(await r1).toBeUndefined();

    const late = new AbortController();
    const r2 = completer.complete(req('file:///a.py', 'y', late.signal));
    await vi.advanceTimersByTimeAsync(150);
    late.abort();
    expect(calls[0]!.signal.aborted).toBe(true);
    expect(await r2).toBeUndefined();
  });

  it('does nothing while disabled, and reports a daemon error in one line', async () => {
    settings.enabled = false;
    expect(await completer.complete(req('file:///a.py'))).toBeUndefined();
    await vi.advanceTimersByTimeAsync(200);
    expect(calls).toHaveLength(0);

    settings.enabled = true;
    const failing = new InlineCompleter({
      fetch: async () => ({
        ok: false,
        status: 400,
        json: async () => ({}),
        text: async () => JSON.stringify({ error: { code: 'SW_ERR_MODEL_CANNOT_INFILL', message: 'model "chat" cannot fill in the middle' } }),
      }),
      endpoint: () => ({ url: 'http://x', token: 't', stateDir: '/s' }),
      settings: () => settings,
      model: () => 'chat',
      onError: (m) => errors.push(m),
    });
    const r = failing.complete(req('file:///a.py'));
    await vi.advanceTimersByTimeAsync(150);
    expect(await r).toBeUndefined();
    expect(errors).toEqual(['/infill answered 400: SW_ERR_MODEL_CANNOT_INFILL: model "chat" cannot fill in the middle']);

    const superseded = new InlineCompleter({
      fetch: async () => ({ ok: false, status: 409, json: async () => ({}), text: async () => JSON.stringify({ error: { code: 'SW_ERR_SUPERSEDED', message: 'superseded' } }) }),
      endpoint: () => ({ url: 'http://x', token: 't', stateDir: '/s' }),
      settings: () => settings,
      model: () => 'coder',
      onError: (m) => errors.push(m),
    });
    const s = superseded.complete(req('file:///a.py'));
    await vi.advanceTimersByTimeAsync(150);
    expect(await s).toBeUndefined();
    expect(errors).toHaveLength(1); // a superseded completion is expected, not reported
  });
});
