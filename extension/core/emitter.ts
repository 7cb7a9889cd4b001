// A tiny typed event emitter for the vscode-free core; the vscode layer adapts it to Disposables.

/** Call to stop listening. */
export type Unsubscribe = () => void;

/** One event stream: `on` adds a listener, `fire` calls each (a throwing listener does not stop the others). */
export class Emitter<T> {
  #listeners = new Set<(value: T) => void>();
  #onListenerError: (err: unknown) => void;

  constructor(onListenerError: (err: unknown) => void = () => undefined) {
    this.#onListenerError = onListenerError;
  }

  on(listener: (value: T) => void): Unsubscribe {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  fire(value: T): void {
    for (const l of [...this.#listeners]) {
      try {
        l(value);
      } catch (err) {
        this.#onListenerError(err); // one broken view must not stop the status bar from updating
      }
    }
  }

  clear(): void {
    this.#listeners.clear();
  }
}
