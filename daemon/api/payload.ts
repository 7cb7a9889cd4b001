// A request body on its way to llama-server: the bytes the client sent (or the daemon's own JSON) and
// the fields the daemon appends (its slot, stream flags), kept apart until sent. A photo in the body is
// then neither copied nor encoded again: the socket gets the client's buffer, then the appended tail.
import { isJsonSpace } from '../server/lifted-strings';

export interface Payload {
  /** A JSON object's text or UTF-8 bytes, as it came, or in pieces (a prompt job's JSON with its photos' bytes: lifted-strings.ts spliceMedia). */
  readonly base: string | Buffer | PayloadPieces;
  /** `"key":value,…` appended last, so they win over the same keys in `base` (llama-server's JSON parser keeps the last duplicate). */
  readonly fields: readonly string[];
}

/** What goes on the wire, in order. */
export type PayloadPieces = readonly (string | Buffer)[];

export function payloadOf(base: string | Buffer | PayloadPieces): Payload {
  return { base, fields: [] };
}

export function withFields(p: Payload, fields: string): Payload {
  return { base: p.base, fields: [...p.fields, fields] };
}

// Array.isArray does not narrow a readonly array type.
const isPieces = (x: Payload['base']): x is PayloadPieces => Array.isArray(x);

/** The body as pieces: `base` up to its closing brace, then the fields and the brace. A base that is not an object goes unchanged. */
export function payloadPieces(p: Payload): PayloadPieces {
  const { base, fields } = p;
  if (isPieces(base)) {
    // The object closes in the last piece (JSON text after the last photo).
    if (base.length === 0) return [];
    return [...base.slice(0, -1), ...payloadPieces({ base: base.at(-1)!, fields })];
  }
  if (fields.length === 0) return [base];
  // Text and bytes alike, by character code (a brace and JSON's whitespace are ASCII in both).
  const code = typeof base === 'string' ? (i: number) => base.charCodeAt(i) : (i: number) => base[i];
  let close = base.length - 1;
  while (isJsonSpace(code(close))) close--;
  if (code(close) !== 0x7d) return [base];
  let before = close - 1;
  while (isJsonSpace(code(before))) before--;
  const open = typeof base === 'string' ? base.slice(0, close) : base.subarray(0, close);
  return [open, `${code(before) === 0x7b ? '' : ','}${fields.join(',')}}`];
}

export function piecesBytes(pieces: PayloadPieces): number {
  let n = 0;
  for (const x of pieces) n += typeof x === 'string' ? Buffer.byteLength(x) : x.length;
  return n;
}

/** The pieces as one string or buffer, for a client that takes a single body (undici's request). */
export function joinPieces(pieces: PayloadPieces): string | Buffer {
  if (pieces.length === 1) return pieces[0]!;
  if (pieces.every((x) => typeof x === 'string')) return pieces.join('');
  return Buffer.concat(pieces.map((x) => (typeof x === 'string' ? Buffer.from(x) : x)));
}

/** The whole body as text (tests, and error paths that log it). */
export function payloadText(p: Payload): string {
  const one = joinPieces(payloadPieces(p));
  return typeof one === 'string' ? one : one.toString('utf8');
}
