// Prompt token counts: POST /v1/chat/completions/input_tokens, /v1/responses/input_tokens and
// Anthropic's /v1/messages/count_tokens. llama-server counts with the model's own chat template and
// tokenizer, on its HTTP thread, taking no slot: so a count goes to a running instance directly and
// does not queue behind generations. With none running (a model loaded on demand), it goes through
// the queue, which loads the model.
import { sendJson, type Route, type RouteContext } from '../server/http';
import type { Obj } from '../server/validate';
import { proxyToModel, readGeneration, type OpenAiDeps, type ProxyRequest } from './openai';
import { postJson, upstreamError } from './upstream';
import { payloadOf } from './payload';

/**
 * Counts the prompt of `req` (its model, body, and the bytes to send when not JSON.stringify(body): see
 * ProxyRequest.bytes) at llama-server's `path`; `req.dialect.answer` shapes the answer.
 */
export async function countTokens(deps: CountDeps, ctx: RouteContext, path: string, req: Omit<ProxyRequest, 'stream'>): Promise<void> {
  const inst = deps.supervisor.instances(req.model).find((i) => i.routable);
  if (!inst) return proxyToModel(deps, ctx, path, { ...req, stream: false });
  const up = await postJson(inst, path, payloadOf(req.bytes ?? JSON.stringify(req.body)), false, ctx.signal);
  const text = await up.body.text();
  if (up.statusCode >= 400) throw upstreamError(inst.id, up.statusCode, text);
  const counted = JSON.parse(text) as Obj;
  sendJson(ctx.res, 200, req.dialect ? req.dialect.answer(counted) : counted);
}

type CountDeps = Pick<OpenAiDeps, 'supervisor' | 'scheduler'>;

/** POST /v1/chat/completions/input_tokens (the Responses and Anthropic counts sit with their routes). */
export function chatCountRoutes(deps: CountDeps): Route[] {
  return [{ method: 'POST', path: '/v1/chat/completions/input_tokens', handle: (ctx) => countChatTokens(deps, ctx) }];
}

/** Read as the generation reads it (a photo lifted, a forced function narrowing the tools), so counted as it will run. */
async function countChatTokens(deps: CountDeps, ctx: RouteContext): Promise<void> {
  const path = '/v1/chat/completions/input_tokens';
  await countTokens(deps, ctx, path, await readGeneration(deps, ctx, `POST ${path}`, 'messages'));
}
