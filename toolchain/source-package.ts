// The one pin of the llama.cpp source Slotwise builds. node-llama-cpp ships llama.cpp as a git
// bundle (package/llama/gitRelease.bundle); we fetch only its tarball with `npm pack` at setup time
// and never depend on the package itself. To move to another llama.cpp, change this constant: the
// commit is read from the bundle, and `integrity` is what `npm pack --json` prints for that version.
export const LLAMA_SOURCE_PACKAGE = {
  name: 'node-llama-cpp',
  version: '3.22.1',
  /** npm's SRI hash of the tarball; checked on every use so a truncated or swapped download is refetched. */
  integrity: 'sha512-bltIipuWmc123H7tMIgDGKSsSrhmhlQYeVUC48XTjVW7XGJJiJJyCdlTMzQ/LiWoPkGDpcL4FviDpgw7qfTiDw==',
} as const;
