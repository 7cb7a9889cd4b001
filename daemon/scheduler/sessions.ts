// Newest wins: the unfinished requests of each (model, session key). A request that carries a key
// supersedes every older unfinished one of the same key and model (the scheduler aborts them).
// Plain bookkeeping, no I/O: the scheduler owns the effects.

export class Sessions<T> {
  #live = new Map<string, Set<T>>();

  /** Registers `item` as the newest of (model, session) and returns the older ones it supersedes. */
  replace(model: string, session: string, item: T): T[] {
    const key = sessionKey(model, session);
    const older = [...(this.#live.get(key) ?? [])];
    this.#live.set(key, new Set([item]));
    return older;
  }

  /** Forgets a finished item; a key without items is dropped so the map does not grow with old editors. */
  remove(model: string, session: string, item: T): void {
    const key = sessionKey(model, session);
    const set = this.#live.get(key);
    if (!set) return;
    set.delete(item);
    if (set.size === 0) this.#live.delete(key);
  }

  /** Keys with unfinished items (tests, status). */
  get size(): number {
    return this.#live.size;
  }
}

// NUL cannot appear in a model name, so (model, session) pairs never collide.
export function sessionKey(model: string, session: string): string {
  return `${model}\u0000${session}`;
}
