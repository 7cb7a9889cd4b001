// POST /v1/embeddings and POST /v1/rerank, for models configured with "kind": "embedding" / "rerank"
// (llama-server runs them with --embedding / --reranking). Queued and proxied like the OpenAI routes.
import { SlotwiseError } from '../../shared/errors';
import type { Route, RouteContext } from '../server/http';
import { asObject, optNumber, optString } from '../server/validate';
import { proxyToModel, type OpenAiDeps, type ProxyRequest } from './openai';
import { requireModelKind } from './model-kind';
import type { Supervisor } from '../runtime/supervisor';

export type EmbeddingDeps = Pick<OpenAiDeps, 'supervisor' | 'scheduler'>;

export function embeddingRoutes(deps: EmbeddingDeps): Route[] {
  return [
    { method: 'POST', path: '/v1/embeddings', handle: (ctx) => route(deps, ctx, '/v1/embeddings', validateEmbeddingsBody) },
    { method: 'POST', path: '/v1/rerank', handle: (ctx) => route(deps, ctx, '/v1/rerank', validateRerankBody) },
  ];
}

type Validate = (raw: unknown, where: string, supervisor: Supervisor) => ProxyRequest;

async function route(deps: EmbeddingDeps, ctx: RouteContext, path: string, validate: Validate): Promise<void> {
  const where = `POST ${path}`;
  const req = validate(await ctx.json(), where, deps.supervisor);
  requireModelKind(deps.supervisor, req.model, path === '/v1/rerank' ? 'rerank' : 'embedding', where);
  await proxyToModel(deps, ctx, path, req);
}

/** `input`: a string, a non-empty array of strings, or token arrays (OpenAI's shapes). */
export function validateEmbeddingsBody(raw: unknown, where: string, supervisor: Supervisor): ProxyRequest {
  const body = asObject(raw, where);
  const model = supervisor.resolveModel(optString(body, 'model', where), where);
  const input = body.input;
  const isTokens = (x: unknown): boolean => Array.isArray(x) && x.length > 0 && x.every((t) => Number.isInteger(t));
  const ok =
    (typeof input === 'string' && input !== '') ||
    (Array.isArray(input) && input.length > 0 && (isTokens(input) || input.every((x) => (typeof x === 'string' && x !== '') || isTokens(x))));
  if (!ok) throw new SlotwiseError('SW_ERR_BAD_REQUEST', `${where}: "input" must be a non-empty string or a non-empty array of strings (or token arrays)`);
  return { model, stream: false, body };
}

/** `query` and `documents` (Jina) or `texts` (TEI), as llama-server takes them. */
export function validateRerankBody(raw: unknown, where: string, supervisor: Supervisor): ProxyRequest {
  const body = asObject(raw, where);
  const model = supervisor.resolveModel(optString(body, 'model', where), where);
  if (typeof body.query !== 'string') throw new SlotwiseError('SW_ERR_BAD_REQUEST', `${where}: "query" must be a string`);
  const docs = body.documents ?? body.texts;
  if (!Array.isArray(docs) || docs.length === 0 || !docs.every((d) => typeof d === 'string')) {
    throw new SlotwiseError('SW_ERR_BAD_REQUEST', `${where}: "documents" must be a non-empty array of strings`);
  }
  optNumber(body, 'top_n', where, { integer: true, min: 1 });
  return { model, stream: false, body };
}
