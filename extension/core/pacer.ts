// Paces a streaming reply's writes to the window: text that arrives meanwhile is joined into the next
// write, one write is in flight at a time, and each waits `gapMs` after the one before it began. One
// write per token, hundreds a second from a small model, kept the window seconds behind the stream and
// the Slots view frozen meanwhile. No `vscode` import: the editor's appender and the output channel
// (prompt-output.ts, reply-channel.ts) both write through it, and it is unit-tested as is.

export interface Pacer {
  /** Queues text: written at once when the last write began `gapMs` ago and is done, else joined into the next. */
  append(text: string): void;
  /** Resolves once every appended text was written (a write may drop it: a closed editor). */
  idle(): Promise<void>;
  /** Writes what is held now, without the wait (a write in flight is not waited for), and stops. */
  dispose(): void;
}

/**
 * `write` gets the joined text and may be async; it handles its own failures (a rejection is passed to
 * `onError`). `gapMs(text)` is the least time from the start of the write of `text` to the next write.
 */
export function pacer(write: (text: string) => void | PromiseLike<void>, gapMs: (text: string) => number, onError: (err: unknown) => void = () => {}): Pacer {
  let pending = '';
  let timer: ReturnType<typeof setTimeout> | undefined;
  let busy = false;
  let disposed = false;
  let nextAt = -Infinity;
  let idlers: (() => void)[] = [];

  const settled = (): void => {
    if (busy || timer || pending) return;
    const done = idlers;
    idlers = [];
    for (const resolve of done) resolve();
  };

  const writeNow = (): void => {
    const text = pending;
    pending = '';
    nextAt = Date.now() + gapMs(text);
    busy = true;
    let result: void | PromiseLike<void> = undefined;
    try {
      result = write(text);
    } catch (err) {
      onError(err);
    }
    const done = (): void => {
      busy = false;
      schedule();
      settled();
    };
    if (result && typeof result.then === 'function') result.then(done, (err: unknown) => (onError(err), done()));
    else done();
  };

  const schedule = (): void => {
    if (busy || timer || !pending || disposed) return;
    const wait = nextAt - Date.now();
    if (wait <= 0) return writeNow();
    timer = setTimeout(() => {
      timer = undefined;
      schedule();
      settled();
    }, wait);
  };

  return {
    append(text) {
      if (disposed || !text) return;
      pending += text;
      schedule();
    },
    idle() {
      return busy || timer || pending ? new Promise((resolve) => idlers.push(resolve)) : Promise.resolve();
    },
    dispose() {
      if (timer) clearTimeout(timer);
      timer = undefined;
      if (pending) writeNow();
      disposed = true;
      settled();
    },
  };
}
