// /infill, /v1/embeddings and /v1/rerank through the daemon, against real llama-servers running the
// tiny model's variants (slotwise tiny-model --fim / --embedding / --rerank), and the 400s for a model
// of the wrong kind or without FIM tokens. One daemon with four models serves every case.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestDaemon, type TestDaemon } from '../helpers/daemon';
import { sseData } from '../../daemon/api/upstream';
import type { ErrorBody } from '../../shared/protocol';

let d: TestDaemon;

beforeAll(async () => {
  d = await startTestDaemon({
    stopInAfterAll: true,
    models: {
      plain: { slots: 1, ctxPerSlot: 512 },
      coder: { slots: 2, ctxPerSlot: 1024, variant: 'fim' },
      embed: { slots: 2, ctxPerSlot: 512, variant: 'embedding', kind: 'embedding' },
      rank: { slots: 2, ctxPerSlot: 512, variant: 'rerank', kind: 'rerank' },
    },
  });
  await d.waitFor((s) => s.models.every((m) => m.instances.length > 0 && m.instances.every((i) => i.state === 'ready')), 'all four models ready', 120_000);
}, 180_000);
afterAll(() => d?.stop());

const post = (path: string, body: unknown): Promise<Response> =>
  d.fetch(path, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify(body) });

async function expectError(res: Response, status: number, code: string, message: RegExp): Promise<void> {
  const body = (await res.json()) as { error: ErrorBody };
  expect({ status: res.status, code: body.error.code }).toEqual({ status, code });
  expect(body.error.message).toMatch(message);
}

const INFILL = { input_prefix: 'def add(a, b):\n    ', input_suffix: '\n\nprint(add(1, 2))\n', n_predict: 8, temperature: 0 };

describe('/infill', () => {
  it('fills in the middle with the --fim model, not streamed, and counts the request', async () => {
    const before = (await d.status()).models.find((m) => m.name === 'coder')!;
    const res = await post('/infill', { model: 'coder', ...INFILL });
    expect(res.status).toBe(200);
    expect(res.headers.get('x-slotwise-instance')).toMatch(/^coder/);
    const body = (await res.json()) as { content: string; tokens_predicted: number; stop: boolean };
    expect(typeof body.content).toBe('string');
    expect(body.content.length).toBeGreaterThan(0);
    expect(body.tokens_predicted).toBe(8);
    const after = (await d.status()).models.find((m) => m.name === 'coder')!;
    expect(after.outcomes!.completed).toBe((before.outcomes?.completed ?? 0) + 1);
  });

  it('streams it as SSE when asked', async () => {
    const res = await post('/infill', { model: 'coder', ...INFILL, stream: true });
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/text\/event-stream/);
    const events: { content: string; stop: boolean }[] = [];
    for await (const data of sseData(res.body!)) events.push(JSON.parse(data) as { content: string; stop: boolean });
    expect(events.length).toBeGreaterThan(1);
    expect(events.at(-1)!.stop).toBe(true);
    expect(events.map((e) => e.content).join('').length).toBeGreaterThan(0);
  });

  it('refuses a model without FIM tokens with SW_ERR_MODEL_CANNOT_INFILL naming it', async () => {
    await expectError(await post('/infill', { model: 'plain', ...INFILL }), 400, 'SW_ERR_MODEL_CANNOT_INFILL', /model "plain" cannot fill in the middle.*FIM/);
  });

  it('validates the body before queueing', async () => {
    await expectError(await post('/infill', { model: 'coder', input_prefix: 'x' }), 400, 'SW_ERR_BAD_REQUEST', /"input_suffix" must be a string/);
    await expectError(
      await post('/infill', { model: 'coder', ...INFILL, input_extra: [{ filename: 'a.py' }] }),
      400,
      'SW_ERR_BAD_REQUEST',
      /input_extra\[0\]\.text must be a string/,
    );
  });

  it('reports in status which models can infill, and their kind', async () => {
    const models = Object.fromEntries((await d.status()).models.map((m) => [m.name, { canInfill: m.info?.canInfill, kind: m.kind }]));
    expect(models).toEqual({
      plain: { canInfill: false, kind: 'completion' },
      coder: { canInfill: true, kind: 'completion' },
      embed: { canInfill: false, kind: 'embedding' },
      rank: { canInfill: false, kind: 'rerank' },
    });
  });
});

describe('/v1/embeddings and /v1/rerank', () => {
  it('returns one vector of the model dimension (64) per input', async () => {
    const res = await post('/v1/embeddings', { model: 'embed', input: ['hello world', 'fill in the middle'] });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { data: { index: number; embedding: number[] }[] };
    expect(body.data.map((x) => x.index).sort()).toEqual([0, 1]);
    for (const item of body.data) {
      expect(item.embedding).toHaveLength(64);
      expect(item.embedding.every(Number.isFinite)).toBe(true);
    }
    expect(body.data[0]!.embedding).not.toEqual(body.data[1]!.embedding);
  });

  it('scores every document against the query', async () => {
    const res = await post('/v1/rerank', { model: 'rank', query: 'what is a slot?', documents: ['a slot serves one request', 'bananas are yellow', 'queues'] });
    expect(res.status).toBe(200);
    const body = (await res.json()) as { results: { index: number; relevance_score: number }[] };
    expect(body.results.map((r) => r.index).sort()).toEqual([0, 1, 2]);
    expect(body.results.every((r) => Number.isFinite(r.relevance_score))).toBe(true);
  });

  it('refuses bad bodies', async () => {
    await expectError(await post('/v1/embeddings', { model: 'embed', input: [] }), 400, 'SW_ERR_BAD_REQUEST', /"input" must be/);
    await expectError(await post('/v1/rerank', { model: 'rank', query: 'q', documents: [] }), 400, 'SW_ERR_BAD_REQUEST', /"documents" must be a non-empty array/);
  });
});

describe('a route the model kind does not serve', () => {
  it.each([
    ['/v1/chat/completions', { model: 'embed', messages: [{ role: 'user', content: 'hi' }] }, /model "embed" is an embedding model/],
    ['/v1/completions', { model: 'rank', prompt: 'hi' }, /model "rank" is a rerank model/],
    ['/infill', { model: 'embed', ...INFILL }, /model "embed" is an embedding model/],
    ['/v1/embeddings', { model: 'coder', input: 'hi' }, /model "coder" is a completion model.*"kind": "embedding"/],
    ['/v1/rerank', { model: 'embed', query: 'q', documents: ['d'] }, /model "embed" is an embedding model.*"kind": "rerank"/],
  ])('%s on the wrong kind → 400 SW_ERR_WRONG_MODEL_KIND', async (path, body, message) => {
    await expectError(await post(path, body), 400, 'SW_ERR_WRONG_MODEL_KIND', message);
  });

  it('a WebSocket prompt job on an embedding model is refused the same way', async () => {
    const client = await d.client();
    await expect(client.call('prompt.submit', { model: 'embed', prompt: 'hi' })).rejects.toMatchObject({
      code: 'SW_ERR_WRONG_MODEL_KIND',
      message: expect.stringMatching(/model "embed" is an embedding model/),
    });
    client.close();
  });
});
