import { describe, expect, it } from 'vitest';
import type { ConnectionState } from '../../extension/core/connection';
import { jobsBarText, statusBarView, statusTooltip } from '../../extension/core/status-text';
import { instance, model, snapshot } from './extension-fixtures';

const connected: ConnectionState = { kind: 'connected', url: 'http://127.0.0.1:7373', version: '0.1.0' };

describe('statusBarView', () => {
  it.each<{ name: string; state: ConnectionState; snap?: ReturnType<typeof snapshot>; text: string; background: string }>([
    { name: 'idle model', state: connected, snap: snapshot(), text: '$(pulse) 0/4', background: 'none' },
    {
      name: 'busy over two models',
      state: connected,
      snap: snapshot({ models: [model({ instances: [instance({}, [0, 2])] }), model({ name: 'chat', instances: [instance({ id: 'chat#1' }, [1])] })] }),
      text: '$(pulse) 3/8',
      background: 'none',
    },
    {
      name: 'queued → warning',
      state: connected,
      snap: snapshot({ models: [model({ queue: { waiting: 2, oldestWaitMs: 1500 }, instances: [instance({}, [0, 1, 2, 3])] })] }),
      text: '$(pulse) 4/4 · 2 queued',
      background: 'warning',
    },
    {
      name: 'a model loading → spinner',
      state: connected,
      snap: snapshot({ models: [model(), model({ name: 'big', instances: [instance({ id: 'big#1', state: 'loading', slots: [] })] })] }),
      text: '$(loading~spin) 0/4',
      background: 'none',
    },
    { name: 'disconnected → error', state: { kind: 'disconnected', code: 'SW_ERR_DAEMON_UNREACHABLE', message: 'x', attempt: 0, retryInMs: 250 }, text: '$(debug-disconnect) Slotwise: disconnected', background: 'error' },
    { name: 'connecting', state: { kind: 'connecting', attempt: 0 }, text: '$(loading~spin) Slotwise: connecting', background: 'none' },
    { name: 'starting', state: { kind: 'connecting', attempt: 0, starting: true }, text: '$(loading~spin) Slotwise: starting daemon', background: 'none' },
  ])('$name', ({ state, snap, text, background }) => {
    const v = statusBarView(state, snap);
    expect(v.text).toBe(text);
    expect(v.background).toBe(background);
  });
});

describe('statusTooltip', () => {
  it('has one table per model with slots, queue, tokens/s and CPU on a GPU-less host', () => {
    const md = statusTooltip(
      connected,
      snapshot({
        models: [
          model({ instances: [instance({ tokensPerSecond: 182.44, usage: { cpuPct: 150, rssBytes: 300 * 2 ** 20 } }, [0])] }),
          model({ name: 'chat', replicas: 0, instances: [] }),
        ],
      }),
    );
    expect(md.split('\n')).toEqual([
      '**Slotwise** 0.1.0 — **ok**: 1 of 4 slots busy',
      '',
      '**coder** · ready',
      '',
      '| Slots | Queue | Tokens/s | CPU · RSS |',
      '|:--|:--|:--|:--|',
      '| 1/4 busy | 0 | 182.4 | 150% · 300 MiB |',
      '',
      '**chat** · down',
      '',
      '| Slots | Queue | Tokens/s | CPU · RSS |',
      '|:--|:--|:--|:--|',
      '| — | 0 | — | — |',
      '',
      '_Click to open the Slotwise view_',
    ]);
  });

  it('shows GPU util and the model VRAM when GPUs are present', () => {
    const md = statusTooltip(
      connected,
      snapshot({
        models: [model({ queue: { waiting: 3, oldestWaitMs: 2100 }, instances: [instance({ usage: { cpuPct: 10, rssBytes: 1, vramBytes: 3 * 2 ** 30 } })] })],
        gpus: [{ index: 0, name: 'H100', utilizationPct: 87, memoryUsedMiB: 4000, memoryTotalMiB: 80000 }],
      }),
    );
    expect(md).toContain('| Slots | Queue | Tokens/s | GPU util · VRAM |');
    expect(md).toContain('| 0/4 busy | 3 (oldest 2.1 s) | — | 87% · 3.0 GiB |');
  });

  it('lists queued requests by class when background work waits', () => {
    const md = statusTooltip(connected, snapshot({ models: [model({ queue: { waiting: 5, oldestWaitMs: 2100, byClass: { interactive: 1, background: 4 } } })] }));
    expect(md).toContain('| 5 (oldest 2.1 s · 1 interactive, 4 background) |');
  });

  it('names the config file to add a model to when the daemon has none', () => {
    const none = snapshot({ models: [] });
    expect(statusTooltip(connected, none)).toContain('No models configured: add one under "models" (**Slotwise: Open Config**) and restart the daemon.');
    const md = statusTooltip(connected, { ...none, daemon: { ...none.daemon, config: { path: '/home/u/my_cfg/config.json', exists: false } } });
    expect(md).toContain('add one under "models" in /home/u/my\\_cfg/config.json (**Slotwise: Open Config**)');
  });

  it('escapes markdown in names and says why when disconnected', () => {
    expect(statusTooltip(connected, snapshot({ models: [model({ name: 'a|b*' })] }))).toContain('**a\\|b\\*** · ready');
    expect(statusTooltip({ kind: 'disconnected', code: 'SW_ERR_DAEMON_UNREACHABLE', message: 'no daemon running for /s', attempt: 2, retryInMs: 1000 }, undefined)).toBe(
      '**Slotwise: disconnected** — no daemon running for /s\n\nRetrying in 1.0 s. Run **Slotwise: Start Daemon** to start one.',
    );
  });
});

describe('jobsBarText', () => {
  it.each([
    [0, 0, undefined],
    [1, 0, '$(sync~spin) 1 prompt'],
    [3, 2, '$(sync~spin) 3 prompts (2 queued)'],
  ])('%i active, %i queued', (active, queued, want) => expect(jobsBarText(active, queued)).toBe(want));
});
