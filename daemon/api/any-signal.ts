// One AbortSignal that aborts when any of its sources does, with the first source's reason.
// Not AbortSignal.any(): on Node 20 its composite signal is only weakly held by its sources and can be
// garbage-collected while a request still relies on it, so an abort (e.g. SW_ERR_SUPERSEDED) would be
// lost. Here each source's listener holds the controller strongly, for the life of the sources.

export function anySignal(sources: readonly AbortSignal[]): AbortSignal {
  const ctl = new AbortController();
  const already = sources.find((s) => s.aborted);
  if (already) {
    ctl.abort(already.reason);
    return ctl.signal;
  }
  const onAbort = (e: Event): void => {
    for (const s of sources) s.removeEventListener('abort', onAbort);
    ctl.abort((e.target as AbortSignal).reason);
  };
  for (const s of sources) s.addEventListener('abort', onAbort, { once: true });
  return ctl.signal;
}
