// The sampler's current problems, one line each, keyed by what they are about so a fix clears them.
// Warnings describe the present, not a log: a parse error fades after a while, a dead tool stays until it works again.

interface Entry {
  text: string;
  /** Epoch ms after which the warning no longer shows; Infinity = until cleared. */
  until: number;
}

export class WarningBoard {
  #items = new Map<string, Entry>();

  /** Sets the warning under `key`; true when the visible text changed (the caller logs and emits then). */
  set(key: string, text: string, ttlMs = Number.POSITIVE_INFINITY, now = Date.now()): boolean {
    const prev = this.#items.get(key);
    const visible = prev !== undefined && prev.until > now;
    this.#items.set(key, { text, until: now + ttlMs });
    return !visible || prev.text !== text;
  }

  /** Removes the warning under `key`; true when one was visible. */
  clear(key: string, now = Date.now()): boolean {
    const prev = this.#items.get(key);
    this.#items.delete(key);
    return prev !== undefined && prev.until > now;
  }

  list(now = Date.now()): string[] {
    const out: string[] = [];
    for (const [key, entry] of this.#items) {
      if (entry.until > now) out.push(entry.text);
      else this.#items.delete(key);
    }
    return out;
  }
}

/** A line of tool output quoted in a warning: trimmed and cut to a readable length. */
export function quote(line: string): string {
  const t = line.trim();
  return JSON.stringify(t.length > 120 ? `${t.slice(0, 117)}...` : t);
}
