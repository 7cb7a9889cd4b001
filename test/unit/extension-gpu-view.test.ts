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
