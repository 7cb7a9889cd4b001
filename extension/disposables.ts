// Adapts the core's unsubscribe functions to vscode Disposables.
import type * as vscode from 'vscode';
import type { Unsubscribe } from './core/emitter';

export function toDisposable(unsubscribe: Unsubscribe | (() => void)): vscode.Disposable {
  return { dispose: () => void unsubscribe() };
}

/** Calls `fn` at most once per `ms`, trailing call guaranteed (tree refreshes while tokens stream). */
export function throttle(fn: () => void, ms: number): { (): void; cancel(): void } {
  let timer: ReturnType<typeof setTimeout> | undefined;
  let last = 0;
  const run = (): void => {
    timer = undefined;
    last = Date.now();
    fn();
  };
  const throttled = (): void => {
    if (timer) return;
    const wait = Math.max(0, last + ms - Date.now());
    if (wait === 0) run();
    else timer = setTimeout(run, wait);
  };
  throttled.cancel = (): void => {
    if (timer) clearTimeout(timer);
    timer = undefined;
  };
  return throttled;
}
