// Long literals lifted out of a JSON body before it is parsed (daemon/server/lifted-strings.ts): only
// those that read the same unescaped, at their exact bytes; media ones become stand-ins that carry the
// digest the prompt-cache key would have taken, every other one is put back as it was.
import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { hasControl, isPlaceholder, liftLongStrings, settleLifted, spliceMedia, standIn, standInDigest } from '../../daemon/server/lifted-strings';
import { joinPieces, payloadOf, payloadPieces, withFields } from '../../daemon/api/payload';
import { holdsMedia } from '../../shared/chat-content';
import { promptText } from '../../daemon/scheduler/prompt-key';
import { mulberry32 } from '../../platform/prng';

const MIN = 1024;
const holdsMediaPart = (v: unknown): boolean => typeof v === 'object' && v !== null && 'url' in v; // a small threshold keeps the bodies small; the rule is the same at 64 KiB
const base64 = (n: number): string => randomBytes(Math.ceil((n * 3) / 4)).toString('base64').slice(0, n);

async function parsed(body: unknown): Promise<{ value: unknown; literals: ReadonlyMap<string, Buffer>; bytes: Buffer }> {
  const bytes = Buffer.from(JSON.stringify(body));
  const lifted = await liftLongStrings(bytes, MIN);
  if (!lifted) throw new Error('nothing lifted');
  return { value: JSON.parse(lifted.text), literals: lifted.literals, bytes };
}

describe('liftLongStrings', () => {
  it('replaces each long plain literal by a placeholder standing for its exact bytes', async () => {
    const a = `data:image/png;base64,${base64(5000)}`;
    const b = base64(3000);
    const { value, literals, bytes } = await parsed({ model: 'v', messages: [{ role: 'user', content: [{ type: 'text', text: 'say "hi"\\' }, { type: 'image_url', image_url: { url: a } }, { type: 'input_audio', input_audio: { data: b, format: 'wav' } }] }] });
    const parts = (value as { messages: { content: { image_url?: { url: string }; input_audio?: { data: string }; text?: string }[] }[] }).messages[0]!.content;
    expect(parts[0]!.text).toBe('say "hi"\\'); // escaped quotes and backslash before a literal do not shift it
    expect(isPlaceholder(parts[1]!.image_url!.url)).toBe(true);
    expect(isPlaceholder(parts[2]!.input_audio!.data)).toBe(true);
    expect([...literals.values()].map((x) => x.toString('latin1'))).toEqual([a, b]);
    // The literals are views of the body, not copies.
    expect(literals.get(parts[1]!.image_url!.url)!.buffer).toBe(bytes.buffer);
  });

  it('lifts a literal whose only escape is "\\/" (as PHP writes JSON) as its unescaped bytes', async () => {
    const photo = `data:image/png;base64,${base64(3000)}`;
    const raw = Buffer.from(JSON.stringify({ image_url: { url: photo }, text: 'a/b' }).replaceAll('/', '\\/'));
    const lifted = (await liftLongStrings(raw, MIN))!;
    expect([...lifted.literals.values()].map((x) => x.toString('latin1'))).toEqual([photo]);
    const value = JSON.parse(lifted.text) as { image_url: { url: string }; text: string };
    await settleLifted(value, lifted.literals, holdsMediaPart);
    // The same stand-in as the photo sent unescaped: the route reads its media type, the key its digest.
    expect(value.image_url.url.startsWith('data:image/png;base64,')).toBe(true);
    expect(standInDigest(value.image_url.url)).toBe(createHash('sha1').update(photo).digest('base64'));
    expect(value.text).toBe('a/b');
  });

  it('unescapes "\\/" across the slices a long literal is read in', async () => {
    const at = 2 ** 20 - 1; // a backslash as the last byte of a slice, its slash the first of the next
    const chars = [...base64(2 ** 20 + 4096).replaceAll('/', '+')];
    chars[at] = '/';
    chars[at + 70] = '/';
    const text = chars.join('');
    const raw = Buffer.from(`{"data":"${text.replaceAll('/', '\\/')}"}`);
    expect(raw.indexOf('\\/') - 9).toBe(at);
    const lifted = (await liftLongStrings(raw, MIN))!;
    expect([...lifted.literals.values()][0]!.equals(Buffer.from(text))).toBe(true);
  });

  it('leaves literals with any other escape, a control character or non-ASCII, or that are short', async () => {
    const escaped = `data:image/png;base64,${base64(2000)}`;
    const cases = [
      { url: `data:image/png;base64,${base64(2000)}`.replace('base64,', 'base64,\u0001') },
      { url: `${base64(1000)}é${base64(1000)}` },
      { url: `${escaped}\\` }, // a backslash, escaped
      { url: `${escaped}"/` }, // a quote, escaped
      { url: base64(MIN - 1) },
    ];
    for (const c of cases) expect(await liftLongStrings(Buffer.from(JSON.stringify(c)), MIN)).toBeUndefined();
    // Written raw, a control character makes the body invalid JSON; lifting must not hide that.
    const raw = Buffer.from(`{"url":"${base64(1000)}\n${base64(1000)}"}`);
    expect(await liftLongStrings(raw, MIN)).toBeUndefined();
    expect(() => JSON.parse(raw.toString())).toThrow();
  });

  it('checks and hashes a literal of several slices (yielding between them) as one', async () => {
    const big = `data:image/png;base64,${base64(2.5 * 2 ** 20)}`;
    const raw = Buffer.from(`{"image_url":{"url":"${big}"}}`);
    const lifted = (await liftLongStrings(raw, MIN))!;
    const value = JSON.parse(lifted.text) as { image_url: { url: string } };
    await settleLifted(value, lifted.literals, holdsMediaPart);
    expect(standInDigest(value.image_url.url)).toBe(createHash('sha1').update(big).digest('base64'));
    raw[raw.indexOf(',') + Math.floor(2.2 * 2 ** 20)] = 0x0a; // a raw newline in the third slice
    expect(await liftLongStrings(raw, MIN)).toBeUndefined();
  });

  it('gives up on quotes that do not pair (not JSON: the caller reports the error on the whole text)', async () => {
    expect(await liftLongStrings(Buffer.from(`{"url":"${base64(2000)}","x":"`), MIN)).toBeUndefined();
  });

  it('finds control characters at every offset and alignment', () => {
    const plain = Buffer.from(base64(64));
    expect(hasControl(plain)).toBe(false);
    for (let start = 0; start < 4; start++) {
      for (let at = start; at < 40; at++) {
        const b = Buffer.from(plain);
        b[at] = 0x1f;
        expect(hasControl(b.subarray(start, 40)), `start ${start}, at ${at}`).toBe(true);
      }
    }
    expect(hasControl(Buffer.from(' ~!'))).toBe(false);
  });
});

describe('settleLifted', () => {
  it('turns media placeholders into stand-ins with the digest, and puts every other one back', async () => {
    const image = `data:image/jpeg;base64,${base64(4000)}`;
    const text = 'word '.repeat(400);
    const frames = base64(2000);
    const body = {
      messages: [{ role: 'user', content: [{ type: 'text', text }, { type: 'image_url', image_url: { url: image } }] }],
      prompt: [{ prompt_string: 'x', multimodal_data: [frames] }],
      note: base64(1500),
    };
    const { value, literals } = await parsed(body);
    await settleLifted(value, literals, holdsMedia);
    const v = value as typeof body;
    expect(v.messages[0]!.content[0]).toEqual({ type: 'text', text }); // has spaces: lifted, and put back
    expect(v.note).toBe(body.note);
    const url = (v.messages[0]!.content[1] as { image_url: { url: string } }).image_url.url;
    expect(url.startsWith('data:image/jpeg;base64,')).toBe(true);
    expect(url.length).toBeLessThan(100);
    expect(standInDigest(url)).toBe(createHash('sha1').update(image).digest('base64'));
    expect(standInDigest(v.prompt[0]!.multimodal_data[0]!)).toBe(createHash('sha1').update(frames).digest('base64'));
    expect(standInDigest(text)).toBeUndefined();
  });

  it('keys a lifted photo as the prompt key keys the same photo read whole', async () => {
    const image = `data:image/png;base64,${base64(4000)}`;
    const body = { messages: [{ role: 'user', content: [{ type: 'text', text: 'what is it?' }, { type: 'image_url', image_url: { url: image } }] }] };
    const { value, literals } = await parsed(body);
    await settleLifted(value, literals, holdsMedia);
    expect(promptText(value as typeof body)).toBe(promptText(body));
    const other = { messages: [{ role: 'user', content: [{ type: 'text', text: 'what is it?' }, { type: 'image_url', image_url: { url: `data:image/png;base64,${base64(4000)}` } }] }] };
    expect(promptText(other)).not.toBe(promptText(body));
  });

  it('gives each media stand-in with its bytes, which spliceMedia puts back into JSON written from the value', async () => {
    const image = `data:image/png;base64,${base64(4000)}`;
    const msg = { jsonrpc: '2.0', method: 'prompt.submit', params: { messages: [{ role: 'user', content: [{ type: 'image_url', image_url: { url: image } }, { type: 'text', text: 'and again:' }, { type: 'image_url', image_url: { url: image } }] }] } };
    const { value, literals } = await parsed(msg);
    const media = await settleLifted(value, literals, holdsMedia);
    expect([...media.values()].map((b) => b.toString())).toEqual([image]); // one photo sent twice: one stand-in
    // A job writes its own JSON from the parsed params, with the slot appended: the photo's bytes go out as they came.
    const job = { stream: true, messages: (value as typeof msg).params.messages };
    const pieces = payloadPieces(withFields(payloadOf(spliceMedia(JSON.stringify(job), media)), '"id_slot":1'));
    expect(pieces.filter((x) => Buffer.isBuffer(x))).toHaveLength(2);
    expect(JSON.parse(joinPieces(pieces).toString())).toEqual({ stream: true, messages: msg.params.messages, id_slot: 1 });
    expect(spliceMedia('{"a":"b"}', media)).toEqual(['{"a":"b"}']);
  });

  it('names a stand-in by scheme and media type, or its first bytes when there is no comma', async () => {
    expect(await standIn(Buffer.from(`data:audio/wav;base64,${'A'.repeat(100)}`))).toMatch(/^data:audio\/wav;base64,\u0000sha1=[A-Za-z0-9+/=]{28} 122$/);
    expect((await standIn(Buffer.from('B'.repeat(300)))).startsWith(`${'B'.repeat(32)}\u0000sha1=`)).toBe(true);
  });
});

// Seeded random documents, written with random whitespace between tokens and `\/` for some slashes, so
// the quote scan meets keys, escapes, non-ASCII and long literals in every place JSON allows them.
describe('lifting, against JSON.parse of the same bytes', () => {
  const random = mulberry32(9);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
  const ws = (): string => pick(['', '', '', ' ', '\n  ', '\t', '\r\n']);
  const shortText = (): string => pick(['', 'a "quote"', 'back\\slash', 'tab\there', 'é ü 日本', '\u0001ctl', 'emoji 😀', 'url/with/slashes']);
  const longText = (): string =>
    pick([
      () => `data:image/png;base64,${base64(MIN + Math.floor(random() * 2000))}`, // plain: lifted
      () => base64(MIN + 10), // plain: lifted
      () => `${base64(MIN)}"${base64(20)}`, // an escaped quote inside: kept
      () => `${base64(MIN)}\\/${base64(20)}`, // an escaped backslash before a slash: kept
      () => `${'word '.repeat(MIN / 4)}\u0002`, // a control character: kept
      () => `${'ü'.repeat(MIN)}`, // non-ASCII: kept
    ])();
  const value = (depth: number): unknown => {
    const r = random();
    if (depth > 3 || r < 0.3) return pick([() => 0, () => -1.5e3, () => true, () => null, () => shortText(), () => longText(), () => longText()])();
    if (r < 0.55) return Array.from({ length: Math.floor(random() * 4) }, () => value(depth + 1));
    const o: Record<string, unknown> = {};
    for (let i = Math.floor(random() * 4); i > 0; i--) o[random() < 0.2 ? longText() : pick(['url', 'data', 'text', 'k', '', 'ключ'])] = value(depth + 1);
    if (random() < 0.3) o.url = longText(); // a media part, for the predicate below
    return o;
  };
  const write = (v: unknown): string => {
    const str = (s: string): string => (random() < 0.2 ? JSON.stringify(s).replaceAll('/', '\\/') : JSON.stringify(s));
    if (typeof v === 'string') return str(v);
    if (Array.isArray(v)) return `[${ws()}${v.map((x) => `${write(x)}${ws()}`).join(`,${ws()}`)}]`;
    if (v && typeof v === 'object') return `{${ws()}${Object.entries(v).map(([k, x]) => `${str(k)}${ws()}:${ws()}${write(x)}${ws()}`).join(`,${ws()}`)}}`;
    return JSON.stringify(v);
  };

  it('parses every document to what JSON.parse makes of it, and a job written from it sends the same JSON', async () => {
    let lifted = 0;
    let keysSeen = 0;
    for (let n = 0; n < 300; n++) {
      const doc = { messages: [value(0), value(0)] };
      const text = `${ws()}${write(doc)}${ws()}`;
      const bytes = Buffer.from(text);
      const expected = JSON.parse(text);
      const l = await liftLongStrings(bytes, MIN);
      if (!l) continue;
      lifted += l.literals.size;
      keysSeen += Object.keys(expected.messages.find((m: unknown) => m && typeof m === 'object') ?? {}).filter((k) => k.length >= MIN).length;
      const plainValue = JSON.parse(l.text);
      await settleLifted(plainValue, l.literals, () => false);
      expect(plainValue).toEqual(expected);
      const mediaValue = JSON.parse(l.text);
      const media = await settleLifted(mediaValue, l.literals, holdsMediaPart);
      expect(JSON.parse(joinPieces(spliceMedia(JSON.stringify(mediaValue), media)).toString())).toEqual(expected);
    }
    expect(lifted).toBeGreaterThan(100); // the documents did hold liftable literals
    expect(keysSeen).toBeGreaterThan(0); // and long keys, which are never lifted
  });
});
