// The stand-in (test/fixtures/fake-llama-server.mjs) must place a task where llama-server does: in
// the slot its `id_slot` names, waiting for that slot while it is busy. When it ran every task in the
// first free slot instead, the daemon's leases and llama-server's /slots disagreed, and the GPU-pace
// bench's "slots busy (status)" read up to 3 foreign slots more than were in use.
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { instanceAuth, startTestDaemon, waitUntil, type TestDaemon } from '../helpers/daemon';

const STAND_IN = resolve(__dirname, '../fixtures/fake-llama-server.mjs');

interface Upstream {
  url: string;
  auth: Record<string, string>;
}

async function upstreamOf(d: TestDaemon): Promise<Upstream> {
  await d.waitFor((s) => s.models[0]!.instances[0]?.state === 'ready', 'ready');
  const inst = (await d.status()).models[0]!.instances[0]!;
  return { url: `http://127.0.0.1:${inst.port!}`, auth: instanceAuth(inst.pid!) };
}

async function busySlots(u: Upstream): Promise<number[]> {
  const slots = (await (await fetch(`${u.url}/slots`, { headers: u.auth })).json()) as { id: number; is_processing: boolean }[];
  return slots.filter((s) => s.is_processing).map((s) => s.id);
}

/** A long stream sent straight to the server; resolves with its text once it ended (or was aborted). */
function stream(u: Upstream, idSlot: number, signal: AbortSignal): { firstByte: Promise<void>; done: Promise<string> } {
  let first!: () => void;
  const firstByte = new Promise<void>((r) => (first = r));
  const done = (async () => {
    const body = JSON.stringify({ prompt: 'Once upon a time', max_tokens: 400, ignore_eos: true, stream: true, id_slot: idSlot });
    const res = await fetch(`${u.url}/v1/completions`, { method: 'POST', headers: u.auth, body, signal });
    let text = '';
    try {
      for await (const chunk of res.body!) {
        text += Buffer.from(chunk).toString();
        if (text.includes('data: {')) first();
      }
    } catch {
      // aborted
    }
    return text;
  })();
  return { firstByte, done };
}

async function checkIdSlot(u: Upstream): Promise<void> {
  const a = new AbortController();
  const first = stream(u, 2, a.signal);
  await first.firstByte;
  expect(await busySlots(u)).toEqual([2]);
  // 6 names slot 2 again (wrapped modulo 4 slots, as llama-server's get_slot_by_id does): it waits for it.
  const b = new AbortController();
  const second = stream(u, 6, b.signal);
  let started = false;
  void second.firstByte.then(() => (started = true));
  await new Promise((r) => setTimeout(r, 300));
  expect(started).toBe(false);
  expect(await busySlots(u)).toEqual([2]);
  a.abort(); // slot 2 frees: the waiting task starts there
  await second.firstByte;
  expect(await busySlots(u)).toEqual([2]);
  b.abort();
  await second.done;
  await waitUntil(async () => (await busySlots(u)).length === 0, 'every slot idle', 5000);
}

describe('id_slot: llama-server and the stand-in', () => {
  it('llama-server runs a task in the slot id_slot names and defers one naming a busy slot; the stand-in does the same', async () => {
    const real = await startTestDaemon({ models: { tiny: { slots: 4, ctxPerSlot: 1024, size: 'slow' } } });
    await checkIdSlot(await upstreamOf(real));
    const fake = await startTestDaemon({ config: { llamaServer: STAND_IN }, models: { m: { slots: 4, args: ['--fake-token-ms', '10'] } } });
    await checkIdSlot(await upstreamOf(fake));
  });
});
