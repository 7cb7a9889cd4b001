// A media file's bytes as a chat message part, typed by its first bytes: an image as a base64 data URL
// (`image_url`), audio as base64 with its format (`input_audio`, as OpenAI's), which is how llama-server
// takes them through the chat API; it decodes audio with miniaudio (tools/mtmd/mtmd-helper.cpp: WAV, MP3,
// FLAC). Pure: the CLI (`prompt --image`, `--audio`) and the extension (Ask About Image) read the file
// their own way.
import type { ChatContentPart } from './protocol';

/** Magic bytes → MIME type, for the formats llama.cpp's image loader (stb_image) reads. */
const IMAGE_SIGNATURES: readonly [string, (b: Uint8Array) => boolean][] = [
  ['image/png', (b) => [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a].every((x, i) => b[i] === x)],
  ['image/jpeg', (b) => b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff],
  ['image/gif', (b) => ascii(b, 0, 4) === 'GIF8'],
  ['image/webp', (b) => ascii(b, 0, 4) === 'RIFF' && ascii(b, 8, 12) === 'WEBP'],
  ['image/bmp', (b) => ascii(b, 0, 2) === 'BM'],
];

/** Formats named in messages. */
export const IMAGE_FORMATS = 'PNG, JPEG, GIF, WebP or BMP';
/** File name extensions of those formats (the extension's file pick filter). */
export const IMAGE_EXTENSIONS = ['png', 'jpg', 'jpeg', 'gif', 'webp', 'bmp'];

function ascii(b: Uint8Array, from: number, to: number): string {
  return String.fromCharCode(...b.subarray(from, to));
}

/** The MIME type of an image's bytes; undefined when they are none of IMAGE_FORMATS. */
export function imageMime(bytes: Uint8Array): string | undefined {
  return IMAGE_SIGNATURES.find(([, test]) => test(bytes))?.[0];
}

/** The image as an `image_url` part, or undefined when the bytes are not an image of IMAGE_FORMATS. */
export function imagePartOf(bytes: Uint8Array): ChatContentPart | undefined {
  const mime = imageMime(bytes);
  return mime ? { type: 'image_url', image_url: { url: `data:${mime};base64,${Buffer.from(bytes).toString('base64')}` } } : undefined;
}

/** Magic bytes → the part's `format`. */
const AUDIO_SIGNATURES: readonly [string, (b: Uint8Array) => boolean][] = [
  ['wav', (b) => ascii(b, 0, 4) === 'RIFF' && ascii(b, 8, 12) === 'WAVE'],
  ['mp3', (b) => ascii(b, 0, 3) === 'ID3' || (b[0] === 0xff && ((b[1] ?? 0) & 0xe0) === 0xe0)], // a tag, or a frame's sync word
  ['flac', (b) => ascii(b, 0, 4) === 'fLaC'],
];

/** Formats named in messages. */
export const AUDIO_FORMATS = 'WAV, MP3 or FLAC';

/** The format of an audio file's bytes (`wav`, `mp3`, `flac`); undefined when they are none of AUDIO_FORMATS. */
export function audioFormat(bytes: Uint8Array): string | undefined {
  return AUDIO_SIGNATURES.find(([, test]) => test(bytes))?.[0];
}

/** The audio as an `input_audio` part, or undefined when the bytes are none of AUDIO_FORMATS. */
export function audioPartOf(bytes: Uint8Array): ChatContentPart | undefined {
  const format = audioFormat(bytes);
  return format ? { type: 'input_audio', input_audio: { data: Buffer.from(bytes).toString('base64'), format } } : undefined;
}
