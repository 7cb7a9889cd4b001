// Vision and audio models end to end on the real llama-server: a tiny model with a tiny Gemma 3
// projector (gguf/tiny-projector.ts, written by Slotwise) reads a PNG sent through the daemon's chat
// API, one with a tiny Qwen2-Audio projector hears a WAV, the memory plan counts each projector as
// llama-server allocates it, and the requests a model without a projector (or without the encoder the
// media needs) cannot serve, or a file that is not one, are refused with the fix.
import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { readGgufHeader } from '../../gguf/gguf';
import { ensureCachedTinyProjector, tinyAudioTokensPerWindow, tinyProjectorImageTokens } from '../../gguf/tiny-projector';
import { modelFacts } from '../../daemon/memory/model-facts';
import { planMemory } from '../../daemon/memory/plan';
import { projectorFacts } from '../../daemon/memory/projector';
import type { Snapshot } from '../../shared/protocol';
import { cli } from '../helpers/cli';
import { startTestDaemon, type TestDaemon } from '../helpers/daemon';
import { encodePng, pngDataUrl } from '../helpers/png';
import { encodeWav } from '../helpers/wav';
import { tinyModelPath } from '../helpers/tiny';

const MIB = 2 ** 20;

interface ChatAnswer {
  choices: { message: { content: string } }[];
  usage: { prompt_tokens: number };
}

/** One user message with `content`; `encode` rewrites the JSON text as another client would write it. */
function chat(d: TestDaemon, model: string, content: unknown, encode = (json: string): string => json): Promise<Response> {
  return d.fetch('/v1/chat/completions', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: encode(JSON.stringify({ model, messages: [{ role: 'user', content }], max_tokens: 4, temperature: 0 })),
  });
}

/** The plan's projector (weights from the header, the encoder buffer estimated) against clip.cpp's buffers: never under, at most 1.5×. */
async function expectProjectorPlanned(d: TestDaemon, model: string, mmproj: string, shape: { slots: number; ctxPerSlot: number }): Promise<void> {
  const facts = { ...modelFacts(await readGgufHeader(await tinyModelPath('tiny'))), projector: projectorFacts(await readGgufHeader(mmproj), mmproj) };
  const plan = planMemory(facts, { ...shape, gpuLayers: 'auto' }, { host: 64 * 2 ** 30, gpus: [] });
  const planned = plan.devices[0]!.projector! / MIB;
  const measured = projectorMiB(await d.status(), model)!;
  console.log(`${model} projector: planned ${planned.toFixed(3)} MiB (weights ${(facts.projector.weightBytes / MIB).toFixed(3)} + encoder ${(facts.projector.computeBytes / MIB).toFixed(3)}), llama-server ${measured.toFixed(2)} MiB`);
  expect(planned).toBeGreaterThanOrEqual(measured - 0.01); // never under (print precision 0.01 MiB)
  expect(planned).toBeLessThanOrEqual(measured * 1.5);
}

function projectorMiB(s: Snapshot, model: string): number | undefined {
  const buffers = s.models.find((m) => m.name === model)?.instances[0]?.offload?.buffers ?? {};
  const parts = Object.entries(buffers).filter(([k]) => k.startsWith('projector '));
  return parts.length ? parts.reduce((a, [, v]) => a + v, 0) : undefined;
}

describe('a model with a projector (mmproj), on the real llama-server', () => {
  it('reads an image sent through the daemon, plans the projector as llama-server allocates it, and refuses images for a model without one', async () => {
    const mmproj = await ensureCachedTinyProjector();
    const d = await startTestDaemon({ models: { vision: { slots: 2, ctxPerSlot: 1024, mmproj }, text: { slots: 1, ctxPerSlot: 512 } } });
    const s = await d.waitFor((snap) => projectorMiB(snap, 'vision') !== undefined && snap.models.every((m) => m.instances[0]?.state === 'ready'), 'both models ready, the projector in the load log', 120_000);

    // llama-server was given the projector: its command line, in the instance's log.
    const pid = s.models.find((m) => m.name === 'vision')!.instances[0]!.pid!;
    expect(readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')).toEqual(expect.arrayContaining(['--mmproj', mmproj]));

    await expectProjectorPlanned(d, 'vision', mmproj, { slots: 2, ctxPerSlot: 1024 });

    // The image reaches the model: the same message with it takes at least the projector's image tokens more.
    const text = { type: 'text', text: 'What is in this picture?' };
    const png = encodePng(40, 30, (x, y) => [x * 6, y * 8, 128]);
    const withImage = await chat(d, 'vision', [text, { type: 'image_url', image_url: { url: pngDataUrl(png) } }]);
    expect(withImage.status, await withImage.clone().text()).toBe(200);
    const without = await chat(d, 'vision', [text]);
    expect(without.status).toBe(200);
    const imageTokens = ((await withImage.json()) as ChatAnswer).usage.prompt_tokens - ((await without.json()) as ChatAnswer).usage.prompt_tokens;
    expect(imageTokens).toBeGreaterThanOrEqual(tinyProjectorImageTokens());

    // A photo-sized image (3.5 MB of base64, over the 1 MiB text default) passes the limit a projector raises.
    // The daemon reads it as a stand-in and forwards the client's bytes (server/lifted-strings.ts): a
    // byte out of place and llama-server would fail to decode the PNG; it reads the picture's tokens.
    const photo = encodePng(1024, 860, () => [...randomBytes(3)] as [number, number, number], 0);
    expect(photo.length).toBeGreaterThan(2 * MIB);
    const big = await chat(d, 'vision', [text, { type: 'image_url', image_url: { url: pngDataUrl(photo) } }]);
    expect(big.status, await big.clone().text()).toBe(200);
    const bigTokens = ((await big.json()) as ChatAnswer).usage.prompt_tokens;
    expect(bigTokens).toBe(((await (await chat(d, 'vision', [text, { type: 'image_url', image_url: { url: pngDataUrl(png) } }])).json()) as ChatAnswer).usage.prompt_tokens);
    // The same photo as PHP writes JSON, every "/" as "\/": lifted too, forwarded as sent, read the same.
    const escaped = await chat(d, 'vision', [text, { type: 'image_url', image_url: { url: pngDataUrl(photo) } }], (json) => json.replaceAll('/', '\\/'));
    expect(escaped.status, await escaped.clone().text()).toBe(200);
    expect(((await escaped.json()) as ChatAnswer).usage.prompt_tokens).toBe(bigTokens);

    // The photo through Anthropic's Messages API, a base64 image block: lifted out of the body too, its
    // bytes spliced into the chat request the daemon writes; read as the same picture, counted and run.
    const anthropic = (path: string, encode = (json: string): string => json) =>
      d.fetch(path, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: encode(JSON.stringify({ model: 'vision', max_tokens: 4, temperature: 0, messages: [{ role: 'user', content: [text, { type: 'image', source: { type: 'base64', media_type: 'image/png', data: photo.toString('base64') } }] }] })),
      });
    for (const encode of [undefined, (json: string) => json.replaceAll('/', '\\/')]) {
      const message = await anthropic('/v1/messages', encode);
      expect(message.status, await message.clone().text()).toBe(200);
      const usage = ((await message.json()) as { usage: { input_tokens: number; cache_read_input_tokens: number } }).usage;
      expect(usage.input_tokens + usage.cache_read_input_tokens).toBe(bigTokens);
      expect(await (await anthropic('/v1/messages/count_tokens', encode)).json()).toEqual({ input_tokens: bigTokens });
    }
    // And counted on the chat route, whose body goes on as the client sent it.
    const chatCount = await d.fetch('/v1/chat/completions/input_tokens', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ model: 'vision', messages: [{ role: 'user', content: [text, { type: 'image_url', image_url: { url: pngDataUrl(photo) } }] }] }),
    });
    expect(await chatCount.json()).toMatchObject({ input_tokens: bigTokens });

    // `slotwise prompt --image` sends the file in a chat message (a prompt job over the WebSocket).
    const file = join(d.dir, 'picture.png');
    writeFileSync(file, png);
    const job = await cli(['prompt', '--state-dir', d.stateDir, '--model', 'vision', '--image', file, '--json', '-n', '4', 'What is in this picture?']);
    expect(job.code, job.stderr).toBe(0);
    const textOnly = await cli(['prompt', '--state-dir', d.stateDir, '--model', 'vision', '--chat', '--json', '-n', '4', 'What is in this picture?']);
    const promptTokens = (out: string) => (JSON.parse(out) as { usage: { promptTokens: number } }).usage.promptTokens;
    expect(promptTokens(job.stdout) - promptTokens(textOnly.stdout)).toBeGreaterThanOrEqual(tinyProjectorImageTokens());
    // The photo as a job: lifted out of the WebSocket message, its bytes spliced back into the job's request.
    const photoFile = join(d.dir, 'photo.png');
    writeFileSync(photoFile, photo);
    const photoJob = await cli(['prompt', '--state-dir', d.stateDir, '--model', 'vision', '--image', photoFile, '--json', '-n', '4', 'What is in this picture?']);
    expect(photoJob.code, photoJob.stderr).toBe(0);
    expect(promptTokens(photoJob.stdout)).toBe(promptTokens(job.stdout));
    const noProjector = await cli(['prompt', '--state-dir', d.stateDir, '--model', 'text', '--image', file, 'What is in this picture?']);
    expect(noProjector.code).toBe(2); // a bad request, as docs/errors.md lists it
    expect(noProjector.stderr).toContain('model "text" has no projector to read it — set models.text.mmproj');

    // /v1/models says which model reads images, as llama-server's own list does.
    const list = (await (await d.fetch('/v1/models')).json()) as { data: { id: string; capabilities: string[]; slotwise: { modalities?: string[] } }[] };
    expect(list.data.map((m) => [m.id, m.capabilities, m.slotwise.modalities])).toEqual([
      ['vision', ['completion', 'multimodal'], ['vision']],
      ['text', ['completion'], undefined],
    ]);

    // An image by URL: llama-server would download it from any host; refused with the fix, nothing fetched.
    const byUrl = await chat(d, 'vision', [text, { type: 'image_url', image_url: { url: 'http://127.0.0.1:9/cat.png' } }]);
    expect(byUrl.status).toBe(400);
    expect(((await byUrl.json()) as { error: { message: string } }).error.message).toBe(
      'POST /v1/chat/completions: messages[0].content[1] is an image given by URL, which llama-server would download from the network — Slotwise does not let it; send the data inline (a data: URL with base64)',
    );
    const audioByUrl = await chat(d, 'vision', [{ type: 'input_audio', input_audio: { url: 'https://example.com/a.wav', format: 'wav' } }]);
    expect(audioByUrl.status).toBe(400);

    // Audio for a vision encoder: refused the same way.
    const heard = await chat(d, 'vision', [text, { type: 'input_audio', input_audio: { data: encodeWav(0.1).toString('base64'), format: 'wav' } }]);
    expect(heard.status).toBe(400);
    expect(((await heard.json()) as { error: { message: string } }).error.message).toContain('is audio, but the projector of model "vision" (models.vision.mmproj) reads images only');

    // A model without a projector: refused before it takes a slot, with the fix.
    const refused = await chat(d, 'text', [text, { type: 'image_url', image_url: { url: pngDataUrl(png) } }]);
    expect(refused.status).toBe(400);
    expect(((await refused.json()) as { error: { message: string } }).error.message).toBe(
      'POST /v1/chat/completions: messages[0].content[1] is an image, but model "text" has no projector to read it — set models.text.mmproj to the model\'s mmproj-*.gguf, or send text only',
    );
  });

  it('hears audio sent through the daemon, plans the audio projector as llama-server allocates it, and refuses media its encoder does not read', async () => {
    const mmproj = await ensureCachedTinyProjector({ modality: 'audio' });
    const d = await startTestDaemon({ models: { hear: { slots: 1, ctxPerSlot: 2048, mmproj } } });
    await d.waitFor((snap) => projectorMiB(snap, 'hear') !== undefined && snap.models[0]?.instances[0]?.state === 'ready', 'the model ready, the projector in the load log', 120_000);
    await expectProjectorPlanned(d, 'hear', mmproj, { slots: 1, ctxPerSlot: 2048 });

    // A second of a tone: Whisper's one 30 s window, at least the projector's 750 audio tokens more than the text alone.
    const text = { type: 'text', text: 'What do you hear?' };
    const audio = (seconds: number) => ({ type: 'input_audio', input_audio: { data: encodeWav(seconds).toString('base64'), format: 'wav' } });
    const without = await chat(d, 'hear', [text]);
    expect(without.status).toBe(200);
    const textTokens = ((await without.json()) as ChatAnswer).usage.prompt_tokens;
    const short = await chat(d, 'hear', [text, audio(1)]);
    expect(short.status, await short.clone().text()).toBe(200);
    const shortTokens = ((await short.json()) as ChatAnswer).usage.prompt_tokens;
    expect(shortTokens - textTokens).toBeGreaterThanOrEqual(tinyAudioTokensPerWindow());
    // 31 s (1.3 MB of base64, lifted out of the body before it is parsed): two windows.
    const long = await chat(d, 'hear', [text, audio(31)]);
    expect(long.status, await long.clone().text()).toBe(200);
    expect(((await long.json()) as ChatAnswer).usage.prompt_tokens - shortTokens).toBe(tinyAudioTokensPerWindow());

    // `slotwise prompt --audio` (a prompt job over the WebSocket): the short clip, then the long one, lifted
    // out of the message as a stand-in and its base64 spliced back into the job's request.
    const promptTokens = (out: string) => (JSON.parse(out) as { usage: { promptTokens: number } }).usage.promptTokens;
    const clip = (name: string, seconds: number): string => {
      const file = join(d.dir, name);
      writeFileSync(file, encodeWav(seconds));
      return file;
    };
    const asked = (file: string) => cli(['prompt', '--state-dir', d.stateDir, '--audio', file, '--json', '-n', '4', 'What do you hear?']);
    const textJob = await cli(['prompt', '--state-dir', d.stateDir, '--chat', '--json', '-n', '4', 'What do you hear?']);
    const shortJob = await asked(clip('short.wav', 1));
    expect(shortJob.code, shortJob.stderr).toBe(0);
    expect(promptTokens(shortJob.stdout) - promptTokens(textJob.stdout)).toBeGreaterThanOrEqual(tinyAudioTokensPerWindow());
    const longJob = await asked(clip('long.wav', 31));
    expect(longJob.code, longJob.stderr).toBe(0);
    expect(promptTokens(longJob.stdout) - promptTokens(shortJob.stdout)).toBe(tinyAudioTokensPerWindow());
    const notAudio = await asked(join(d.dir, 'config.json'));
    expect(notAudio.code).toBe(2);
    expect(notAudio.stderr).toContain(`--audio ${join(d.dir, 'config.json')}: not WAV, MP3 or FLAC audio`);

    const list = (await (await d.fetch('/v1/models')).json()) as { data: { id: string; capabilities: string[]; slotwise: { modalities?: string[] } }[] };
    expect(list.data.map((m) => [m.id, m.capabilities, m.slotwise.modalities])).toEqual([['hear', ['completion', 'multimodal'], ['audio']]]);

    // Data that is not base64, and base64 that is no audio: refused as the request's fault, not an upstream failure.
    const badAudio: [data: string, message: string][] = [
      ['!!!!', 'Invalid base64 value'],
      [Buffer.from('not a sound '.repeat(20)).toString('base64'), 'Failed to load image or audio file'],
    ];
    for (const [data, message] of badAudio) {
      const bad = await chat(d, 'hear', [text, { type: 'input_audio', input_audio: { data, format: 'wav' } }]);
      expect(bad.status).toBe(400);
      expect(((await bad.json()) as { error: { code: string; message: string } }).error).toMatchObject({ code: 'SW_ERR_UPSTREAM_REJECTED', message: expect.stringContaining(message) });
    }

    // An image for an audio encoder: llama-server would answer 500, "image input is not supported - hint: … provide the mmproj".
    const png = encodePng(8, 8, () => [0, 0, 0]);
    const image = await chat(d, 'hear', [text, { type: 'image_url', image_url: { url: pngDataUrl(png) } }]);
    expect(image.status).toBe(400);
    expect(((await image.json()) as { error: { message: string } }).error.message).toBe(
      'POST /v1/chat/completions: messages[0].content[1] is an image, but the projector of model "hear" (models.hear.mmproj) reads audio only — send it to a model whose projector reads images, or send text only',
    );
    writeFileSync(join(d.dir, 'dot.png'), png);
    const job = await cli(['prompt', '--state-dir', d.stateDir, '--model', 'hear', '--image', join(d.dir, 'dot.png'), 'What is it?']);
    expect(job.code).toBe(2);
    expect(job.stderr).toContain('reads audio only — send it to a model whose projector reads images');
  });

  it('a projector file that is not one fails the model with a line naming the key and the fix', async () => {
    const d = await startTestDaemon({ models: { vision: { slots: 1, ctxPerSlot: 512, mmproj: await tinyModelPath('tiny') } } });
    const s = await d.waitFor((snap) => snap.models[0]?.instances[0]?.state === 'failed', 'the model failed', 30_000);
    expect(s.models[0]!.instances[0]!.lastError).toMatch(/^models\.vision\.mmproj: tiny-d64-l2-s1\.gguf is a "llama" model, not a projector \(general\.architecture "clip"\) — give the mmproj-\*\.gguf file that comes with the model$/);
    expect(s.models[0]!.instances[0]!.pid).toBeUndefined(); // no llama-server was started
  });
});
