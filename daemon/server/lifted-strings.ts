// Long string literals of a JSON body (a photo's base64, an audio clip) lifted out of its bytes before it
// is parsed. JSON.parse would copy each into a string, the prompt-cache key would hash that string, and
// forwarding would encode it to bytes again: ~90 ms of the event loop per 4.7 MB photo on a 2-core VM,
// during which every other stream's tokens wait. Lifted, the body's bytes are forwarded as they came and
// the parsed value holds a short placeholder in each literal's place; the route then turns placeholders
// in media parts into stand-ins (scheme and media type, length and digest) and puts every other one back.
import { createHash, randomBytes } from 'node:crypto';
import { isAscii } from 'node:buffer';
import { setImmediate as nextTurn } from 'node:timers/promises';

/** A literal shorter than this is parsed as usual: lifting pays off for media, not for text. */
export const LIFT_MIN_BYTES = 64 * 1024;

/** One lifted literal: its content (between the quotes) as a view of the body, or unescaped when it held `\/`. */
type Literal = { start: number; end: number; bytes: Buffer };

/** A body with its long literals lifted: the text to parse, and what each placeholder in it stands for. */
export interface LiftedBody {
  /** The body as text, each lifted literal's content replaced by its placeholder. */
  text: string;
  /** The placeholders it holds, each with the bytes it stands for (unescaped, where it held `\/`). */
  literals: ReadonlyMap<string, Buffer>;
}

// Per process, so no client can write a placeholder of its own into a body.
const NONCE = randomBytes(9).toString('base64url');
const PLACEHOLDER = new RegExp(`^\u0000lifted:${NONCE}:\\d+$`);
/** Marks a stand-in: what no data URL, base64 or web URL contains. */
const STAND_IN = '\u0000sha1=';

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const SLASH = 0x2f;

/**
 * The body's text with every string value (not key) of at least `minBytes` that is printable ASCII whose
 * only escape is `\/` (what base64 and data URLs are, also as PHP and some Java encoders write them)
 * replaced by a placeholder; the bytes must be valid UTF-8. Undefined when there is none, or when the quotes do not pair up (not JSON:
 * the caller parses the whole text and reports the error at its real offset).
 */
export async function liftLongStrings(bytes: Buffer, minBytes = LIFT_MIN_BYTES): Promise<LiftedBody | undefined> {
  if (bytes.length < minBytes) return undefined;
  const found: Literal[] = [];
  // Every unescaped quote opens or closes a string in JSON; memchr finds them without a byte loop.
  let open = -1;
  for (let q = bytes.indexOf(QUOTE); q >= 0; q = bytes.indexOf(QUOTE, q + 1)) {
    if (open < 0) {
      open = q;
      continue;
    }
    let slashes = 0;
    while (bytes[q - 1 - slashes] === BACKSLASH) slashes++;
    if (slashes % 2 === 1) continue; // an escaped quote inside the string
    const content = q - open - 1 >= minBytes && !isKey(bytes, q) ? await plain(bytes.subarray(open + 1, q)) : undefined;
    if (content) found.push({ start: open + 1, end: q, bytes: content });
    open = -1;
  }
  if (open >= 0 || found.length === 0) return undefined;
  const literals = new Map<string, Buffer>();
  let text = '';
  let at = 0;
  for (const [i, lit] of found.entries()) {
    const placeholder = `\u0000lifted:${NONCE}:${i}`;
    // JSON text may not hold a raw U+0000: written escaped, it parses to the placeholder.
    text += `${bytes.toString('utf8', at, lit.start)}\\u0000${placeholder.slice(1)}`;
    literals.set(placeholder, lit.bytes);
    at = lit.end;
  }
  text += bytes.toString('utf8', at);
  return { text, literals };
}

/** JSON's whitespace (RFC 8259: space, tab, line feed, carriage return), by character code. */
export const isJsonSpace = (c: number | undefined): boolean => c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09;

/**
 * Whether the literal closed by the quote at `close` is an object's key (a colon follows, after any
 * JSON whitespace). A key is never lifted: the value keeps it as its own name, which settleLifted
 * (which puts back values only) could not restore, and a job writing JSON from the value would send
 * the placeholder upstream.
 */
function isKey(bytes: Buffer, close: number): boolean {
  let i = close + 1;
  while (isJsonSpace(bytes[i])) i++;
  return bytes[i] === 0x3a;
}

/**
 * A literal's content as it reads unescaped, when it is printable ASCII whose only escape is `\/`: the
 * same bytes when it has none, else a copy without the backslashes (so the digest, the route's checks and
 * a job's JSON see the photo as any other client sends it). Undefined for any other literal.
 */
async function plain(s: Buffer): Promise<Buffer | undefined> {
  if (!isAscii(s)) return undefined;
  let control = false;
  await eachSlice(s, (slice) => !(control = hasControl(slice)));
  if (control) return undefined;
  return s.indexOf(BACKSLASH) < 0 ? s : unslash(s);
}

/** `s` with each `\/` read as `/`, undefined when any other escape is in it. */
async function unslash(s: Buffer): Promise<Buffer | undefined> {
  const out = Buffer.allocUnsafe(s.length);
  let n = 0;
  let ok = true;
  // ~6 ms a MB here, so a quarter of a slice at a time.
  await eachSlice(
    s,
    (slice) => {
      const len = slice.length;
      for (let i = 0; i < len; i++) {
        const c = slice[i]!;
        if (c !== BACKSLASH) out[n++] = c;
        else if ((i + 1 < len ? slice[i + 1] : s[slice.byteOffset - s.byteOffset + len]) !== SLASH) return (ok = false);
      }
      return true;
    },
    SLICE_BYTES / 4,
  );
  return ok ? out.subarray(0, n) : undefined;
}

/** A slice of a photo's bytes checked or hashed in one go: ~1 ms here, so other streams' chunks go out between slices. */
const SLICE_BYTES = 1 << 20;

/** Runs `fn` over `bytes` a slice at a time, yielding to the event loop between slices, until `fn` returns false. */
async function eachSlice(bytes: Buffer, fn: (slice: Buffer) => boolean, sliceBytes = SLICE_BYTES): Promise<void> {
  for (let at = 0; at < bytes.length; at += sliceBytes) {
    if (at > 0) await nextTurn();
    if (!fn(bytes.subarray(at, at + sliceBytes))) return;
  }
}

/** Whether an ASCII buffer holds a byte below 0x20, four bytes a step (the "has less than" bit trick). */
export function hasControl(s: Uint8Array): boolean {
  let i = 0;
  const head = Math.min(s.length, (4 - (s.byteOffset % 4)) % 4);
  for (; i < head; i++) if (s[i]! < 0x20) return true;
  const words = new Uint32Array(s.buffer, s.byteOffset + i, Math.floor((s.length - i) / 4));
  const n = words.length; // an indexed loop: for…of over a typed array runs ~4× slower here
  for (let j = 0; j < n; j++) {
    const w = words[j]!;
    if (((w - 0x20202020) & ~w & 0x80808080) !== 0) return true;
  }
  for (i += n * 4; i < s.length; i++) if (s[i]! < 0x20) return true;
  return false;
}

/**
 * JSON bytes parsed with their long literals lifted out first (`literals`: what each placeholder in the
 * value stands for, when any was lifted). A syntax error is JSON.parse's on the text as sent: a lifted
 * text fails at other offsets, so it is parsed again whole to name the real one.
 */
export async function parseLifting(bytes: Buffer): Promise<{ value: unknown; literals?: ReadonlyMap<string, Buffer> }> {
  const lifted = await liftLongStrings(bytes);
  if (!lifted) return { value: JSON.parse(bytes.toString('utf8')) };
  try {
    return { value: JSON.parse(lifted.text), literals: lifted.literals };
  } catch (err) {
    JSON.parse(bytes.toString('utf8'));
    throw err; // the whole text parsed: only a lifted literal could have broken it, which lifting rules out
  }
}

export function isPlaceholder(s: unknown): s is string {
  return typeof s === 'string' && s.length < 64 && PLACEHOLDER.test(s);
}

/**
 * What a media literal reads as in the parsed body: its start up to the data URL's comma (scheme and
 * media type, so the route's checks read them), then its digest and length. Two requests with the same
 * photo get the same stand-in, so the prompt-cache key still matches them.
 */
export async function standIn(bytes: Buffer): Promise<string> {
  const comma = bytes.subarray(0, 256).indexOf(0x2c);
  const head = bytes.toString('latin1', 0, comma >= 0 ? comma + 1 : 32);
  const hash = createHash('sha1');
  await eachSlice(bytes, (slice) => !!hash.update(slice));
  return `${head}${STAND_IN}${hash.digest('base64')} ${bytes.length}`;
}

/** The digest a stand-in carries (the SHA-1 of the literal, base64), or undefined for any other string. */
export function standInDigest(s: string): string | undefined {
  const at = s.indexOf(STAND_IN);
  return at < 0 ? undefined : s.slice(at + STAND_IN.length, s.indexOf(' ', at));
}

/**
 * Replaces each placeholder in `value` (in place, depth-first) by a stand-in where `isMedia` says its
 * container is a media part, and by the literal's own text everywhere else. Returns each stand-in with
 * the bytes it stands for (spliceMedia puts them back into JSON written from the value).
 */
export async function settleLifted(value: unknown, literals: ReadonlyMap<string, Buffer>, isMedia: (container: unknown) => boolean): Promise<Map<string, Buffer>> {
  const found: { container: Record<string | number, unknown>; key: string | number; bytes: Buffer; media: boolean }[] = [];
  const walk = (v: unknown, inMedia: boolean): void => {
    if (!v || typeof v !== 'object') return;
    const media = inMedia || isMedia(v);
    const entries: [string | number, unknown][] = Array.isArray(v) ? v.map((x, i) => [i, x]) : Object.entries(v);
    for (const [k, x] of entries) {
      const bytes = isPlaceholder(x) ? literals.get(x) : undefined;
      if (bytes) found.push({ container: v as Record<string | number, unknown>, key: k, bytes, media });
      else walk(x, media);
    }
  };
  walk(value, false);
  const media = new Map<string, Buffer>();
  for (const f of found) {
    if (!f.media) {
      f.container[f.key] = f.bytes.toString('latin1');
      continue;
    }
    const s = await standIn(f.bytes);
    media.set(s, f.bytes);
    f.container[f.key] = s;
  }
  return media;
}

/** `value` written as JSON with each stand-in's bytes back in its place (spliceMedia); one piece when `media` has none. */
export function writeWithMedia(value: unknown, media: ReadonlyMap<string, Buffer> | undefined): (string | Buffer)[] {
  const json = JSON.stringify(value);
  return media?.size ? spliceMedia(json, media) : [json];
}

/**
 * JSON text written from a value that holds stand-ins, as pieces with each stand-in's bytes back in its
 * place (a buffer each, not copied into the text): what goes upstream for a prompt job with a photo.
 * A stand-in may also sit in a string that is itself JSON text (a tool call's `arguments`), escaped
 * twice; the bytes go there too, and need no escaping at either depth: a lifted literal is printable
 * ASCII without a quote or a backslash (liftLongStrings).
 */
export function spliceMedia(json: string, media: ReadonlyMap<string, Buffer>): (string | Buffer)[] {
  const found: { at: number; end: number; bytes: Buffer }[] = [];
  for (const [s, bytes] of media) {
    const once = JSON.stringify(s).slice(1, -1); // as JSON.stringify writes it inside the quotes
    for (const quoted of [once, JSON.stringify(once).slice(1, -1)]) {
      for (let at = json.indexOf(quoted); at >= 0; at = json.indexOf(quoted, at + quoted.length)) found.push({ at, end: at + quoted.length, bytes });
    }
  }
  found.sort((a, b) => a.at - b.at);
  const pieces: (string | Buffer)[] = [];
  let from = 0;
  for (const f of found) {
    pieces.push(json.slice(from, f.at), f.bytes);
    from = f.end;
  }
  pieces.push(json.slice(from));
  return pieces;
}
