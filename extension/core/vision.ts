// Ask About Image (pure part): which models read images, and the prompt job for a picture and a question.
import type { ModelStatus, PromptParams } from '../../shared/protocol';
import { imagePartOf, IMAGE_FORMATS } from '../../shared/media-data';
import { SlotwiseError } from '../../shared/errors';

/** Models whose projector (`mmproj`) reads images, by name. */
export function visionModels(models: readonly ModelStatus[]): string[] {
  return models.filter((m) => m.info?.modalities?.includes('vision')).map((m) => m.name);
}

/** The prompt job for `question` about the picture in `bytes` (named `file` in errors). */
export function imagePromptParams(bytes: Uint8Array, file: string, question: string, base: Omit<PromptParams, 'prompt' | 'messages'>): PromptParams {
  const image = imagePartOf(bytes);
  if (!image) throw new SlotwiseError('SW_ERR_BAD_REQUEST', `${file} is not a ${IMAGE_FORMATS} image`);
  return { ...base, messages: [{ role: 'user', content: [{ type: 'text', text: question }, image] }] };
}

/** Why no model can be asked: none configured reads images. */
export function noVisionModel(): SlotwiseError {
  return new SlotwiseError('SW_ERR_CONFIG', 'no model reads images — give a vision model its projector ("mmproj": the mmproj-*.gguf published beside it) in the Slotwise config');
}
