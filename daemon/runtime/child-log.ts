// Output of one llama-server: a size-rotated log file plus an in-memory ring for `logs.tail`
// and for the last lines shown when an instance crashes or fails.
import { closeSync, openSync, renameSync, rmSync, statSync, writeSync } from 'node:fs';

export interface ChildLogOptions {
  /** File to append to; rotated to `.1`, `.2`, … when it grows past maxBytes. */
  file?: string;
  maxBytes?: number;
  keep?: number;
  ringLines?: number;
  /** Lines to leave out of the ring and the file (noise that would push the useful lines out). */
  drop?: (line: string) => boolean;
}

export class ChildLog {
  readonly file: string | undefined;
  #ring: string[] = [];
  #ringLines: number;
  #maxBytes: number;
  #keep: number;
  #bytes = 0;
  /** Kept open: with -lv 4 llama-server prints several lines per request, and an open-append-close
   * per line showed up as 1 % of the daemon's CPU time under load. */
  #fd: number | undefined;
  #partial = '';
  #listeners = new Set<(line: string) => void>();
  #drop: ((line: string) => boolean) | undefined;

  constructor(opts: ChildLogOptions = {}) {
    this.file = opts.file;
    this.#ringLines = opts.ringLines ?? 500;
    this.#maxBytes = opts.maxBytes ?? 5 * 1024 * 1024;
    this.#keep = opts.keep ?? 3;
    this.#drop = opts.drop;
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
    if (lines.length === 0) return;
    let data = '';
    for (const raw of lines) {
      const line = raw.replace(/\r$/, '');
      if (this.#drop?.(line)) continue;
      this.#remember(line);
      data += `${line}\n`;
    }
    this.#append(data); // one write per chunk, not per line
  }

  /** Adds one line written by Slotwise itself (spawn command, exit reason). */
  line(line: string): void {
    this.#remember(line);
    this.#append(`${line}\n`);
  }

  /** Closes the file; a later line reopens it. */
  close(): void {
    if (this.#fd === undefined) return;
    closeSync(this.#fd);
    this.#fd = undefined;
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

  #remember(line: string): void {
    this.#ring.push(line);
    if (this.#ring.length > this.#ringLines) this.#ring.splice(0, this.#ring.length - this.#ringLines);
    for (const listener of this.#listeners) listener(line);
  }

  #append(data: string): void {
    if (!this.file) return;
    const bytes = Buffer.byteLength(data);
    if (this.#bytes > 0 && this.#bytes + bytes > this.#maxBytes) this.#rotate();
    this.#fd ??= openSync(this.file, 'a', 0o600);
    writeSync(this.#fd, data);
    this.#bytes += bytes;
  }

  #rotate(): void {
    const file = this.file!;
    this.close();
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
