// `slotwise bench` flags: --workload chat and what it excludes (no llama-server needed).
import { describe, expect, it } from 'vitest';
import { parseRequest } from '../../cli/commands/bench';
import type { CommandContext } from '../../cli/commands/command';

function parse(values: Record<string, string | boolean>): ReturnType<typeof parseRequest> {
  const ctx = { values, positionals: [], env: {}, stateDir: '/tmp/state', configPath: undefined, port: undefined, stdout: process.stdout, stderr: process.stderr, verbose: false } as unknown as CommandContext;
  return parseRequest(ctx, new AbortController().signal, { line: () => undefined, update: () => undefined });
}

describe('bench --workload', () => {
  it('defaults to the sweep and accepts chat with --slots/--replicas', () => {
    expect(parse({}).workload).toBe('sweep');
    expect(parse({ workload: 'chat', slots: '2', replicas: '3' })).toMatchObject({ mode: 'custom', workload: 'chat', slots: 2, replicas: 3 });
  });

  it('takes --think-ms for chat only, 0 included (no pause)', () => {
    expect(parse({ workload: 'chat', 'think-ms': '12000' }).thinkMs).toBe(12000);
    expect(parse({ workload: 'chat', 'think-ms': '0' }).thinkMs).toBe(0);
    expect(parse({ workload: 'chat' })).not.toHaveProperty('thinkMs');
  });

  it('takes --warm-up for the sweeps, 0 included (none), and hands it to the sweep', () => {
    expect(parse({ 'warm-up': '0' }).warmUp).toBe(0);
    expect(parse({ attach: true, 'warm-up': '500' }).warmUp).toBe(500);
    expect(parse({})).not.toHaveProperty('warmUp');
  });

  it.each([
    [{ 'warm-up': 'lots' }, '--warm-up needs an integer of at least 0, got lots'],
    [{ standard: true, 'warm-up': '10' }, 'bench: --standard runs a fixed suite; drop --warm-up — see `slotwise bench --help`'],
    [{ workload: 'chat', 'warm-up': '10' }, 'bench: --workload chat has its own fixed load; drop --warm-up — see `slotwise bench --help`'],
    [{ workload: 'batch' }, 'bench: --workload must be sweep or chat, got "batch" — see `slotwise bench --help`'],
    [{ workload: 'chat', concurrency: '4' }, 'bench: --workload chat has its own fixed load; drop --concurrency — see `slotwise bench --help`'],
    [{ workload: 'chat', attach: true }, 'bench: --workload chat hosts its own daemons; drop --standard/--attach — see `slotwise bench --help`'],
    [{ workload: 'sweep', standard: true }, 'bench: --standard runs a fixed suite; drop --workload — see `slotwise bench --help`'],
    [{ 'think-ms': '5000' }, 'bench: --think-ms belongs to --workload chat — see `slotwise bench --help`'],
    [{ workload: 'chat', 'think-ms': '-1' }, '--think-ms needs an integer of at least 0, got -1'],
  ])('%j → one usage line', (values, message) => {
    expect(() => parse(values)).toThrow(message);
  });
});
