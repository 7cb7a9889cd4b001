// Server-sent events as llama-server writes them (`data: <json>` lines, a blank line after each
// event), split as the bytes arrive: an event may span chunks, a chunk may hold several events.

/** The `data:` payloads of an SSE byte stream, event by event; push() returns the events a chunk completed. */
export class SseSplitter {
  #decoder = new TextDecoder();
  #buf = '';

  push(chunk: Uint8Array | string): string[] {
    this.#buf += typeof chunk === 'string' ? chunk : this.#decoder.decode(chunk, { stream: true });
    const out: string[] = [];
    let idx: number;
    while ((idx = this.#buf.search(/\r?\n\r?\n/)) >= 0) {
      const event = this.#buf.slice(0, idx);
      this.#buf = this.#buf.slice(idx).replace(/^\r?\n\r?\n/, '');
      const data = event
        .split(/\r?\n/)
        .filter((l) => l.startsWith('data:'))
        .map((l) => l.slice(5).replace(/^ /, ''))
        .join('\n');
      if (data) out.push(data);
    }
    return out;
  }
}
