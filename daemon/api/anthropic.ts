// Anthropic's Messages API (POST /v1/messages, /v1/messages/count_tokens), so clients written for it
// (Claude Code, Anthropic's SDKs) can use the daemon's models. A request is converted to the OpenAI
// chat request llama-server would make of it (anthropic-request.ts) and then queued, leased and
// proxied as /v1/chat/completions is, with its slot pinned; the answer is spoken back in Anthropic's
// shape (anthropic-answer.ts), errors included.
import type { Route, RouteContext } from '../server/http';
import { asObject, optString, type Obj } from '../server/validate';
import { writeWithMedia } from '../server/lifted-strings';
import { checkMediaPart, proxyToModel, type Dialect, type OpenAiDeps } from './openai';
import { requireModelKind } from './model-kind';
import { chatOfMessages, holdsAnthropicImage } from './anthropic-request';
import type { PayloadPieces } from './payload';
import { AnthropicStream, anthropicErrorBody, anthropicErrorEvent, anthropicErrorType, anthropicMessage } from './anthropic-answer';
import { countTokens } from './count-tokens';

export type AnthropicDeps = Pick<OpenAiDeps, 'supervisor' | 'scheduler'>;

export function anthropicRoutes(deps: AnthropicDeps): Route[] {
  return [
    // Every error on these paths, from the token check to llama-server's own, in Anthropic's shape.
    { method: 'POST', path: '/v1/messages', errorShape: anthropicErrorBody, handle: (ctx) => messages(deps, ctx) },
    { method: 'POST', path: '/v1/messages/count_tokens', errorShape: anthropicErrorBody, handle: (ctx) => countMessageTokens(deps, ctx) },
  ];
}

/** `stops`: the request's stop sequences, which its answer may name as the one that matched. */
function dialect(model: string, stops: readonly string[] = []): Dialect {
  return {
    stream: () => new AnthropicStream(model, stops),
    answer: (chat) => anthropicMessage(chat, model, stops),
    errorEvent: (status, body) => anthropicErrorEvent(body.error.message, anthropicErrorType(status)),
  };
}

/**
 * The request's model and its chat form, checked as /v1/chat/completions checks its own. An image's
 * base64 is lifted out of the body unparsed (server/lifted-strings.ts): the chat form holds a stand-in
 * in its data URL, and `wire`, called once the chat request is final, writes it with the image's bytes
 * back in its place, so a photo is neither parsed into a string nor written again (Claude Code sends the
 * whole conversation, its screenshots included, every turn).
 */
async function read(deps: AnthropicDeps, ctx: RouteContext, where: string): Promise<{ model: string; stream: boolean; chat: Obj; wire: () => PayloadPieces }> {
  const { value: raw, media } = await ctx.jsonWithBytes(holdsAnthropicImage);
  const body = asObject(raw, where);
  const model = deps.supervisor.resolveModel(optString(body, 'model', where), where);
  requireModelKind(deps.supervisor, model, 'completion', where);
  const config = deps.supervisor.modelConfig(model);
  const modalities = deps.supervisor.modalities(model);
  const { stream, chat } = chatOfMessages(body, where, config.ctxPerSlot, (part, at) => checkMediaPart(part, at, config, modalities));
  return { model, stream, chat, wire: () => writeWithMedia(chat, media) };
}

async function messages(deps: AnthropicDeps, ctx: RouteContext): Promise<void> {
  const where = 'POST /v1/messages';
  const { model, stream, chat, wire } = await read(deps, ctx, where);
  // The first token's timings carry the prompt's counts for message_start; the usage chunk ends it.
  if (stream) Object.assign(chat, { stream: true, stream_options: { include_usage: true }, timings_per_token: true });
  // The chat answer does not say which stop sequence matched; llama-server's `__verbose` does, cut to that one field.
  const stops = (chat.stop as string[] | undefined) ?? [];
  if (stops.length > 0) Object.assign(chat, { verbose: true, response_fields: ['stopping_word'] });
  await proxyToModel(deps, ctx, '/v1/chat/completions', { model, stream, body: chat, dialect: dialect(model, stops), bytes: wire() });
}

/** Counted on the chat request it becomes (the same template and tokenizer as a generation), answered as `{input_tokens}`. */
async function countMessageTokens(deps: AnthropicDeps, ctx: RouteContext): Promise<void> {
  const { model, chat, wire } = await read(deps, ctx, 'POST /v1/messages/count_tokens');
  const count: Dialect = { ...dialect(model), answer: (counted) => ({ input_tokens: counted.input_tokens }) };
  await countTokens(deps, ctx, '/v1/chat/completions/input_tokens', { model, body: chat, dialect: count, bytes: wire() });
}
