import { describe, expect, it } from 'vitest';
import type { LaunchModel } from '../../daemon/config/types';
import { llamaServerArgs } from '../../daemon/runtime/instance';
import { endpointKey, httpThreads, MAX_SOCKET_PATH, MAX_SPARES, socketPathFor } from '../../daemon/runtime/endpoint';

const model = (over: Partial<LaunchModel> = {}): LaunchModel => ({
  name: 'm', path: '/m.gguf', slots: 2, ctxPerSlot: 1024, gpuLayers: 'auto', replicas: 1, maxReplicas: 1, autostart: true, args: [], affinity: true, kind: 'completion', reservedSlots: 0, promptCacheMiB: 32, load: 'always', idleUnloadMs: 0, pinned: false, maxSlots: 16, ...over,
});

describe('llamaServerArgs by model kind', () => {
  it('completion: neither --embedding nor --reranking', () => {
    const args = llamaServerArgs(model(), { port: 9000 });
    expect(args).not.toContain('--embedding');
    expect(args).not.toContain('--reranking');
    expect(args).toContain('--parallel');
  });

  it('embedding: --embedding, before the user args', () => {
    const args = llamaServerArgs(model({ kind: 'embedding', args: ['--pooling', 'mean'] }), { port: 9000 });
    expect(args).toContain('--embedding');
    expect(args.indexOf('--embedding')).toBeLessThan(args.indexOf('--pooling'));
  });

  it('rerank: --reranking', () => {
    const args = llamaServerArgs(model({ kind: 'rerank' }), { port: 9000 });
    expect(args).toContain('--reranking');
    expect(args).not.toContain('--embedding');
  });
});

describe('where llama-server listens', () => {
  const valueOf = (args: string[], flag: string): string | undefined => args[args.indexOf(flag) + 1];

  it('the loopback port alone, without a socket', () => {
    const args = llamaServerArgs(model(), { port: 9000 });
    expect(valueOf(args, '--host')).toBe('127.0.0.1');
    expect(valueOf(args, '--port')).toBe('9000');
  });

  it('the port and the daemon\'s UNIX socket, as one --host list', () => {
    const args = llamaServerArgs(model(), { port: 9000, socketPath: '/state/sockets/m_1.sock' });
    expect(valueOf(args, '--host')).toBe('127.0.0.1,/state/sockets/m_1.sock');
    expect(valueOf(args, '--port')).toBe('9000');
    expect(args.filter((a) => a === '--host')).toHaveLength(1);
  });
});

describe('--threads-http: a thread per stream, per spare connection and per poll', () => {
  const valueOf = (args: string[], flag: string): string | undefined => args[args.indexOf(flag) + 1];

  it('grows with the slots, the spares up to their limit', () => {
    expect(httpThreads(1)).toBe(1 + 4 + 5);
    expect(httpThreads(8)).toBe(8 + 4 + 12);
    expect(httpThreads(64)).toBe(64 + 4 + MAX_SPARES);
    expect(valueOf(llamaServerArgs(model({ slots: 8 }), { port: 9000 }), '--threads-http')).toBe(String(httpThreads(8)));
  });

  it("leaves the user's own setting alone, in either spelling", () => {
    for (const args of [['--threads-http', '3'], ['--threads-http=3']]) {
      const out = llamaServerArgs(model({ args }), { port: 9000 });
      expect(out.filter((a) => a.startsWith('--threads-http'))).toHaveLength(1);
      expect(out.slice(-args.length)).toEqual(args);
    }
  });
});

describe('socketPathFor', () => {
  it('names the socket after the instance, in the given dir, ending in .sock', () => {
    expect(socketPathFor('/state/sockets', 'qwen coder#2', 'linux')).toBe('/state/sockets/qwen_coder_2.sock');
  });

  it('none on Windows, where Node connects `path` to a named pipe, not an AF_UNIX socket', () => {
    expect(socketPathFor('/state/sockets', 'm#1', 'win32')).toBeUndefined();
  });

  it('none when the path would not fit in sun_path', () => {
    const deep = `/${'d'.repeat(MAX_SOCKET_PATH - '/m_1.sock'.length - 1)}`;
    expect(socketPathFor(deep, 'm#1', 'linux')).toHaveLength(MAX_SOCKET_PATH);
    expect(socketPathFor(`${deep}x`, 'm#1', 'darwin')).toBeUndefined();
  });

  it("none when the path would not survive --host's CSV list (a comma or a quote); spaces inside are fine", () => {
    expect(socketPathFor('/home/a,b/state/sockets', 'm#1', 'linux')).toBeUndefined();
    expect(socketPathFor('/home/"q"/sockets', 'm#1', 'linux')).toBeUndefined();
    expect(socketPathFor('/Users/Jo Smith/Library/Application Support/slotwise/sockets', 'm#1', 'darwin')).toBe('/Users/Jo Smith/Library/Application Support/slotwise/sockets/m_1.sock');
  });

  it('keys a socket endpoint apart from its origin', () => {
    expect(endpointKey({ origin: 'http://127.0.0.1:9000' })).toBe('http://127.0.0.1:9000');
    expect(endpointKey({ origin: 'http://127.0.0.1:9000', socketPath: '/s/m_1.sock' })).toBe('unix:/s/m_1.sock');
  });
});
