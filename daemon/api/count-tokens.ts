// Prompt token counts: POST /v1/chat/completions/input_tokens, /v1/responses/input_tokens and
// Anthropic's /v1/messages/count_tokens. llama-server counts with the model's own chat template and
// tokenizer, on its HTTP thread, taking no slot: so a count goes to a running instance directly and
// does not queue behind generations. With none running (a model loaded on demand), it goes through
// the queue, which loads the model.
import { sendJson, type Route, type RouteContext } from '../server/http';
import type { Obj } from '../server/validate';
import { bytesToSend, proxyToModel, validateBody, type Dialect, type OpenAiDeps } from './openai';
import { requireModelKind } from './model-kind';
import { postJson, upstreamError } from './upstream';
import { payloadOf, type PayloadPieces } from './payload';
import { holdsMedia } from '../../shared/chat-content';

/**
 * Counts `body`'s prompt on `model` at llama-server's `path`; `dialect.answer` shapes the answer.
 * `bytes`: the body as it goes upstream, when not JSON.stringify(body) (see ProxyRequest.bytes).
 */
export async function countTokens(deps: CountDeps, ctx: RouteContext, model: string, path: string, body: Obj, dialect?: Dialect, bytes?: Buffer | PayloadPieces): Promise<void> {
  const inst = deps.supervisor.instances(model).find((i) => i.routable);
  if (!inst) return proxyToModel(deps, ctx, path, { model, stream: false, body, ...(dialect ? { dialect } : {}), ...(bytes ? { bytes } : {}) });
  const up = await postJson(inst, path, payloadOf(bytes ?? JSON.stringify(body)), false, ctx.signal);
  const text = await up.body.text();
  if (up.statusCode >= 400) throw upstreamError(inst.id, up.statusCode, text);
  const counted = JSON.parse(text) as Obj;
  sendJson(ctx.res, 200, dialect ? dialect.answer(counted) : counted);
}

type CountDeps = Pick<OpenAiDeps, 'supervisor' | 'scheduler'>;

/** POST /v1/chat/completions/input_tokens (the Responses and Anthropic counts sit with their routes). */
export function chatCountRoutes(deps: CountDeps): Route[] {
  return [{ method: 'POST', path: '/v1/chat/completions/input_tokens', handle: (ctx) => countChatTokens(deps, ctx) }];
}

async function countChatTokens(deps: CountDeps, ctx: RouteContext): Promise<void> {
  const where = 'POST /v1/chat/completions/input_tokens';
  // A photo in the messages is lifted, not parsed, and the body goes on as for a generation (bytesToSend).
  const read = await ctx.jsonWithBytes(holdsMedia);
  const { model, body } = validateBody(read.value, 'messages', where, deps.supervisor);
  requireModelKind(deps.supervisor, model, 'completion', where);
  // Counted as the generation will run it: a forced function narrows the tools (tool-choice.ts).
  await countTokens(deps, ctx, model, '/v1/chat/completions/input_tokens', body, undefined, bytesToSend(body, read, where));
}
