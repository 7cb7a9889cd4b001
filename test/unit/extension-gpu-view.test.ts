import { describe, expect, it } from 'vitest';
import { renderGpuView, sparkline } from '../../extension/core/gpu-render';
import { buildGpuViewModel, recordSnapshot } from '../../extension/core/gpu-view-model';
import { SampleHistory, sparkPoints } from '../../extension/core/sample-history';
import { gpuShellHtml, makeNonce } from '../../extension/core/webview-shell';
import { NOW, instance, model, snapshot } from './extension-fixtures';

describe('SampleHistory + sparkPoints', () => {
  it('keeps 60 s, coalesces close samples, and holds the last value until now', () => {
    const h = new SampleHistory({ windowMs: 60_000, minGapMs: 250 });
    h.push('k', NOW - 90_000, 10); // falls out of the window
    h.push('k', NOW - 30_000, 50);
    h.push('k', NOW - 29_900, 60); // within 250 ms: replaces 50
    h.push('k', NOW, 100);
    expect(h.get('k')).toEqual([
      { t: NOW - 90_000, v: 10 },
      { t: NOW - 30_000, v: 60 }, // the bucket keeps its start time, so steady pushes cannot drift it forever
      { t: NOW, v: 100 },
    ]);
    h.push('k', NOW + 31_000, 0);
    expect(h.get('k').map((s) => s.v)).toEqual([60, 100, 0]); // the first sample before the window is kept as the left edge
    const pts = sparkPoints(h.get('k'), NOW + 31_000, 60_000, 100);
    expect(pts[0]).toEqual({ x: 0, y: 0.6 });
    expect(pts.at(-1)).toEqual({ x: 1, y: 0 });
    expect(sparkPoints([], NOW, 60_000, 100)).toEqual([]);
  });

  it('retain() forgets instances that went away', () => {
    const h = new SampleHistory();
    h.push('a', NOW, 1);
    h.push('b', NOW, 1);
    h.retain(new Set(['a']));
    expect(h.get('b')).toEqual([]);
    expect(h.get('a')).toHaveLength(1);
  });
});

describe('GPU view model and HTML', () => {
  it('with GPUs: a card per GPU with utilization + VRAM gauges and VRAM per llama-server', () => {
    const h = new SampleHistory();
    const s = snapshot({
      gpus: [{ index: 0, name: 'NVIDIA H100 80GB HBM3', utilizationPct: 95, memoryUsedMiB: 40_000, memoryTotalMiB: 81_559, temperatureC: 61, powerW: 301.4 }],
      models: [model({ instances: [instance({ usage: { cpuPct: 99, rssBytes: 2 ** 30, vramBytes: 5 * 2 ** 30 } })] })],
    });
    recordSnapshot(h, s, NOW - 10_000);
    recordSnapshot(h, s, NOW);
    const vm = buildGpuViewModel('connected', s, h, NOW);
    expect(vm.mode).toBe('gpu');
    expect(vm.cards).toHaveLength(1);
    expect(vm.cards[0]).toMatchObject({ title: 'GPU 0 · NVIDIA H100 80GB HBM3', subtitle: '61 °C · 301 W' });
    expect(vm.cards[0]!.gauges.map((g) => [g.label, g.value, g.level])).toEqual([
      ['Utilization', '95%', 'high'],
      ['VRAM', '39.1 GiB / 79.6 GiB', 'ok'],
    ]);
    expect(vm.processes).toEqual([{ instance: 'coder#1', state: 'ready', pid: '4242', vram: '5.0 GiB', cpu: '99%', rss: '1.0 GiB' }]);
    const html = renderGpuView(vm);
    expect(html).toContain('<h3>GPU 0 · NVIDIA H100 80GB HBM3</h3>');
    expect(html).toContain('<caption>VRAM per llama-server</caption>');
    expect(html).toContain('<td>5.0 GiB</td>');
    expect(html).toContain('class="fill level-high" x="0" y="0" width="95.0"');
    expect(html).toMatch(/<polyline points="[\d., ]+"\/>/);
    expect(html).not.toMatch(/style=|on\w+=/); // the CSP allows no inline styles or handlers
  });

  it('without a GPU: CPU % and RSS per instance, plus host memory', () => {
    const s = snapshot({ models: [model({ instances: [instance({ usage: { cpuPct: 150, rssBytes: 512 * 2 ** 20 } })] })] });
    const h = new SampleHistory();
    recordSnapshot(h, s, NOW);
    const vm = buildGpuViewModel('connected', s, h, NOW);
    expect(vm.mode).toBe('cpu');
    expect(vm.message).toBe('No GPU found — showing CPU and memory per llama-server.');
    expect(vm.cards.map((c) => [c.title, c.gauges.map((g) => `${g.label} ${g.value}`)])).toEqual([
      ['coder#1', ['CPU 150% of 200%', 'RSS 512 MiB']],
      ['Host', ['Memory 8.0 GiB / 16.0 GiB']],
    ]);
    const html = renderGpuView(vm);
    expect(html).toContain('<caption>Per llama-server</caption>');
    expect(html).not.toContain('VRAM');
  });

  it('disconnected: says so and offers Start Daemon through a data-command button', () => {
    const html = renderGpuView(buildGpuViewModel('disconnected', undefined, new SampleHistory(), NOW));
    expect(html).toBe(
      '<p class="message">The Slotwise daemon is not running.</p><p><button type="button" data-command="startDaemon">Start Daemon</button> <button type="button" class="secondary" data-command="showLog">Show Log</button></p>',
    );
  });

  it('escapes names', () => {
    const s = snapshot({ models: [model({ instances: [instance({ id: '<img src=x onerror=alert(1)>#1', usage: { cpuPct: 1, rssBytes: 1 } })] })] });
    const html = renderGpuView(buildGpuViewModel('connected', s, new SampleHistory(), NOW));
    expect(html).not.toContain('<img');
    expect(html).toContain('&lt;img src=x onerror=alert(1)&gt;#1');
  });

  it('sparkline draws a baseline even with no data', () => {
    expect(sparkline([])).toBe('<svg class="spark" viewBox="0 0 120 24" preserveAspectRatio="none" aria-hidden="true"><line class="baseline" x1="0" y1="23.5" x2="120" y2="23.5"/></svg>');
    expect(sparkline([{ x: 0, y: 0 }, { x: 1, y: 1 }])).toContain('<polyline points="0.0,23.0 120.0,1.0"/>');
  });
});

describe('webview shell', () => {
  it('has a strict CSP: nothing by default, script and style only with the nonce', () => {
    const nonce = makeNonce((n) => new Uint8Array(n).fill(7));
    expect(nonce).toMatch(/^[A-Za-z0-9_-]{22}$/);
    const html = gpuShellHtml({ cspSource: 'https://file+.vscode-resource.vscode-cdn.net', nonce, scriptUri: 'https://file+.vscode-resource.vscode-cdn.net/ext/dist/webview/gpu.js' });
    const csp = /http-equiv="Content-Security-Policy" content="([^"]+)"/.exec(html)![1]!;
    expect(csp.split('; ')).toEqual([
      "default-src 'none'",
      'img-src https://file+.vscode-resource.vscode-cdn.net data:',
      `style-src 'nonce-${nonce}'`,
      `script-src 'nonce-${nonce}'`,
      'font-src https://file+.vscode-resource.vscode-cdn.net',
    ].map((d) => d.replace(/'/g, '&#39;')));
    expect(html).toContain(`<script nonce="${nonce}" src="https://file+.vscode-resource.vscode-cdn.net/ext/dist/webview/gpu.js"></script>`);
    expect(html.match(/<script/g)).toHaveLength(1);
    expect(html).toContain('var(--vscode-charts-blue)');
    expect(html).not.toMatch(/#[0-9a-f]{3,6}\b/i); // colors come from the theme only
  });
});

describe('memory bar: each device split by model, free, and what would still fit', () => {
  const GIB = 2 ** 30;
  const MIB = 2 ** 20;
  const dev = (device: string, planBytes: number, actualBytes?: number) => ({ device, label: device === 'host' ? 'host RAM' : `GPU ${device.slice(3)}`, planBytes, ...(actualBytes !== undefined ? { actualBytes } : {}) });
  const memory = (byDevice: ReturnType<typeof dev>[], fitsNow?: boolean) => ({
    planBytes: byDevice.reduce((a, d) => a + d.planBytes, 0),
    byDevice,
    ...(fitsNow !== undefined ? { fitsNow } : {}),
  });
  const down = (name: string, mem?: ReturnType<typeof memory>) => model({ name, replicas: 0, instances: [], load: { state: 'unloaded', reason: 'never-loaded' }, ...(mem ? { memory: mem } : {}) });
  const sum = (xs: { fraction: number }[]) => xs.reduce((a, x) => a + x.fraction, 0);

  function gpuSnapshot() {
    return snapshot({
      gpus: [
        { index: 0, name: 'RTX 4090', utilizationPct: 10, memoryUsedMiB: 4096, memoryTotalMiB: 16_384 },
        { index: 1, name: 'RTX 4090', utilizationPct: 0, memoryUsedMiB: 512, memoryTotalMiB: 16_384 },
      ],
      models: [
        model({ name: 'coder', memory: memory([dev('host', 0.2 * GIB, 0.25 * GIB), dev('gpu0', 1.1 * GIB, GIB), dev('gpu1', 0)]) }),
        model({ name: 'embed', replicas: 2, instances: [instance({ id: 'embed#1', state: 'loading' }), instance({ id: 'embed#2', state: 'starting' })], memory: memory([dev('host', 0), dev('gpu0', 0.5 * GIB), dev('gpu1', 0)]) }),
        down('small', memory([dev('host', 0.1 * GIB), dev('gpu0', 1.2 * GIB), dev('gpu1', 0)], true)),
        down('big', memory([dev('host', 0.1 * GIB), dev('gpu0', 9.1 * GIB), dev('gpu1', 0)], false)),
        down('auto'),
        model({ name: 'preparing', replicas: 0, instances: [], load: { state: 'loading' }, memory: memory([dev('gpu0', GIB)]) }),
      ],
    });
  }

  it('a bar per GPU: loaded models (actual, else plan × live replicas), other processes = used − models, free; shares add up to 1', () => {
    const vm = buildGpuViewModel('connected', gpuSnapshot(), new SampleHistory(), NOW);
    const [g0, g1] = vm.cards.map((c) => c.memory!);
    expect(g0!.device).toBe('gpu0');
    expect(g0!.segments.map((x) => [x.kind, x.label, x.size, x.colour, x.note])).toEqual([
      ['model', 'coder', '1.0 GiB', 0, undefined],
      ['model', 'embed ×2', '1.0 GiB', 1, 'loading, plan'],
      ['other', 'other processes', '2.0 GiB', undefined, undefined],
      ['free', 'free', '12.0 GiB', undefined, undefined],
    ]);
    expect(sum(g0!.segments)).toBeCloseTo(1, 10);
    expect(g0!.segments[0]!.fraction).toBeCloseTo(1 / 16, 10);
    expect(g0!.fitLine).toBe('would still fit: small (1.2 GiB) · would not fit: big (9.1 GiB) · not planned yet: auto');
    expect(g0!.summary).toBe('GPU 0 memory, 16.0 GiB: coder 1.0 GiB, embed ×2 1.0 GiB (loading, plan), other processes 2.0 GiB, free 12.0 GiB.');
    // GPU 1 holds none of the models: all its use is other processes; no plan has bytes there, and the unplanned model is named once.
    expect(g1!.segments.map((x) => [x.kind, x.size])).toEqual([
      ['other', '512 MiB'],
      ['free', '15.5 GiB'],
    ]);
    expect(g1!.fitLine).toBe('');
    expect(g1!.budgetLine).toBeUndefined();
  });

  it('with GPUs: a Host RAM card with its bar when models keep bytes in RAM (embeddings, layers off the GPU); none when they keep none', () => {
    const vm = buildGpuViewModel('connected', gpuSnapshot(), new SampleHistory(), NOW);
    expect(vm.mode).toBe('gpu');
    expect(vm.cards.map((c) => c.id)).toEqual(['gpu-0', 'gpu-1', 'host']);
    const bar = vm.cards.find((c) => c.id === 'host')!.memory!;
    expect(bar.title).toBe('Host RAM by model');
    // coder's 0.25 GiB reported host buffers; 8 GiB used in all; small and big plan 0.1 GiB each there.
    expect(bar.segments.map((x) => [x.kind, x.label, x.size])).toEqual([
      ['model', 'coder', '256 MiB'],
      ['other', 'other processes', '7.8 GiB'],
      ['free', 'free', '8.0 GiB'],
    ]);
    expect(bar.fitLine).toBe('would still fit: small (102 MiB) · would not fit: big (102 MiB)');
    // The unplanned model is named on the first bar (GPU 0) only.
    expect(bar.unknown).toEqual([]);
    const gpuOnly = gpuSnapshot();
    gpuOnly.models = gpuOnly.models.map((m) => (m.memory ? { ...m, memory: { ...m.memory, byDevice: m.memory.byDevice.filter((d) => d.device !== 'host') } } : m));
    expect(buildGpuViewModel('connected', gpuOnly, new SampleHistory(), NOW).cards.map((c) => c.id)).toEqual(['gpu-0', 'gpu-1']);
  });

  it('free never goes negative when the models hold more than the device reports used (plans, mmap)', () => {
    const s = snapshot({
      gpus: [{ index: 0, name: 'small', utilizationPct: 0, memoryUsedMiB: 100, memoryTotalMiB: 1000 }],
      models: [model({ name: 'a', memory: memory([dev('gpu0', 800 * MIB)]) }), model({ name: 'b', memory: memory([dev('gpu0', 600 * MIB)]) })],
    });
    const bar = buildGpuViewModel('connected', s, new SampleHistory(), NOW).cards[0]!.memory!;
    expect(bar.segments.map((x) => [x.kind, x.bytes])).toEqual([
      ['model', 800 * MIB],
      ['model', 600 * MIB],
      ['free', 0],
    ]);
    expect(bar.segments.every((x) => x.bytes >= 0 && x.fraction >= 0)).toBe(true);
    expect(sum(bar.segments)).toBeCloseTo(1, 10);
  });

  it('without a GPU: the host RAM bar on the Host card, with the fit lists and the budget', () => {
    const s = snapshot({
      memoryBudgetMiB: 512,
      models: [
        model({ name: 'coder', instances: [instance({ usage: { cpuPct: 5, rssBytes: 300 * MIB } })], memory: memory([dev('host', 260 * MIB, 250 * MIB)]) }),
        down('embed', memory([dev('host', 200 * MIB)], true)),
        down('big', memory([dev('host', 900 * MIB)], false)),
      ],
    });
    const vm = buildGpuViewModel('connected', s, new SampleHistory(), NOW);
    expect(vm.mode).toBe('cpu');
    const host = vm.cards.find((c) => c.id === 'host')!;
    expect(vm.cards.filter((c) => c.memory)).toEqual([host]);
    const bar = host.memory!;
    expect(bar).toMatchObject({ device: 'host', title: 'Host RAM by model', totalBytes: 16 * GIB });
    // used = total − available = 8 GiB: coder's 250 MiB, the rest other processes; 8 GiB free.
    expect(bar.segments.map((x) => [x.label, x.size])).toEqual([
      ['coder', '250 MiB'],
      ['other processes', '7.8 GiB'],
      ['free', '8.0 GiB'],
    ]);
    expect(bar.fitLine).toBe('would still fit: embed (200 MiB) · would not fit: big (900 MiB)');
    expect(bar.budgetLine).toBe('budget 512 MiB: models hold 250 MiB, 262 MiB left');
  });

  it("shows the loaded models' host prompt caches (at their limit) as reserved out of free, in the budget line, and in the fit of a down model", () => {
    const cache = 64 * MIB;
    const withCache = (m: ReturnType<typeof memory>) => ({ ...m, promptCacheBytes: cache, byDevice: m.byDevice.map((d) => ({ ...d, promptCacheBytes: cache })) });
    const s = snapshot({
      memoryBudgetMiB: 512,
      models: [
        model({ name: 'coder', instances: [instance({ usage: { cpuPct: 5, rssBytes: 300 * MIB } })], memory: withCache(memory([dev('host', 260 * MIB, 250 * MIB)])) }),
        down('embed', withCache(memory([dev('host', 200 * MIB)], true))),
      ],
    });
    const bar = buildGpuViewModel('connected', s, new SampleHistory(), NOW).cards.find((c) => c.id === 'host')!.memory!;
    // coder holds its 250 MiB of buffers; its cache's 64 MiB are reserved out of free (what it filled
    // so far is in "used"); the segments still add up to the whole bar.
    expect(bar.segments[0]).toMatchObject({ label: 'coder', bytes: 250 * MIB, size: '250 MiB' });
    const reserved = bar.segments.find((x) => x.kind === 'reserved')!;
    expect(reserved).toMatchObject({ label: 'prompt caches (reserved)', bytes: 64 * MIB });
    expect(bar.segments.map((x) => x.kind)).toEqual(['model', 'other', 'reserved', 'free']);
    expect(sum(bar.segments)).toBeCloseTo(1, 10);
    expect(bar.segments.reduce((a, x) => a + x.bytes, 0)).toBe(16 * GIB);
    expect(bar.fitLine).toBe('would still fit: embed (264 MiB)');
    expect(bar.budgetLine).toBe('budget 512 MiB: models hold 250 MiB and reserve 64.0 MiB of prompt cache, 198 MiB left');
  });

  it('with no host reading and no GPU there is no bar', () => {
    const s = snapshot({ host: undefined, models: [down('a', memory([dev('host', MIB)], true))] });
    expect(buildGpuViewModel('connected', s, new SampleHistory(), NOW).cards.some((c) => c.memory)).toBe(false);
  });

  it('renders the segments, a legend naming each with its size, and the fit line; names escaped; no inline styles', () => {
    const s = gpuSnapshot();
    s.models[0]!.name = '<img src=x onerror=alert(1)>';
    const html = renderGpuView(buildGpuViewModel('connected', s, new SampleHistory(), NOW));
    expect(html).not.toContain('<img');
    expect(html).not.toMatch(/style=|on\w+="/);
    const bar0 = html.slice(html.indexOf('<div class="membar" data-device="gpu0">'), html.indexOf('<div class="membar" data-device="gpu1">'));
    expect(bar0).toContain('<span class="value">12.0 GiB free of 16.0 GiB</span>');
    expect(bar0).toContain('<rect class="seg seg-c0" x="0.00" y="0" width="6.25" height="10"><title>&lt;img src=x onerror=alert(1)&gt; 1.0 GiB</title></rect>');
    expect(bar0).toContain('<rect class="seg seg-c1" x="6.25" y="0" width="6.25" height="10"><title>embed ×2 1.0 GiB</title></rect>');
    expect(bar0).toContain('<rect class="seg seg-other" x="12.50" y="0" width="12.50" height="10">');
    expect(bar0).toContain('<rect class="seg seg-free" x="25.00" y="0" width="75.00" height="10">');
    expect(bar0).toContain('<li class="model" data-model="&lt;img src=x onerror=alert(1)&gt;">');
    expect(bar0).toContain('<span class="name">embed ×2</span> <span class="size">1.0 GiB</span> <span class="note">(loading, plan)</span>');
    expect(bar0).toContain('<span class="name">other processes</span> <span class="size">2.0 GiB</span>');
    expect(bar0).toContain('role="img" aria-label="GPU 0 memory, 16.0 GiB: &lt;img src=x onerror=alert(1)&gt; 1.0 GiB, ');
    const fit = /<p class="fit">(.*?)<\/p>/.exec(bar0)![1]!;
    expect(fit.replace(/<[^>]+>/g, '')).toBe('would still fit: small (1.2 GiB) · would not fit: big (9.1 GiB) · not planned yet: auto');
    expect(fit).toContain('<span class="nofit">would not fit: big (9.1 GiB)</span>');
  });
});
