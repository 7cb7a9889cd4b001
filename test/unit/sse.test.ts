// The SSE splitter (daemon/api/sse.ts) that assembled answers and the upstream error check read
// llama-server's stream with: the same events whatever chunks the bytes arrive in.
import { describe, expect, it } from 'vitest';
import { SseSplitter } from '../../daemon/api/sse';
import { mulberry32 } from '../../platform/prng';

describe('SseSplitter', () => {
  it('gives each data payload once, joining multi-line data and skipping comments and other fields', () => {
    const s = new SseSplitter();
    expect(s.push('data: {"a":1}\n\n: ping\n\nevent: x\ndata: one\ndata:two\n\ndata: [DO')).toEqual(['{"a":1}', 'one\ntwo']);
    expect(s.push('NE]\r\n\r\n')).toEqual(['[DONE]']);
  });

  it('reads the same events from a stream split at any byte, multi-byte characters and CRLF included', () => {
    const random = mulberry32(11);
    const texts = ['plain', 'é ü', '日本語', '😀 emoji', 'quote " and \\\\', ''];
    for (let run = 0; run < 300; run++) {
      const events: string[] = [];
      let wire = '';
      for (let i = 1 + Math.floor(random() * 6); i > 0; i--) {
        const payload = JSON.stringify({ content: texts[Math.floor(random() * texts.length)] });
        const nl = random() < 0.3 ? '\r\n' : '\n';
        if (random() < 0.2) wire += `: keep-alive${nl}${nl}`;
        wire += `data: ${payload}${nl}${nl}`;
        events.push(payload);
      }
      const bytes = Buffer.from(wire);
      const s = new SseSplitter();
      const got: string[] = [];
      for (let at = 0; at < bytes.length; ) {
        const end = Math.min(bytes.length, at + 1 + Math.floor(random() * 7));
        got.push(...s.push(bytes.subarray(at, end)));
        at = end;
      }
      expect(got).toEqual(events);
    }
  });
});
