// Output of one llama-server: a size-rotated log file plus an in-memory ring for `logs.tail`
// and for the last lines shown when an instance crashes or fails.
import { appendFileSync, renameSync, statSync, rmSync } from 'node:fs';

export interface ChildLogOptions {
  /** File to append to; rotated to `.1`, `.2`, … when it grows past maxBytes. */
  file?: string;
  maxBytes?: number;
  keep?: number;
  ringLines?: number;
}

export class ChildLog {
  readonly file: string | undefined;
  #ring: string[] = [];
  #ringLines: number;
  #maxBytes: number;
  #keep: number;
  #bytes = 0;
  #partial = '';
  #listeners = new Set<(line: string) => void>();

  constructor(opts: ChildLogOptions = {}) {
    this.file = opts.file;
    this.#ringLines = opts.ringLines ?? 500;
    this.#maxBytes = opts.maxBytes ?? 5 * 1024 * 1024;
    this.#keep = opts.keep ?? 3;
    if (this.file) {
      try {
        this.#bytes = statSync(this.file).size;
      } catch {
        this.#bytes = 0; // no file yet: appending creates it
      }
    }
  }

  /** Feeds a raw chunk of child output; complete lines go to the ring and the file. */
  write(chunk: string | Uint8Array): void {
    const text = this.#partial + (typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'));
    const lines = text.split('\n');
    this.#partial = lines.pop() ?? '';
    for (const raw of lines) this.line(raw.replace(/\r$/, ''));
  }

  /** Adds one line written by Slotwise itself (spawn command, exit reason). */
  line(line: string): void {
    this.#ring.push(line);
    if (this.#ring.length > this.#ringLines) this.#ring.splice(0, this.#ring.length - this.#ringLines);
    for (const listener of this.#listeners) listener(line);
    if (!this.file) return;
    const data = `${line}\n`;
    if (this.#bytes + data.length > this.#maxBytes) this.#rotate();
    appendFileSync(this.file, data);
    this.#bytes += data.length;
  }

  flush(): void {
    if (this.#partial) this.line(this.#partial);
    this.#partial = '';
  }

  tail(n: number): string[] {
    return this.#ring.slice(-n);
  }

  onLine(listener: (line: string) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  #rotate(): void {
    const file = this.file!;
    rmSync(`${file}.${this.#keep}`, { force: true });
    for (let i = this.#keep - 1; i >= 1; i--) {
      try {
        renameSync(`${file}.${i}`, `${file}.${i + 1}`);
      } catch {
        // a missing older generation is normal until the log has rotated keep times
      }
    }
    try {
      renameSync(file, `${file}.1`);
    } catch {
      // the file may have been removed by hand; appending recreates it
    }
    this.#bytes = 0;
  }
}
