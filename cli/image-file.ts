// `slotwise prompt --image FILE`: the file as a chat message part (shared/image-data.ts), or a usage error naming it.
import { readFile } from 'node:fs/promises';
import { SlotwiseError } from '../shared/errors';
import { IMAGE_FORMATS, imagePartOf } from '../shared/image-data';
import type { ChatContentPart } from '../shared/protocol';
import { errnoCode } from '../platform/errno';

export async function imagePart(path: string): Promise<ChatContentPart> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (err) {
    const code = errnoCode(err);
    throw new SlotwiseError('SW_ERR_USAGE', code === 'ENOENT' ? `--image ${path}: no such file` : `--image ${path}: cannot read it (${code ?? (err as Error).message})`);
  }
  const part = imagePartOf(bytes);
  if (!part) throw new SlotwiseError('SW_ERR_USAGE', `--image ${path}: not a ${IMAGE_FORMATS} image`);
  return part;
}
