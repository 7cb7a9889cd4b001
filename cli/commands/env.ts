// `env CLIENT`: the environment that points a client tool at the daemon, as shell `export` lines, so
// `eval "$(slotwise env anthropic)"` is the whole setup: the daemon's URL, its token (which otherwise
// sits in the state dir) and a model that exists.
import { SlotwiseError } from '../../shared/errors';
import type { ModelStatus } from '../../shared/protocol';
import { withDaemon, requireDaemon } from '../locate';
import type { Command, CommandContext } from './command';

/** The variables each client reads, given the daemon's URL, its token and the model. */
const CLIENTS: Record<string, { what: string; vars: (url: string, token: string, model: string) => [string, string][] }> = {
  anthropic: {
    what: "Claude Code and Anthropic's SDKs (/v1/messages)",
    vars: (url, token, model) => [
      ['ANTHROPIC_BASE_URL', url],
      ['ANTHROPIC_AUTH_TOKEN', token],
      ['ANTHROPIC_MODEL', model],
      // Claude Code's other model slots (its background work, and each alias /model offers), so no request names a model the daemon lacks.
      ['ANTHROPIC_DEFAULT_OPUS_MODEL', model],
      ['ANTHROPIC_DEFAULT_SONNET_MODEL', model],
      ['ANTHROPIC_DEFAULT_HAIKU_MODEL', model],
      ['ANTHROPIC_SMALL_FAST_MODEL', model],
    ],
  },
  openai: {
    what: "OpenAI's SDKs and the tools built on them (/v1/chat/completions, /v1/responses)",
    vars: (url, token, model) => [
      ['OPENAI_BASE_URL', `${url}/v1`],
      ['OPENAI_API_KEY', token],
      ['OPENAI_MODEL', model],
    ],
  },
};

/** A value as one shell word: single-quoted, a quote inside written '\''. */
export function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

/** The model to name: the one asked for, else the only model that generates text; an error names the choices. */
export function pickModel(models: readonly Pick<ModelStatus, 'name' | 'kind'>[], asked: string | undefined): string {
  const text = models.filter((m) => (m.kind ?? 'completion') === 'completion').map((m) => m.name);
  if (asked !== undefined) {
    if (text.includes(asked)) return asked;
    const known = models.some((m) => m.name === asked);
    throw new SlotwiseError(known ? 'SW_ERR_BAD_REQUEST' : 'SW_ERR_MODEL_NOT_FOUND', `env: ${known ? `model "${asked}" does not generate text` : `unknown model "${asked}"`} — models that do: ${text.join(', ') || 'none'}`);
  }
  if (text.length === 1) return text[0]!;
  if (text.length === 0) throw new SlotwiseError('SW_ERR_MODEL_NOT_FOUND', 'env: no model that generates text is configured — add one under "models" in the config file');
  throw new SlotwiseError('SW_ERR_USAGE', `env: several models generate text — choose one with --model: ${text.join(', ')}`);
}

function clientSpec(client: string): (typeof CLIENTS)[string] {
  const spec = CLIENTS[client];
  if (!spec) throw new SlotwiseError('SW_ERR_USAGE', `env: unknown client ${JSON.stringify(client)} — use ${Object.keys(CLIENTS).join(' or ')}`);
  return spec;
}

export function envLines(client: string, url: string, token: string, model: string): string {
  return clientSpec(client).vars(url, token, model).map(([k, v]) => `export ${k}=${shellQuote(v)}\n`).join('');
}

export const envCommand: Command = {
  summary: 'print the environment that points a client (anthropic, openai) at the daemon',
  args: 'CLIENT',
  maxArgs: 1,
  help: [
    'slotwise env anthropic|openai [--model M]',
    '',
    'Prints `export` lines with the running daemon\'s URL, its token and a model, for:',
    ...Object.entries(CLIENTS).map(([name, c]) => `  ${name.padEnd(10)} ${c.what}`),
    '',
    '  --model M   the model to name (default: the only model that generates text)',
    '',
    'Use it as:  eval "$(slotwise env anthropic)" && claude',
    'The token is the daemon\'s own: print it only where others cannot read it.',
  ].join('\n'),
  options: { model: { type: 'string' } },
  async run(ctx: CommandContext) {
    const client = ctx.positionals[0];
    if (!client) throw new SlotwiseError('SW_ERR_USAGE', `usage: slotwise env ${Object.keys(CLIENTS).join('|')} [--model M]`);
    clientSpec(client); // a wrong name is told before looking for a daemon
    const ep = await requireDaemon(ctx.stateDir);
    const models = await withDaemon(ep, async (rpc) => (await rpc.call('status.get')).models);
    const model = pickModel(models, ctx.values.model as string | undefined);
    ctx.stdout.write(envLines(client, ep.url, ep.token, model));
  },
};
