// Which routes a model serves, from its config `kind` and its vocab, and whether it reads media (its
// projector): a request it cannot serve is refused before it queues, with a message naming the model and the fix.
import { SlotwiseError } from '../../shared/errors';
import type { ModelKind } from '../config/types';
import type { Supervisor } from '../runtime/supervisor';
import { readsText } from '../../shared/chat-content';
import type { Modality } from '../../shared/protocol';

const SERVES: Record<ModelKind, string> = {
  completion: '/v1/completions, /v1/chat/completions and /infill',
  embedding: '/v1/embeddings',
  rerank: '/v1/rerank',
};

export function requireModelKind(supervisor: Supervisor, model: string, wanted: ModelKind, where: string): void {
  const kind = supervisor.modelConfig(model).kind;
  if (kind === wanted) return;
  throw new SlotwiseError(
    'SW_ERR_WRONG_MODEL_KIND',
    `${where}: model "${model}" is ${kind === 'embedding' ? 'an' : 'a'} ${kind} model (it serves ${SERVES[kind]}) — use a model with "kind": "${wanted}", or change this model's "kind" in the config`,
  );
}

/**
 * Media (an image, audio) needs a projector, and one whose encoder reads it: `where` names the part.
 * `modalities` are what the projector's header says it reads (undefined when unread: llama-server judges).
 * llama-server's own refusal is a 500 whose hint says to provide the mmproj, which the model has.
 */
export function requireProjector(model: { name: string; mmproj?: string }, where: string, media: { what: string; needs: Modality }, modalities?: readonly Modality[]): void {
  if (model.mmproj === undefined) {
    throw new SlotwiseError('SW_ERR_BAD_REQUEST', `${where} is ${media.what}, but model "${model.name}" has no projector to read it — set models.${model.name}.mmproj to the model's mmproj-*.gguf, or send text only`);
  }
  if (!modalities || modalities.includes(media.needs)) return;
  const reads = readsText(modalities);
  throw new SlotwiseError(
    'SW_ERR_BAD_REQUEST',
    `${where} is ${media.what}, but the projector of model "${model.name}" (models.${model.name}.mmproj) reads ${reads} only — send it to a model whose projector reads ${readsText([media.needs])}, or send text only`,
  );
}

/** /infill needs FIM tokens; a header Slotwise could not read is left to llama-server to judge. */
export function requireInfill(supervisor: Supervisor, model: string, where: string): void {
  requireModelKind(supervisor, model, 'completion', where);
  if (supervisor.canInfill(model) !== false) return;
  throw new SlotwiseError(
    'SW_ERR_MODEL_CANNOT_INFILL',
    `${where}: model "${model}" cannot fill in the middle: its vocab has no FIM prefix/suffix/middle tokens — use a coder model that has them (e.g. Qwen2.5-Coder, DeepSeek-Coder; \`slotwise tiny-model --fim\` for tests)`,
  );
}
