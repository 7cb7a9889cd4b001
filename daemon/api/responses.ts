// POST /v1/responses: OpenAI's Responses API, which llama-server serves by converting the request to a
// chat completion (tools/server/server-chat.cpp server_chat_convert_responses_to_chatcmpl). That
// conversion keeps the body's other fields, `id_slot` among them, so the request is proxied as sent,
// queued and leased like /v1/chat/completions. Checked here: what the conversion needs, and what
// Slotwise relies on (the model, token counts within a slot's context, media a projector can read).
import { SlotwiseError, describeValue } from '../../shared/errors';
import { holdsMedia } from '../../shared/chat-content';
import type { Route, RouteContext } from '../server/http';
import { asObject, optBoolean, optNumber, optString, type Obj } from '../server/validate';
import { bytesToSend, checkMediaPart, checkNumbers, proxyToModel, type OpenAiDeps, type ProxyRequest } from './openai';
import { requireModelKind } from './model-kind';
import { RESPONSES_DELTA } from './upstream';
import { countTokens } from './count-tokens';
import type { Supervisor } from '../runtime/supervisor';

export type ResponsesDeps = Pick<OpenAiDeps, 'supervisor' | 'scheduler'>;

export function responsesRoutes(deps: ResponsesDeps): Route[] {
  return [
    { method: 'POST', path: '/v1/responses', handle: (ctx) => responses(deps, ctx) },
    { method: 'POST', path: '/v1/responses/input_tokens', handle: (ctx) => countResponseTokens(deps, ctx) },
  ];
}

async function responses(deps: ResponsesDeps, ctx: RouteContext): Promise<void> {
  // A token is one `….delta` event; the stream's other events frame the answer.
  await proxyToModel(deps, ctx, '/v1/responses', { ...(await readResponses(deps, ctx, 'POST /v1/responses')), tokenEvent: RESPONSES_DELTA });
}

async function countResponseTokens(deps: ResponsesDeps, ctx: RouteContext): Promise<void> {
  const path = '/v1/responses/input_tokens';
  await countTokens(deps, ctx, path, await readResponses(deps, ctx, `POST ${path}`));
}

/** A Responses request read and checked, as a response and its token count both read it: easy-form items typed, a forced function narrowed (bytesToSend). */
async function readResponses(deps: ResponsesDeps, ctx: RouteContext, where: string): Promise<ProxyRequest> {
  const read = await ctx.jsonWithBytes(holdsMedia);
  const { model, stream, body } = validateResponsesBody(read.value, where, deps.supervisor);
  requireModelKind(deps.supervisor, model, 'completion', where);
  return { model, stream, body, bytes: bytesToSend(body, read, where, typeAssistantMessages(body.input)) };
}

/**
 * Gives each assistant message of `input` written in OpenAI's easy form, `{"role": "assistant",
 * "content": …}` without `type`, the `"type": "message"` llama-server needs to read it: without it,
 * its conversion answers "Cannot determine type of 'item'" (tools/server/server-chat.cpp). Whether any
 * was changed (the body is then written again).
 */
export function typeAssistantMessages(input: unknown): boolean {
  if (!Array.isArray(input)) return false;
  let changed = false;
  for (const item of input) {
    if (item && typeof item === 'object' && (item as Obj).role === 'assistant' && (item as Obj).type === undefined) {
      (item as Obj).type = 'message';
      changed = true;
    }
  }
  return changed;
}

export function validateResponsesBody(raw: unknown, where: string, supervisor: Supervisor): { model: string; stream: boolean; body: Obj } {
  const body = asObject(raw, where);
  const model = supervisor.resolveModel(optString(body, 'model', where), where);
  const stream = optBoolean(body, 'stream', where) ?? false;
  const config = supervisor.modelConfig(model);
  checkNumbers(body, where, config);
  optNumber(body, 'max_output_tokens', where, { integer: true, min: 1, max: config.ctxPerSlot, why: `the model's context per slot, models.${model}.ctxPerSlot` });
  optString(body, 'instructions', where);
  if (body.previous_response_id !== undefined && body.previous_response_id !== null) {
    throw new SlotwiseError('SW_ERR_BAD_REQUEST', `${where}: "previous_response_id" is not supported (llama-server keeps no earlier responses) — send the whole conversation in "input"`);
  }
  const input = body.input;
  if (typeof input !== 'string' && !Array.isArray(input)) {
    throw new SlotwiseError('SW_ERR_BAD_REQUEST', `${where}: "input" must be a string or an array of input items, got ${describeValue(input)}`);
  }
  if (Array.isArray(input)) {
    const modalities = supervisor.modalities(model);
    input.forEach((raw, i) => {
      const item = asObject(raw, `${where}: input[${i}]`);
      if (Array.isArray(item.content)) item.content.forEach((part, j) => checkMediaPart(part, `${where}: input[${i}].content[${j}]`, config, modalities));
    });
  }
  return { model, stream, body };
}
