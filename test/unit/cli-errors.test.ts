// How the CLI answers a command line or a state dir it cannot use: one line on stderr that names the
// option or path, the exit code of its kind (2: usage or config), never an internal error or a stack.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { main } from '../../cli/main';
import { COMMANDS } from '../../cli/commands/index';
import { inFlagTerms } from '../../cli/commands/prompt';
import { parsePromptParams } from '../../daemon/api/jobs';
import { Supervisor } from '../../daemon/runtime/supervisor';
import { LOGS_TAIL_MAX_LINES } from '../../daemon/server/rpc';
import { SlotwiseError } from '../../shared/errors';
import { tinyModelPath } from '../helpers/tiny';

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** main() in this process, its output captured. */
async function slotwise(...args: string[]): Promise<Run> {
  let stdout = '';
  let stderr = '';
  vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => ((stdout += String(chunk)), true));
  vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => ((stderr += String(chunk)), true));
  try {
    const code = await main(args);
    return { code, stdout, stderr };
  } finally {
    vi.restoreAllMocks();
  }
}

afterEach(() => vi.restoreAllMocks());

const temp = (): string => mkdtempSync(join(tmpdir(), 'slotwise-cli-'));

/** A config with no models, so nothing needs llama-server or a model file. */
function noModels(): string {
  const path = join(temp(), 'config.json');
  writeFileSync(path, '{"models":{}}');
  return path;
}

describe('a state dir that is a plain file', () => {
  const file = join(temp(), 'state');
  writeFileSync(file, '');
  const f = ['--state-dir', file, '--config', noModels(), '--port', '0'];

  it.each([['status'], ['start'], ['stop'], ['jobs'], ['prompt', 'hi'], ['logs'], ['daemon']])('%s says so in one line, exit 2', async (...command) => {
    for (const verbose of [[], ['-v']]) {
      const r = await slotwise(...command, ...f, ...verbose);
      expect(r.code).toBe(2);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toContain(`state dir ${file} is not a directory`);
      expect(r.stderr).not.toContain('internal error');
    }
  });

  it('doctor reports it as a problem and goes on to the end', async () => {
    const r = await slotwise('doctor', ...f);
    expect(r.code).toBe(1);
    expect(r.stderr).toBe('');
    expect(r.stdout).toMatch(/^✗ state dir .*is not a directory/m);
    expect(r.stdout).toMatch(/^· daemon /m);
  });
});

describe('doctor with a bad config', () => {
  it('names the key and exits 2, as other commands do for a config; a model file that is not GGUF is exit 1', async () => {
    const dir = temp();
    const state = ['--state-dir', join(dir, 'state')];
    const config = (name: string, body: unknown): string => {
      writeFileSync(join(dir, name), JSON.stringify(body));
      return join(dir, name);
    };
    const r = await slotwise('doctor', '--config', config('bad.json', { models: {}, prot: 1 }), ...state);
    expect(r.code).toBe(2);
    expect(r.stdout).toMatch(/^✗ config .*"prot"/m);
    expect(r.stdout).toMatch(/^· daemon /m); // it still checks the rest

    const missing = await slotwise('doctor', '--config', config('missing.json', { models: { m: { path: join(dir, 'nope.gguf') } } }), ...state);
    expect(missing.code).toBe(2);
    expect(missing.stdout).toContain(`model file not found: ${join(dir, 'nope.gguf')}`);

    writeFileSync(join(dir, 'x.gguf'), 'hello');
    const notGguf = await slotwise('doctor', '--config', config('x.json', { models: { m: { path: join(dir, 'x.gguf') } } }), ...state);
    expect(notGguf.code).toBe(1);
    expect(notGguf.stdout).toMatch(/^✓ config /m);
    expect(notGguf.stdout).toMatch(/^✗ {3}m .*not a GGUF file/m);

    // A projector that is a model: the model's own line is fine, the projector's names the file and the fix.
    const model = await tinyModelPath('tiny');
    const wrong = await slotwise('doctor', '--config', config('p.json', { models: { v: { path: model, mmproj: model } } }), ...state);
    expect(wrong.code).toBe(1);
    expect(wrong.stdout).toMatch(/^✓ {3}v {11}llama, 2 layers/m);
    expect(wrong.stdout).toMatch(/^✗ {5}mmproj {4}tiny-d64-l2-s1\.gguf is a "llama" model, not a projector/m);
    // A draft model is a model: its line says which, or why it cannot be read.
    writeFileSync(join(dir, 'bad-draft.gguf'), 'hello');
    const drafts = await slotwise('doctor', '--config', config('d.json', { models: { v: { path: model, draft: model }, w: { path: model, draft: join(dir, 'bad-draft.gguf') } } }), ...state);
    expect(drafts.stdout).toMatch(/^✓ {5}draft {5}llama, 2 layers · /m);
    expect(drafts.stdout).toMatch(/^✗ {5}draft {5}.*not a GGUF file/m);
  });
});

describe('option values', () => {
  const stateDir = (): string[] => ['--state-dir', join(temp(), 'state')];

  it.each([
    ['--state-dir', ['status', '--state-dir', '']],
    ['--state-dir', ['--state-dir=', 'status']],
    ['--config', ['status', '--config', '', '--port', '0']],
    ['--port', ['status', '--port', '']],
    ['--port', ['status', '--port=']],
  ])('an empty %s is a usage error naming it, not the default', async (option, args) => {
    const r = await slotwise(...args);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toContain(option);
  });

  it.each(['0x1EEF', '1e3', '1.5', '65536', '7373x', ' 80'])('--port %j is not a port: usage error', async (port) => {
    const r = await slotwise('status', ...stateDir(), `--port=${port}`);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--port .*0 to 65535/);
  });

  it('--port in plain decimal from 0 to 65535 goes through (here to "no daemon running")', async () => {
    for (const port of ['0', '7373', '65535']) {
      const r = await slotwise('status', ...stateDir(), '--port', port);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/no daemon running/);
    }
  });
});

describe('options in our own words', () => {
  const sd = (): string[] => ['--state-dir', join(temp(), 'state')];
  const oneLine = (r: Run): void => {
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).not.toMatch(/ambiguous|To specify/);
  };

  it.each([
    ['--port', '-1', ['status', '--port', '-1']],
    ['--port', '-1', ['--port', '-1', 'status']],
    ['--port', '-1', ['status', '--port=-1']],
    ['-n', '-5', ['logs', '-n', '-5']],
    ['-n', '-5', ['logs', '--lines=-5']],
    ['--max-tokens', '-1', ['prompt', '--max-tokens', '-1', 'hi']],
    ['--temperature', '-1', ['prompt', '--temperature', '-1', 'hi']],
    ['--temperature', '1e1', ['prompt', '--temperature', '1e1', 'hi']],
    ['--gpu-layers', '-5', ['plan', 'x', '--gpu-layers', '-5']],
    ['--ctx', '0x100', ['plan', 'x', '--ctx', '0x100']],
    ['--dim', '-4', ['tiny-model', join(tmpdir(), 'never-written.gguf'), '--dim', '-4']],
    ['--requests', '-3', ['bench', '--requests', '-3']],
    ['--from', '-1', ['attach', 'some-id', '--from', '-1']],
    ['--timeout', '-5', ['start', '--timeout', '-5']],
  ])('%s %s is read as a number and range-checked before anything runs: usage error naming it', async (option, value, args) => {
    const r = await slotwise(...args, ...sd());
    expect(r.code).toBe(2);
    oneLine(r);
    expect(r.stderr).toContain(option);
    expect(r.stderr).toContain(value);
  });

  it('an unknown option names itself and the command, with balanced quotes', async () => {
    for (const [command, option] of [['status', '--bogus'], ['jobs', '-x'], ['logs', '--constructor']] as const) {
      const r = await slotwise(command, option, ...sd());
      expect(r.code).toBe(2);
      oneLine(r);
      expect(r.stderr).toContain(option);
      expect(r.stderr).toContain(`"${command}"`);
      expect(r.stderr).toContain(`slotwise ${command} --help`);
      expect(r.stderr.split("'").length % 2).toBe(1);
    }
  });

  it('an option whose value was forgotten, and a flag given a value, are usage errors naming them', async () => {
    const forgot = await slotwise('status', '--config', '-v', ...sd());
    expect(forgot.code).toBe(2);
    oneLine(forgot);
    expect(forgot.stderr).toMatch(/--config needs a value/);
    const atEnd = await slotwise('status', ...sd(), '--config');
    expect(atEnd.code).toBe(2);
    expect(atEnd.stderr).toMatch(/--config needs a value/);
    const flag = await slotwise('status', '--json=yes', ...sd());
    expect(flag.code).toBe(2);
    oneLine(flag);
    expect(flag.stderr).toContain('--json');
  });
});

describe('arguments', () => {
  const sd = (): string[] => ['--state-dir', join(temp(), 'state')];

  it.each([
    ['extra', ['start', 'extra']],
    ['extra', ['stop', 'extra']],
    ['extra', ['status', 'extra']],
    ['extra', ['jobs', 'extra']],
    ['extra', ['doctor', 'extra']],
    ['extra', ['daemon', 'extra']],
    ['b', ['logs', 'a', 'b']],
    ['b', ['cancel', 'a', 'b']],
    ['b', ['attach', 'a', 'b']],
    ['b', ['up', 'a', 'b']],
    ['a', ['plan', 'x', 'a']],
  ])('one argument too many (%s) is a usage error naming it, before the command runs', async (extra, args) => {
    const r = await slotwise(...args, ...sd());
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toContain(`"${extra}"`);
  });

  it('prompt still takes its text as several words', async () => {
    const r = await slotwise('prompt', 'several', 'words', ...sd());
    expect(r.stderr).toMatch(/no daemon running/);
  });

  it('`slotwise help status` prints what `slotwise status --help` does', async () => {
    const own = await slotwise('status', '--help');
    const viaHelp = await slotwise('help', 'status');
    expect(viaHelp.code).toBe(0);
    expect(viaHelp.stdout).toBe(own.stdout);
    expect(viaHelp.stdout).not.toBe((await slotwise('--help')).stdout);
    expect((await slotwise('help', 'bogus')).code).toBe(2);
  });

  it('a name of a plain object property is not a command', async () => {
    const r = await slotwise('constructor');
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('unknown command "constructor"');
  });
});

describe("the daemon's checks in the flags' terms", () => {
  const sd = (): string[] => ['--state-dir', join(temp(), 'state')];

  it('logs -n above what the daemon returns is a usage error before a daemon is needed', async () => {
    const r = await slotwise('logs', '-n', String(LOGS_TAIL_MAX_LINES + 1), ...sd());
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('-n');
    expect(r.stderr).toContain(String(LOGS_TAIL_MAX_LINES));
    expect(r.stderr).not.toMatch(/logs\.tail|"lines"/);
    // The most it returns is fine (here: on to "no daemon running").
    expect((await slotwise('logs', '-n', String(LOGS_TAIL_MAX_LINES), ...sd())).stderr).toMatch(/no daemon running/);
  });

  /** What the daemon's prompt.submit says to these params, with these models configured (context 512 per slot). */
  function daemonSays(params: Record<string, unknown>, models: string[]): SlotwiseError {
    const supervisor = {
      resolveModel: Supervisor.prototype.resolveModel, // reads only modelNames() when no model is named
      modelNames: () => models,
      modelConfig: (name: string) => ({ name, kind: 'completion', ctxPerSlot: 512 }),
    } as unknown as Supervisor;
    try {
      parsePromptParams(params, supervisor);
    } catch (err) {
      return err as SlotwiseError;
    }
    throw new Error('the daemon accepted it');
  }

  /** Models "tiny" and "v", each with `mmproj` when given, whose projector header read `modalities` (undefined: unread). */
  const models = (mmproj?: string, modalities?: string[]) =>
    ({
      resolveModel: (m: string) => m,
      modelNames: () => ['tiny', 'v'],
      modelConfig: (name: string) => ({ name, kind: 'completion', ctxPerSlot: 512, ...(mmproj ? { mmproj } : {}) }),
      modalities: () => modalities,
    }) as unknown as Supervisor;

  it('image parts in a prompt job: only data:image URLs, only for a model with a projector, and only known part shapes', () => {
    const msg = (content: unknown) => ({ model: 'tiny', messages: [{ role: 'user', content }] });
    const png = { type: 'image_url', image_url: { url: 'data:image/png;base64,iVBORw0KGgo=' } };
    expect(() => parsePromptParams(msg([{ type: 'text', text: 'what?' }, png]), models())).toThrow(
      'prompt.submit: messages[0].content[1] is an image, but model "tiny" has no projector to read it — set models.tiny.mmproj to the model\'s mmproj-*.gguf, or send text only',
    );
    const withProjector = models('/m/mmproj.gguf');
    const parsed = parsePromptParams({ model: 'v', messages: [{ role: 'user', content: [{ type: 'text', text: 'what?' }, png] }] }, withProjector);
    expect(parsed.messages![0]!.content).toEqual([{ type: 'text', text: 'what?' }, png]);
    const refuse = (content: unknown) => () => parsePromptParams({ model: 'v', messages: [{ role: 'user', content }] }, withProjector);
    expect(refuse([{ type: 'image_url', image_url: { url: 'https://example.com/cat.png' } }])).toThrow('prompt.submit: messages[0].content[0].image_url.url must be a data:image/… URL (base64 of the image)');
    expect(refuse([{ type: 'audio', data: 'x' }])).toThrow(/content must be a string or an array of .*; part 0 is not one$/);
    expect(refuse([])).toThrow(/content must be a string or an array/);
    // A projector whose header says it reads audio only (a read header says so; unread, llama-server judges).
    expect(() => parsePromptParams({ model: 'v', messages: [{ role: 'user', content: [png] }] }, models('/m/mmproj-audio.gguf', ['audio']))).toThrow(
      'prompt.submit: messages[0].content[0] is an image, but the projector of model "v" (models.v.mmproj) reads audio only — send it to a model whose projector reads images, or send text only',
    );
    expect(parsePromptParams({ model: 'v', messages: [{ role: 'user', content: [png] }] }, models('/m/mmproj.gguf', ['vision', 'audio'])).messages![0]!.content).toEqual([png]);
  });

  it('audio parts in a prompt job: base64 for a projector that hears, never a URL', () => {
    const wav = { type: 'input_audio', input_audio: { data: 'UklGRiQAAABXQVZF', format: 'wav' } };
    const job = (part: unknown, modalities?: string[]) => () => parsePromptParams({ model: 'v', messages: [{ role: 'user', content: [{ type: 'text', text: 'what is said?' }, part] }] }, models('/m/mm.gguf', modalities));
    expect(job(wav, ['audio'])().messages![0]!.content).toEqual([{ type: 'text', text: 'what is said?' }, wav]);
    expect(job(wav)().messages![0]!.content).toHaveLength(2); // an unread header: llama-server judges
    expect(job({ type: 'input_audio', input_audio: { data: 'data:audio/wav;base64,UklGRg==', format: 'wav' } }, ['audio'])).not.toThrow();
    expect(job(wav, ['vision'])).toThrow('prompt.submit: messages[0].content[1] is audio, but the projector of model "v" (models.v.mmproj) reads images only — send it to a model whose projector reads audio, or send text only');
    for (const url of ['https://example.com/a.wav', 'file:///etc/passwd']) {
      expect(job({ type: 'input_audio', input_audio: { data: url, format: 'wav' } }, ['audio'])).toThrow('prompt.submit: messages[0].content[1].input_audio.data must be the audio\'s base64 (or a data:audio/… URL), not a URL');
    }
    expect(job({ type: 'input_audio', input_audio: { data: 'UklG' } }, ['audio'])).toThrow(/part 1 is not one$/); // no format
  });

  it('no --model among several models names them and the flag', () => {
    const err = inFlagTerms(daemonSays({ prompt: 'hi' }, ['big', 'tiny'])) as SlotwiseError;
    expect(err.exitCode).toBe(2);
    expect(err.message).toContain('big, tiny');
    expect(err.message).toContain('--model');
    expect(err.message).not.toMatch(/prompt\.submit|"model"/);
  });

  it('--max-tokens above the model\'s context per slot names the flag, the bound and the value', () => {
    const err = inFlagTerms(daemonSays({ prompt: 'hi', maxTokens: 6000 }, ['tiny'])) as SlotwiseError;
    expect(err.exitCode).toBe(2);
    expect(err.message).toMatch(/^--max-tokens /);
    expect(err.message).toContain('512');
    expect(err.message).toContain('6000');
    expect(err.message).not.toMatch(/prompt\.submit|maxTokens/);
  });

  it('other errors are left as they are', () => {
    const chat = daemonSays({ prompt: 'hi', messages: [] }, ['tiny']);
    expect(inFlagTerms(chat)).toBe(chat);
    const other = new SlotwiseError('SW_ERR_QUEUE_FULL', 'queue full');
    expect(inFlagTerms(other)).toBe(other);
  });
});

describe('help', () => {
  it.each(Object.keys(COMMANDS))('%s --help names every option it takes, and no line ends in a space', async (name) => {
    const r = await slotwise(name, '--help');
    expect(r.code).toBe(0);
    for (const [option, spec] of Object.entries(COMMANDS[name]!.options ?? {})) {
      expect(r.stdout).toContain(`--${option}`);
      if (spec.short) expect(r.stdout).toMatch(new RegExp(`(^|[\\s[])-${spec.short}\\b`, 'm'));
    }
    expect(r.stdout.split('\n').filter((line) => /\s$/.test(line))).toEqual([]);
  });
});

describe('bench --out', () => {
  it('that cannot hold the report is a usage error before anything is measured', async () => {
    const dir = temp();
    const file = join(dir, 'report');
    writeFileSync(file, '');
    for (const out of [file, join(file, 'below')]) {
      const r = await slotwise('bench', '--concurrency', '1', '--requests', '1', '--out', out, '--state-dir', join(dir, 'state'), '--config', noModels(), '--port', '0');
      expect(r.code).toBe(2);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toContain(`--out ${out} is a file, or is under one — pass a directory the report can go in`);
    }
  });
});
