// POST /infill: llama-server's fill-in-the-middle (code completion), for models whose vocab has FIM
// tokens. Validated here, then queued and proxied exactly like the OpenAI routes (openai.ts proxyToModel).
import { SlotwiseError } from '../../shared/errors';
import type { Route, RouteContext } from '../server/http';
import { asObject, optBoolean, optNumber, optString, type Obj } from '../server/validate';
import { checkNumbers, proxyToModel, type OpenAiDeps, type ProxyRequest } from './openai';
import { requireInfill } from './model-kind';
import type { Supervisor } from '../runtime/supervisor';

export type InfillDeps = Pick<OpenAiDeps, 'supervisor' | 'scheduler'>;

export function infillRoutes(deps: InfillDeps): Route[] {
  return [{ method: 'POST', path: '/infill', handle: (ctx) => infill(deps, ctx) }];
}

async function infill(deps: InfillDeps, ctx: RouteContext): Promise<void> {
  const where = 'POST /infill';
  const req = validateInfillBody(await ctx.json(), where, deps.supervisor);
  requireInfill(deps.supervisor, req.model, where);
  await proxyToModel(deps, ctx, '/infill', req);
}

/** The fields llama-server requires (tools/server/server-context.cpp post_infill) plus the ones Slotwise relies on; others pass through. */
export function validateInfillBody(raw: unknown, where: string, supervisor: Supervisor): ProxyRequest {
  const body = asObject(raw, where);
  const model = supervisor.resolveModel(optString(body, 'model', where), where);
  const stream = optBoolean(body, 'stream', where) ?? false;
  for (const key of ['input_prefix', 'input_suffix'] as const) {
    if (typeof body[key] !== 'string') {
      throw new SlotwiseError('SW_ERR_BAD_REQUEST', `${where}: "${key}" must be a string (the code ${key === 'input_prefix' ? 'before' : 'after'} the cursor; "" for none)`);
    }
  }
  optString(body, 'prompt', where);
  checkNumbers(body, where, supervisor.modelConfig(model)); // token counts bounded by the slot's context, as on /v1/*
  optNumber(body, 'temperature', where, { min: 0, max: 100 });
  validateExtra(body, where);
  return { model, stream, body };
}

function validateExtra(body: Obj, where: string): void {
  const extra = body.input_extra;
  if (extra === undefined || extra === null) return;
  const shape = 'an array of {"filename": string, "text": string}';
  if (!Array.isArray(extra)) throw new SlotwiseError('SW_ERR_BAD_REQUEST', `${where}: "input_extra" must be ${shape}`);
  extra.forEach((chunk, i) => {
    const c = asObject(chunk, `${where}: input_extra[${i}]`);
    if (typeof c.text !== 'string') throw new SlotwiseError('SW_ERR_BAD_REQUEST', `${where}: input_extra[${i}].text must be a string`);
    if (c.filename !== undefined && typeof c.filename !== 'string') {
      throw new SlotwiseError('SW_ERR_BAD_REQUEST', `${where}: input_extra[${i}].filename must be a string`);
    }
  });
}
