// An audio file's bytes as a chat message part: its format from its first bytes, the bytes as base64,
// which is how llama-server takes audio through the chat API (an `input_audio` part, as OpenAI's).
// llama.cpp decodes it with miniaudio (tools/mtmd/mtmd-helper.cpp), which reads WAV, MP3 and FLAC.
// Pure: the CLI (`prompt --audio`) reads the file its own way.
import type { ChatContentPart } from './protocol';

/** Magic bytes → the part's `format`. */
const SIGNATURES: readonly [string, (b: Uint8Array) => boolean][] = [
  ['wav', (b) => ascii(b, 0, 4) === 'RIFF' && ascii(b, 8, 12) === 'WAVE'],
  ['mp3', (b) => ascii(b, 0, 3) === 'ID3' || (b[0] === 0xff && ((b[1] ?? 0) & 0xe0) === 0xe0)], // a tag, or a frame's sync word
  ['flac', (b) => ascii(b, 0, 4) === 'fLaC'],
];

/** Formats named in messages. */
export const AUDIO_FORMATS = 'WAV, MP3 or FLAC';

function ascii(b: Uint8Array, from: number, to: number): string {
  return String.fromCharCode(...b.subarray(from, to));
}

/** The format of an audio file's bytes (`wav`, `mp3`, `flac`); undefined when they are none of AUDIO_FORMATS. */
export function audioFormat(bytes: Uint8Array): string | undefined {
  return SIGNATURES.find(([, test]) => test(bytes))?.[0];
}

/** The audio as an `input_audio` part, or undefined when the bytes are none of AUDIO_FORMATS. */
export function audioPartOf(bytes: Uint8Array): ChatContentPart | undefined {
  const format = audioFormat(bytes);
  return format ? { type: 'input_audio', input_audio: { data: Buffer.from(bytes).toString('base64'), format } } : undefined;
}
