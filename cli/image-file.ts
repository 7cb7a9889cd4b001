// An image file as a chat message part (`slotwise prompt --image`): its type from its first bytes, its
// bytes as a base64 data URL, which is how llama-server takes an image through the chat API.
import { readFile } from 'node:fs/promises';
import { SlotwiseError } from '../shared/errors';
import type { ChatContentPart } from '../shared/protocol';
import { errnoCode } from '../platform/errno';

/** Magic bytes → MIME type, for the formats llama.cpp's image loader (stb_image) reads. */
const SIGNATURES: readonly [string, (b: Buffer) => boolean][] = [
  ['image/png', (b) => b.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))],
  ['image/jpeg', (b) => b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff],
  ['image/gif', (b) => b.subarray(0, 4).toString('latin1') === 'GIF8'],
  ['image/webp', (b) => b.subarray(0, 4).toString('latin1') === 'RIFF' && b.subarray(8, 12).toString('latin1') === 'WEBP'],
  ['image/bmp', (b) => b.subarray(0, 2).toString('latin1') === 'BM'],
];

export async function imagePart(path: string): Promise<ChatContentPart> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (err) {
    const code = errnoCode(err);
    throw new SlotwiseError('SW_ERR_USAGE', code === 'ENOENT' ? `--image ${path}: no such file` : `--image ${path}: cannot read it (${code ?? (err as Error).message})`);
  }
  const mime = SIGNATURES.find(([, test]) => test(bytes))?.[0];
  if (!mime) throw new SlotwiseError('SW_ERR_USAGE', `--image ${path}: not a PNG, JPEG, GIF, WebP or BMP image`);
  return { type: 'image_url', image_url: { url: `data:${mime};base64,${bytes.toString('base64')}` } };
}
