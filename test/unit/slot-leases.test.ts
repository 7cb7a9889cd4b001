// Slot leases and prompt-cache affinity: the per-instance slot table, the slot picker, prompt keys,
// the id_slot injection and the final-timings parse.
import { setFlagsFromString } from 'node:v8';
import { describe, expect, it } from 'vitest';
import { CHUNK_CHARS, commonChunks, promptKey, promptText } from '../../daemon/scheduler/prompt-key';
import { CANCEL_LAG_MS, FOREIGN_AFTER_POLLS, RELEASE_LAG_MS, SlotTable } from '../../daemon/scheduler/slot-table';
import { pickSlot, type SlotCandidate } from '../../daemon/scheduler/slot-pick';
import { payloadOf, payloadText } from '../../daemon/api/payload';
import { RESPONSES_DELTA, sseEventCounter, withSlot } from '../../daemon/api/upstream';
import { mulberry32 } from '../../platform/prng';
import { promptTimings, ResponseTail } from '../../daemon/api/prompt-timings';

const text = (n: number, seed = 'a'): string => Array.from({ length: n }, (_, i) => String.fromCharCode(97 + ((i * 7 + seed.charCodeAt(0)) % 26))).join('');
const lease = (requestId: string, since = 1000) => ({ requestId, source: 'http' as const, since });
// V8's own check that an object is not in dictionary mode (natives syntax, enabled for this file's functions).
setFlagsFromString('--allow-natives-syntax');
const hasFastProperties = new Function('o', 'return %HasFastProperties(o)') as (o: object) => boolean;
const busy = (...ids: number[]) => (n: number) => Array.from({ length: n }, (_, id) => ({ id, busy: ids.includes(id) }));

describe('prompt keys', () => {
  it('counts the full chunks two prompts share from the start', () => {
    const history = text(CHUNK_CHARS * 6);
    const a = promptKey(history + 'first question');
    const b = promptKey(history + 'a different follow-up that is long enough to fill more chunks than one' + text(200, 'z'));
    expect(a.length).toBe(6);
    expect(commonChunks(a, b)).toBe(6);
    expect(commonChunks(b, a)).toBe(6);
    expect(commonChunks(promptKey(text(CHUNK_CHARS * 4)), promptKey('x' + text(CHUNK_CHARS * 4)))).toBe(0);
    expect(commonChunks(promptKey('short'), promptKey('short'))).toBe(0); // under one chunk: nothing to match on
  });

  it('serializes chat messages in order, so a longer conversation extends the shorter one', () => {
    const turn1 = [{ role: 'system', content: text(300) }, { role: 'user', content: 'one' }];
    const turn2 = [...turn1, { role: 'assistant', content: 'reply' }, { role: 'user', content: 'two' }];
    expect(promptText({ messages: turn2 })!.startsWith(promptText({ messages: turn1 })!)).toBe(true);
    expect(promptText({ prompt: 'abc' })).toBe('abc');
    expect(promptText({ prompt: [1, 2, 3] })).toBeUndefined();
    // An image counts by a digest of its data: megabytes of base64 are neither in the text nor in its key.
    const image = (seed: string) => ({ type: 'image_url', image_url: { url: `data:image/png;base64,${seed.repeat(500_000)}` } });
    const ask = (img: unknown) => promptText({ messages: [{ role: 'user', content: [{ type: 'text', text: 'What is this?' }, img] }] })!;
    expect(ask(image('QUJD')).length).toBeLessThan(100);
    expect(ask(image('QUJD'))).toBe(ask(image('QUJD')));
    expect(ask(image('QUJD'))).not.toBe(ask(image('REVG')));
    expect(ask(image('QUJD')).startsWith('user\nWhat is this?')).toBe(true);
  });

  it("reads a Responses API request's instructions and input as the conversation it becomes, each turn extending the last", () => {
    const first = { instructions: text(200), input: [{ role: 'user', content: [{ type: 'input_text', text: 'one' }] }] };
    const call = { type: 'function_call', call_id: 'c1', name: 'f', arguments: '{"x":1}' };
    const next = { ...first, input: [...first.input, { role: 'assistant', content: [{ type: 'output_text', text: 'reply' }] }, call, { type: 'function_call_output', call_id: 'c1', output: '2' }] };
    expect(promptText(next)!.startsWith(promptText(first)!)).toBe(true);
    expect(promptText(first)).toBe(promptText({ messages: [{ role: 'system', content: first.instructions }, { role: 'user', content: 'one' }] }));
    // An item without a role counts by its whole JSON: two different calls are two different prompts.
    expect(promptText({ ...next, input: [...first.input, { ...call, arguments: '{"x":2}' }] })).not.toBe(promptText({ ...next, input: [...first.input, call] }));
    expect(promptText({ input: 'just text' })).toBe(promptText({ messages: [{ role: 'user', content: 'just text' }] }));
  });
});

describe('SlotTable', () => {
  it('leases exactly: a slot is busy from take() to release(), whatever /slots says', () => {
    const t = new SlotTable(4);
    t.take(1, lease('r1'), undefined);
    t.take(2, lease('r2'), undefined);
    expect(t.leased()).toBe(2);
    expect(t.free('m#1').map((f) => f.slot)).toEqual([0, 3]);
    t.observe(busy()(4), 2000); // a poll that aliased: every slot read idle
    const rows = t.rows(busy()(4));
    expect(rows.filter((r) => r.busy).map((r) => [r.id, r.requestId])).toEqual([[1, 'r1'], [2, 'r2']]);
    expect(() => t.take(1, lease('r3'), undefined)).toThrow(/not free/);
    t.release(1, 3000);
    t.release(1, 3000); // twice is harmless
    expect(t.leased()).toBe(1);
    expect(t.rows([]).filter((r) => r.busy).map((r) => r.requestId)).toEqual(['r2']);
  });

  it("builds each row from the lease and the poll: task fields only where a request of the daemon's or a foreign one holds the slot", () => {
    const t = new SlotTable(4);
    const task = (id: number, taskId: number) => ({ id, busy: true, nCtx: 512, taskId, nDecoded: 7, nPromptTokens: 30 });
    const polled = [task(0, 11), task(1, 12), task(2, 13), { id: 3, busy: false, nCtx: 512 }];
    t.take(0, { ...lease('r0'), tokens: 5 }, undefined);
    t.take(2, lease('r2'), undefined);
    for (let i = 0; i < FOREIGN_AFTER_POLLS; i++) t.observe(polled, 1500 + 250 * i); // slot 1: foreign
    t.release(2, 2500); // the last poll still shows r2's task in slot 2: a past request's, not shown
    const rows = t.rows(polled);
    expect(rows).toEqual([
      { id: 0, busy: true, nCtx: 512, requestId: 'r0', source: 'http', since: 1000, tokens: 5, taskId: 11, nDecoded: 7, nPromptTokens: 30 },
      { id: 1, busy: true, nCtx: 512, foreign: true, taskId: 12, nDecoded: 7, nPromptTokens: 30 },
      { id: 2, busy: false, nCtx: 512 },
      { id: 3, busy: false, nCtx: 512 },
    ]);
    // Every status read builds these for every slot: a row pruned with `delete` becomes a
    // dictionary-mode object, which at 1,000 slots took the daemon's peak RSS from ~155 to ~255 MB.
    expect(rows.every((r) => hasFastProperties(r))).toBe(true);
    // A slot past the last poll (the table grew first) still gets a row.
    expect(t.rows(polled.slice(0, 2))[3]).toEqual({ id: 3, busy: false });
  });

  it('avoids a slot busy without a lease at once, and calls it foreign after more than one poll', () => {
    const t = new SlotTable(2);
    t.observe(busy(0)(2), 1000);
    expect(t.free('m#1').map((f) => f.slot)).toEqual([1]);
    expect(t.unavailable()).toBe(1);
    expect(t.isForeign(0)).toBe(false);
    expect(t.rows(busy(0)(2))[0]).toMatchObject({ busy: false });
    for (let i = 1; i < FOREIGN_AFTER_POLLS; i++) t.observe(busy(0)(2), 1000 + 250 * i);
    expect(t.isForeign(0)).toBe(true);
    expect(t.rows(busy(0)(2))[0]).toMatchObject({ id: 0, busy: true, foreign: true });
    t.observe(busy()(2), 2000);
    expect(t.isForeign(0)).toBe(false);
    expect(t.free('m#1').map((f) => f.slot)).toEqual([0, 1]);
  });

  it('takes a busy reading just after its own lease ended as lag, not foreign use', () => {
    const t = new SlotTable(1);
    t.take(0, lease('r1'), undefined);
    t.release(0, 5000);
    t.observe(busy(0)(1), 5000 + RELEASE_LAG_MS - 1);
    expect(t.free('m#1').map((f) => f.slot)).toEqual([0]);
    t.observe(busy(0)(1), 5000 + RELEASE_LAG_MS + 1);
    expect(t.free('m#1')).toEqual([]);
  });

  it('keeps a slot still cancelling our aborted request out of use, without calling it foreign', () => {
    const t = new SlotTable(2);
    t.take(0, lease('r1'), undefined);
    t.release(0, 5000); // the client aborted; llama-server takes up to a second to notice
    t.observe(busy(0)(2), 5000 + RELEASE_LAG_MS + 50);
    t.observe(busy(0)(2), 5000 + RELEASE_LAG_MS + 300);
    expect(t.free('m#1').map((f) => f.slot)).toEqual([1]);
    expect(t.isForeign(0)).toBe(false);
    expect(t.rows(busy(0)(2))[0]).toMatchObject({ busy: false });
    t.observe(busy()(2), 5900);
    expect(t.free('m#1').map((f) => f.slot)).toEqual([0, 1]);
    // Busy long after our lease ended: someone else's.
    t.observe(busy(0)(2), 5000 + CANCEL_LAG_MS);
    expect(t.free('m#1').map((f) => f.slot)).toEqual([1]);
  });

  it('after a complete answer the slot is free in llama-server too: a busy reading past the lag is foreign use', () => {
    const t = new SlotTable(2);
    t.take(0, lease('r1'), undefined);
    t.release(0, 5000, true); // llama-server sent the final response: it released the slot with it
    t.observe(busy(0)(2), 5000 + RELEASE_LAG_MS + 50);
    expect(t.free('m#1').map((f) => f.slot)).toEqual([1]); // avoided from the first reading
    for (let i = 1; i < FOREIGN_AFTER_POLLS; i++) t.observe(busy(0)(2), 5000 + RELEASE_LAG_MS + 50 + 250 * i);
    expect(5000 + RELEASE_LAG_MS + 50 + 250 * FOREIGN_AFTER_POLLS).toBeLessThan(5000 + CANCEL_LAG_MS);
    expect(t.isForeign(0)).toBe(true); // shown after FOREIGN_AFTER_POLLS, within CANCEL_LAG_MS of the end
    expect(t.rows(busy(0)(2))[0]).toMatchObject({ busy: true, foreign: true });
  });

  it('forgets the cached prompt when a foreign client used the slot or the process restarted', () => {
    const t = new SlotTable(2);
    const key = promptKey(text(640));
    t.take(0, lease('r1'), key);
    t.take(1, lease('r2'), key);
    t.release(0, 1000);
    t.release(1, 1000);
    expect(t.free('m#1').every((f) => f.key === key)).toBe(true);
    t.observe(busy(0)(2), 5000);
    t.observe(busy()(2), 5250);
    expect(t.free('m#1').map((f) => f.key)).toEqual([undefined, key]);
    t.forget();
    expect(t.free('m#1').map((f) => f.key)).toEqual([undefined, undefined]);
  });
});

describe('pickSlot', () => {
  const history = promptKey(text(CHUNK_CHARS * 8));
  const other = promptKey(text(CHUNK_CHARS * 8, 'q'));
  const c = (instanceId: string, slot: number, key?: Uint32Array, lastUsedAt = 0): SlotCandidate => ({ instanceId, slot, key, lastUsedAt });

  it('sends a prompt to the slot, on any replica, that holds its longest prefix', () => {
    const candidates = [c('m#1', 0, other, 5), c('m#1', 1), c('m#2', 0, history, 3), c('m#2', 1)];
    const followUp = promptKey(text(CHUNK_CHARS * 8) + text(CHUNK_CHARS * 2, 'k'));
    expect(pickSlot({ candidates, instanceId: 'm#1', key: followUp, affinity: true })).toEqual({ instanceId: 'm#2', slot: 0, sharedChunks: 8 });
  });

  it('without a shared prefix or with affinity off: the policy instance, an empty slot first, then the least recently used', () => {
    const candidates = [c('m#1', 0, other, 5), c('m#1', 1, other, 2), c('m#2', 0, history, 3), c('m#2', 1)];
    expect(pickSlot({ candidates, instanceId: 'm#2', key: history, affinity: false })).toEqual({ instanceId: 'm#2', slot: 1, sharedChunks: 0 });
    expect(pickSlot({ candidates, instanceId: 'm#1', key: promptKey(text(640, 'x')), affinity: true })).toEqual({ instanceId: 'm#1', slot: 1, sharedChunks: 0 });
    expect(pickSlot({ candidates: [], instanceId: 'm#1', affinity: true })).toBeUndefined();
  });

  it('does not match on an instance that just failed the request', () => {
    const candidates = [c('m#1', 0, history), c('m#2', 0)];
    expect(pickSlot({ candidates, instanceId: 'm#2', key: history, affinity: true, avoid: 'm#1' })).toMatchObject({ instanceId: 'm#2', slot: 0 });
  });
});

describe('withSlot', () => {
  it("appends id_slot last, so it wins over the client's", () => {
    const slotted = (body: string, slot: number | undefined): string => payloadText(withSlot(payloadOf(body), slot));
    expect(JSON.parse(slotted(JSON.stringify({ prompt: 'x', id_slot: 3 }), 1))).toEqual({ prompt: 'x', id_slot: 1 });
    expect(slotted(JSON.stringify({ prompt: 'x', id_slot: 3 }), 1)).toMatch(/"id_slot":1}$/);
    expect(slotted('{}', 0)).toBe('{"id_slot":0}');
    expect(slotted('{"a":1}', undefined)).toBe('{"a":1}');
  });
});

describe('prompt timings from the response tail', () => {
  it("reads cache_n, prompt_n and prompt_ms from the final chunk's timings", () => {
    const tail = new ResponseTail();
    const events = Array.from({ length: 500 }, (_, i) => `data: {"choices":[{"text":"tok${i}"}]}\n\n`);
    events.push('data: {"choices":[{"text":"","finish_reason":"length"}],"timings":{"cache_n":412,"prompt_n":37,"prompt_ms":3.1,"predicted_n":16}}\n\n', 'data: [DONE]\n\n');
    const bytes = Buffer.from(events.join(''));
    for (let i = 0; i < bytes.length; i += 97) tail.push(bytes.subarray(i, i + 97)); // split mid-event
    expect(tail.text().length).toBeLessThan(4096 + 97);
    expect(promptTimings(tail.text())).toEqual({ cached: 412, processed: 37, promptMs: 3.1 });
    expect(promptTimings('"timings":{"cache_n":1,"prompt_n":2}')).toEqual({ cached: 1, processed: 2 }); // prompt_ms is optional
    expect(promptTimings('{"choices":[]}')).toBeUndefined();
  });

  it('copies what it keeps: a chunk (a slice of a large socket buffer) is never retained', () => {
    const socketBuffer = Buffer.alloc(65_536, 'x');
    const chunk = socketBuffer.subarray(100, 110);
    const tail = new ResponseTail();
    tail.push(Buffer.from('data: '));
    tail.push(chunk);
    socketBuffer.fill('y'); // the socket reuses its buffer for the next read
    expect(tail.text()).toBe(`data: ${'x'.repeat(10)}`);
    const big = Buffer.from(`${'z'.repeat(10_000)}"timings":{"cache_n":1,"prompt_n":2}`);
    tail.push(big);
    expect(tail.text()).toBe(big.subarray(big.length - 4096).toString());
    expect(promptTimings(tail.text())).toEqual({ cached: 1, processed: 2 });
  });
});

/** What a counter made by `make` totals over `bytes` fed in random pieces (1 to `maxPiece` bytes). */
function countInPieces(make: () => (chunk: Uint8Array) => number, bytes: Buffer, random: () => number, maxPiece: number): number {
  const count = make();
  let total = 0;
  for (let at = 0; at < bytes.length; ) {
    const end = Math.min(bytes.length, at + 1 + Math.floor(random() * maxPiece));
    total += count(bytes.subarray(at, end));
    at = end;
  }
  return total;
}

describe('sseEventCounter', () => {
  const events = ['data: {"a":1}\n\n', 'data: {"content":"data: x\\ndata: y"}\n\n', ': ping\n\n', 'data: {"b":"é"}\r\n\r\n', 'data: [DONE]\n\n'];
  const stream = Buffer.from(events.join(''));

  it('counts data events at line starts without decoding, not "data:" a reply writes', () => {
    const count = sseEventCounter();
    expect(count(stream)).toBe(4); // the second event's text says data: twice (its newline escaped), the ping is a comment
    expect(sseEventCounter()(new Uint8Array(Buffer.from('data: [DONE]\n\n')))).toBe(1);
  });

  it('counts each event once however the stream is split into chunks', () => {
    const random = mulberry32(3);
    for (let run = 0; run < 500; run++) expect(countInPieces(() => sseEventCounter(), stream, random, run % 2 ? 4 : 40)).toBe(4);
  });

  it("counts only the Responses API's token events (….delta) with RESPONSES_DELTA, however split", () => {
    const responses = Buffer.from(
      [
        'event: response.created\ndata: {"type":"response.created"}\n\n',
        'event: response.output_text.delta\ndata: {"delta":"event: x.delta\\ndata: y"}\n\n',
        'event: response.reasoning_text.delta\ndata: {"delta":"hm"}\n\n',
        'event: response.function_call_arguments.delta\ndata: {"delta":"{}"}\n\n',
        'event: response.output_text.done\ndata: {"text":"x"}\n\n',
        'event: response.completed\ndata: {"type":"response.completed"}\n\n',
      ].join(''),
    );
    expect(sseEventCounter(RESPONSES_DELTA)(responses)).toBe(3); // the delta's own text, its newline escaped, does not count
    const random = mulberry32(5);
    for (let run = 0; run < 300; run++) expect(countInPieces(() => sseEventCounter(RESPONSES_DELTA), responses, random, run % 2 ? 5 : 50)).toBe(3);
  });
});
