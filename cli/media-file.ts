// `slotwise prompt --image FILE` / `--audio FILE`: the file as a chat message part (shared/media-data.ts),
// or a usage error naming the flag and the file.
import { readFile } from 'node:fs/promises';
import { SlotwiseError } from '../shared/errors';
import { AUDIO_FORMATS, audioPartOf, IMAGE_FORMATS, imagePartOf } from '../shared/media-data';
import type { ChatContentPart } from '../shared/protocol';
import { errnoCode } from '../platform/errno';

export function imagePart(path: string): Promise<ChatContentPart> {
  return mediaPart('--image', path, imagePartOf, `not a ${IMAGE_FORMATS} image`);
}

export function audioPart(path: string): Promise<ChatContentPart> {
  return mediaPart('--audio', path, audioPartOf, `not ${AUDIO_FORMATS} audio`);
}

async function mediaPart(flag: string, path: string, partOf: (bytes: Uint8Array) => ChatContentPart | undefined, notOne: string): Promise<ChatContentPart> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (err) {
    const code = errnoCode(err);
    throw new SlotwiseError('SW_ERR_USAGE', code === 'ENOENT' ? `${flag} ${path}: no such file` : `${flag} ${path}: cannot read it (${code ?? (err as Error).message})`);
  }
  const part = partOf(bytes);
  if (!part) throw new SlotwiseError('SW_ERR_USAGE', `${flag} ${path}: ${notOne}`);
  return part;
}
