// `prompt`, `jobs`, `attach ID`, `cancel ID`: prompt jobs from the terminal. Tokens stream to stdout;
// Ctrl-C, SIGTERM, SIGHUP or a closed stdout cancel the job (with --detach the job keeps running and its id is printed).
import { SlotwiseError } from '../../shared/errors';
import { intValue, numberValue } from '../args';
import { withDaemon } from '../locate';
import type { RpcClient } from '../../shared/rpc-client';
import type { JobSummary, RpcNotifications } from '../../shared/protocol';
import type { Command, CommandContext } from './command';
import { audioPart, imagePart } from '../media-file';

/** `interrupted`: the user or the shell ended the command (`why`: Ctrl-C, SIGTERM, SIGHUP, or stdout closed as by `| head`). */
type EndEvent =
  | { kind: 'end'; end: RpcNotifications['job.end'] }
  | { kind: 'error'; error: RpcNotifications['job.error'] }
  | { kind: 'interrupted'; why: Interruption };
type Interruption = 'SIGINT' | 'SIGTERM' | 'SIGHUP' | 'EPIPE';

/** The daemon's bound on a prompt's temperature (prompt.submit, like the OpenAI routes). */
const MAX_TEMPERATURE = 100;

/** Exit codes as a shell reports a process killed by the signal (EPIPE: SIGPIPE's). */
const INTERRUPTED_EXIT: Record<Interruption, number> = { SIGINT: 130, SIGTERM: 143, SIGHUP: 129, EPIPE: 141 };

/**
 * Streams a job's deltas to stdout until it ends; Ctrl-C, SIGTERM, SIGHUP (the terminal closed) and a
 * closed stdout (`slotwise prompt … | head`) resolve as interrupted, so the job is cancelled instead of
 * holding its slot to max_tokens for nobody. Listens before the job id is known (set it with `setJob`)
 * so no early delta is lost; deltas are printed once, in seq order.
 */
function follow(client: RpcClient, ctx: CommandContext, json: boolean): { done: Promise<EndEvent>; setJob(id: string, fromSeq?: number): void; close(): void } {
  const offs: (() => void)[] = [];
  let jobId: string | undefined;
  let printed = 0;
  const early: (() => void)[] = [];
  const forJob = <T extends { jobId: string }>(fn: (e: T) => void) => (e: T): void => {
    if (jobId === undefined) early.push(() => fn(e));
    else if (e.jobId === jobId) fn(e);
  };
  let resolveDone!: (e: EndEvent) => void;
  const done = new Promise<EndEvent>((resolve) => (resolveDone = resolve));
  let stdoutClosed = false;
  offs.push(client.on('job.delta', forJob((d) => {
    if (d.seq !== printed + 1) return; // a replayed delta already printed
    printed = d.seq;
    if (!json && !stdoutClosed) ctx.stdout.write(d.text);
  })));
  // Kept for the process's life: writes already queued fail with EPIPE too, after close().
  ctx.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err;
    stdoutClosed = true;
    resolveDone({ kind: 'interrupted', why: 'EPIPE' });
  });
  offs.push(client.on('job.queued', forJob((q) => ctx.stderr.write(`[queued: position ${q.position}${q.etaMs !== undefined ? ` · ~${Math.max(1, Math.round(q.etaMs / 1000))} s` : ''}]\n`))));
  offs.push(client.on('job.end', forJob((end) => resolveDone({ kind: 'end', end }))));
  offs.push(client.on('job.error', forJob((error) => resolveDone({ kind: 'error', error }))));
  offs.push(client.onClose((why) => resolveDone({ kind: 'error', error: { jobId: jobId ?? '', code: 'SW_ERR_DAEMON_UNREACHABLE', message: `daemon ${why}` } })));
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    const onSig = (): void => resolveDone({ kind: 'interrupted', why: signal });
    process.once(signal, onSig);
    offs.push(() => process.off(signal, onSig));
  }
  return {
    done,
    setJob(id, fromSeq = 0) {
      jobId = id;
      printed = fromSeq;
      for (const replay of early.splice(0)) replay();
    },
    close: () => offs.forEach((off) => off()),
  };
}

async function finish(client: RpcClient, jobId: string, ev: EndEvent, ctx: CommandContext, json: boolean): Promise<number> {
  if (ev.kind === 'interrupted') {
    await client.call('prompt.cancel', { jobId });
    ctx.stderr.write(`${ev.why === 'EPIPE' ? '' : '\n'}cancelled ${jobId}${ev.why === 'EPIPE' ? ' (its output was closed)' : ''}\n`);
    return INTERRUPTED_EXIT[ev.why];
  }
  if (ev.kind === 'error') throw new SlotwiseError(ev.error.code, ev.error.message);
  if (json) {
    const s = (await client.call('jobs.list')).find((j) => j.jobId === jobId);
    ctx.stdout.write(`${JSON.stringify(s, null, 2)}\n`);
  } else {
    const t = ev.end.timings;
    ctx.stdout.write('\n');
    ctx.stderr.write(`[${ev.end.finishReason} · ${ev.end.usage.completionTokens} tokens · queued ${t.queuedMs} ms · ttft ${t.ttftMs ?? '-'} ms · ${t.tokensPerSecond ?? '-'} tok/s]\n`);
  }
  return 0;
}

export const promptCommand: Command = {
  summary: 'send a prompt; tokens stream to stdout, Ctrl-C cancels',
  args: '[TEXT|-]',
  help: [
    'slotwise prompt [--model M] [--max-tokens N] [--temperature T] [--chat] [--image FILE]… [--audio FILE]… [--json] [--detach] [--background] [TEXT|-]',
    '',
    'TEXT, or "-" / nothing to read the prompt from stdin.',
    '  -m, --model M          the model (needed when several are configured)',
    '  -n, --max-tokens N     at most N tokens (default: llama-server\'s)',
    '  -t, --temperature T    sampling temperature, 0 to 100 (default: llama-server\'s)',
    '  --chat                 send as a chat message (uses the model\'s chat template) instead of raw completion',
    '  --image FILE           add an image (PNG, JPEG, GIF, WebP, BMP) to the chat message; repeat for more; implies --chat',
    '                         and needs a model with a projector (models.NAME.mmproj)',
    '  --audio FILE           add audio (WAV, MP3, FLAC) to the chat message; repeat for more; implies --chat',
    '                         and needs a model whose projector hears (e.g. Qwen2-Audio\'s, Ultravox\'s mmproj)',
    '  --json                 print the finished job summary as JSON instead of streaming text',
    '  --detach               print the job id and return at once; follow it later with `slotwise attach ID`',
    '  --background           batch work: waits behind interactive requests (at most queue.backgroundMaxWaitMs)',
  ].join('\n'),
  options: {
    model: { type: 'string', short: 'm' },
    'max-tokens': { type: 'string', short: 'n' },
    temperature: { type: 'string', short: 't' },
    chat: { type: 'boolean' },
    image: { type: 'string', multiple: true },
    audio: { type: 'string', multiple: true },
    json: { type: 'boolean' },
    detach: { type: 'boolean' },
    background: { type: 'boolean' },
  },
  async run(ctx) {
    const text = ctx.positionals.length && ctx.positionals[0] !== '-' ? ctx.positionals.join(' ') : await readStdin();
    if (!text.trim()) throw new SlotwiseError('SW_ERR_USAGE', 'no prompt: give TEXT or pipe it on stdin');
    // Checked here, before a daemon is needed, in the flags' own words; the daemon checks them too.
    const maxTokens = ctx.values['max-tokens'] === undefined ? undefined : intValue('--max-tokens', ctx.values['max-tokens'] as string, 1);
    const temperature = ctx.values.temperature === undefined ? undefined : numberValue('--temperature', ctx.values.temperature as string, 0, MAX_TEMPERATURE);
    const media = [
      ...(await Promise.all(((ctx.values.image as string[] | undefined) ?? []).map((f) => imagePart(f)))),
      ...(await Promise.all(((ctx.values.audio as string[] | undefined) ?? []).map((f) => audioPart(f)))),
    ];
    return withDaemon(ctx.stateDir, async (client) => {
      const json = ctx.values.json === true;
      const base = {
        model: ctx.values.model as string | undefined,
        maxTokens,
        temperature,
        ...(ctx.values.background ? { priority: 'background' as const } : {}),
      };
      const content = media.length ? [{ type: 'text' as const, text }, ...media] : text;
      const params = ctx.values.chat || media.length ? { ...base, messages: [{ role: 'user' as const, content }] } : { ...base, prompt: text };
      const followed = follow(client, ctx, json); // listening before submit: no early delta is missed
      try {
        const { jobId } = await client.call('prompt.submit', params).catch((err: unknown) => Promise.reject(inFlagTerms(err)));
        if (ctx.values.detach) {
          ctx.stdout.write(`${jobId}\n`);
          return 0;
        }
        followed.setJob(jobId);
        return await finish(client, jobId, await followed.done, ctx, json);
      } finally {
        followed.close();
      }
    });
  },
};

/** The flags that set prompt.submit's params, by param. */
const FLAG_OF_PARAM: Record<string, string> = { model: '--model', maxTokens: '--max-tokens', temperature: '--temperature' };

/**
 * prompt.submit's checks that depend on the daemon's models (a --max-tokens above the model's context
 * per slot, no --model among several models) name its params: `prompt.submit: "maxTokens" must be …`.
 * The user gave flags: the same error in their terms. Any other error is returned as it is.
 */
export function inFlagTerms(err: unknown): unknown {
  if (!(err instanceof SlotwiseError) || err.code !== 'SW_ERR_BAD_REQUEST') return err;
  const several = /^prompt\.submit: "model" is required — configured models: (.+)$/.exec(err.message);
  if (several) return new SlotwiseError(err.code, `several models are configured (${several[1]}): pass --model NAME`, { cause: err });
  const param = /^prompt\.submit: "(\w+)" (must be .*)$/.exec(err.message);
  const flag = param && Object.hasOwn(FLAG_OF_PARAM, param[1]!) ? FLAG_OF_PARAM[param[1]!] : undefined;
  if (!param || !flag) return err;
  return new SlotwiseError(err.code, `${flag} ${param[2]!.replace(/, got the number (\S+)$/, ', got $1')}`, { cause: err });
}

export const attachCommand: Command = {
  summary: 'follow a prompt job from the start (or --from SEQ)',
  args: 'ID',
  maxArgs: 1,
  help: [
    'slotwise attach ID [--from SEQ] [--json]',
    '',
    'Streams a prompt job\'s text to stdout from the start, as `slotwise prompt` does; Ctrl-C cancels the job.',
    '  --from SEQ   only the text after delta SEQ (default 0: all of it)',
    '  --json       print the finished job summary as JSON instead of streaming text',
  ].join('\n'),
  options: { from: { type: 'string' }, json: { type: 'boolean' } },
  async run(ctx) {
    const [jobId] = ctx.positionals;
    if (!jobId) throw new SlotwiseError('SW_ERR_USAGE', 'usage: slotwise attach ID');
    const fromSeq = ctx.values.from === undefined ? 0 : intValue('--from', ctx.values.from as string, 0);
    return withDaemon(ctx.stateDir, async (client) => {
      const json = ctx.values.json === true;
      const followed = follow(client, ctx, json);
      try {
        followed.setJob(jobId, fromSeq);
        await client.call('prompt.attach', { jobId, fromSeq });
        return await finish(client, jobId, await followed.done, ctx, json);
      } finally {
        followed.close();
      }
    });
  },
};

export const cancelCommand: Command = {
  summary: 'cancel a prompt job',
  args: 'ID',
  maxArgs: 1,
  async run(ctx) {
    const [jobId] = ctx.positionals;
    if (!jobId) throw new SlotwiseError('SW_ERR_USAGE', 'usage: slotwise cancel ID');
    return withDaemon(ctx.stateDir, async (client) => {
      const s = await client.call('prompt.cancel', { jobId });
      ctx.stdout.write(`${s.jobId} ${s.state === 'queued' || s.state === 'running' ? 'cancelling' : s.state}\n`);
      return 0;
    });
  },
};

export const jobsCommand: Command = {
  summary: 'list running and recent prompt jobs',
  help: ['slotwise jobs [--json]', '', 'Running and recent prompt jobs: id, start time, model, state, tokens, title.', '  --json   the list as JSON (shape: shared/protocol.ts JobSummary)'].join('\n'),
  options: { json: { type: 'boolean' } },
  async run(ctx) {
    return withDaemon(ctx.stateDir, async (client) => {
      const jobs = await client.call('jobs.list');
      if (ctx.values.json) ctx.stdout.write(`${JSON.stringify(jobs, null, 2)}\n`);
      else if (jobs.length === 0) ctx.stdout.write('no jobs\n');
      else for (const j of jobs) ctx.stdout.write(`${jobLine(j)}\n`);
      return 0;
    });
  },
};

function jobLine(j: JobSummary): string {
  const when = new Date(j.createdAt).toISOString().slice(11, 19);
  const tokens = j.usage ? `${j.usage.completionTokens} tok` : `${j.seq} deltas`;
  return `${j.jobId}  ${when}  ${j.model.padEnd(10)} ${j.state.padEnd(9)} ${tokens.padEnd(9)} ${JSON.stringify(j.title)}`;
}

async function readStdin(): Promise<string> {
  if (process.stdin.isTTY) return '';
  let text = '';
  for await (const chunk of process.stdin) text += chunk;
  return text;
}
