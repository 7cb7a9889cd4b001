// The request body as the daemon reads it (daemon/server/http.ts readJsonBody) over a real HTTP
// connection, and as it forwards it (daemon/api/payload.ts): a photo stays the client's bytes, a
// stand-in in the parsed value; the daemon's fields are appended after them.
import { createHash, randomBytes } from 'node:crypto';
import { createServer, request, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { readJsonBody, type JsonBody } from '../../daemon/server/http';
import { standInDigest } from '../../daemon/server/lifted-strings';
import { joinPieces, payloadOf, payloadPieces, payloadText, piecesBytes, withFields } from '../../daemon/api/payload';
import { holdsMedia } from '../../shared/chat-content';

let close: (() => void) | undefined;
afterEach(() => close?.());

/** Sends `body` (with a Content-Length, or chunked) and returns what readJsonBody made of it. */
async function read(body: Buffer, opts: { chunked?: boolean; media?: boolean } = {}): Promise<JsonBody> {
  let result: Promise<JsonBody> | undefined;
  const server = createServer((req: IncomingMessage, res) => {
    result = readJsonBody(req, 64 * 2 ** 20, 10_000, opts.media === false ? undefined : holdsMedia);
    void result.then(
      () => res.end('ok'),
      () => res.end('no'),
    );
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  close = () => server.close();
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve, reject) => {
    const req = request({ port, method: 'POST', path: '/', headers: opts.chunked ? { 'transfer-encoding': 'chunked' } : { 'content-length': body.length } }, (res) => {
      res.resume();
      res.on('end', resolve);
    });
    req.on('error', reject);
    // In pieces, as a large upload arrives.
    for (let at = 0; at < body.length; at += 100_000) req.write(body.subarray(at, at + 100_000));
    req.end();
  });
  return result!;
}

const photo = `data:image/png;base64,${randomBytes(300_000).toString('base64')}`;
const chatBody = (url: string, text = 'what is it?'): Buffer =>
  Buffer.from(JSON.stringify({ model: 'v', messages: [{ role: 'user', content: [{ type: 'text', text }, { type: 'image_url', image_url: { url } }] }] }));

describe('readJsonBody', () => {
  it.each([false, true])('reads a photo as a stand-in and keeps the bytes as they came (chunked: %s)', async (chunked) => {
    const body = chatBody(photo);
    const { value, bytes } = await read(body, { chunked });
    expect(bytes.equals(body)).toBe(true);
    const url = (value as { messages: { content: { image_url?: { url: string } }[] }[] }).messages[0]!.content[1]!.image_url!.url;
    expect(url.startsWith('data:image/png;base64,')).toBe(true);
    expect(standInDigest(url)).toBe(createHash('sha1').update(photo).digest('base64'));
  });

  it('reads a long text literal as it is, and everything whole where the route forwards no bytes', async () => {
    const text = 'plain words '.repeat(10_000);
    const withText = await read(chatBody(photo, text));
    expect((withText.value as { messages: { content: { text?: string }[] }[] }).messages[0]!.content[0]!.text).toBe(text);
    const whole = await read(chatBody(photo), { media: false });
    expect((whole.value as { messages: { content: { image_url?: { url: string } }[] }[] }).messages[0]!.content[1]!.image_url!.url).toBe(photo);
  });

  it('drops a byte order mark, and names a JSON error at its offset in the body as sent', async () => {
    const body = chatBody(photo);
    const { bytes } = await read(Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), body]));
    expect(bytes.equals(body)).toBe(true);
    const broken = Buffer.concat([body.subarray(0, -1), Buffer.from(',}')]);
    let expected = '';
    try {
      JSON.parse(broken.toString());
    } catch (err) {
      expected = (err as Error).message;
    }
    await expect(read(broken)).rejects.toMatchObject({ code: 'SW_ERR_BAD_REQUEST', message: `request body is not valid JSON: ${expected}` });
    await expect(read(Buffer.from([0x7b, 0xff, 0x7d]))).rejects.toMatchObject({ message: 'request body is not UTF-8 (byte 0xff at offset 1) — send JSON in UTF-8' });
    await expect(read(Buffer.from(' \n'))).rejects.toMatchObject({ message: 'request body is empty: send a JSON object' });
  });
});

describe('payload', () => {
  it('appends the daemon\'s fields after the client\'s bytes without copying them', () => {
    const body = Buffer.from('{"prompt":"x","id_slot":3}  \n');
    const pieces = payloadPieces(withFields(withFields(payloadOf(body), '"id_slot":1'), '"stream":true'));
    expect(pieces[0]).toBeInstanceOf(Buffer);
    expect((pieces[0] as Buffer).buffer).toBe(body.buffer);
    expect(JSON.parse(joinPieces(pieces).toString())).toEqual({ prompt: 'x', id_slot: 1, stream: true });
    expect(piecesBytes(pieces)).toBe(Buffer.byteLength(joinPieces(pieces)));
  });

  it('reads bytes and text alike: an empty object, a non-object left as it is', () => {
    for (const base of ['{}', Buffer.from('{ }')]) expect(JSON.parse(payloadText(withFields(payloadOf(base), '"id_slot":0')))).toEqual({ id_slot: 0 });
    expect(payloadText(withFields(payloadOf(Buffer.from('[1]')), '"id_slot":0'))).toBe('[1]');
    expect(payloadText(withFields(payloadOf('{"é":1}'), '"a":2'))).toBe('{"é":1,"a":2}');
  });
});
