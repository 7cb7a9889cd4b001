// `slotwise setup`: find or build llama-server with visible progress. The only module here that
// prints; it writes to the stream it is given (stderr), never to stdout.
import { type EnsuredLlamaServer, ensureLlamaServer } from './binary';
import type { SetupProgress } from './build-progress';

export interface ProgressStream {
  write(chunk: string): unknown;
  isTTY?: boolean;
  columns?: number;
}

export interface RunSetupOptions {
  /** Build with CUDA; undefined = when `nvidia-smi -L` lists a GPU. */
  cuda?: boolean;
  /** Rebuild the cached llama-server even when one is found. */
  force?: boolean;
  /** Print nothing when a llama-server is already there (`npm test` runs setup every time). */
  quietIfCached?: boolean;
  stderr: ProgressStream;
  /** Config `llamaServer`. */
  configured?: string;
  env?: NodeJS.ProcessEnv;
  /** Besides this, SIGINT/SIGTERM during the run cancel it (the build runs in its own process group, so the terminal's Ctrl-C does not reach it). */
  signal?: AbortSignal;
  jobs?: number;
}

export interface ProgressPrinter {
  update(progress: SetupProgress): void;
  /** Ends a TTY progress line so later output starts on a clean line. */
  done(): void;
}

const BAR_WIDTH = 10;
/** Non-TTY output: a line per phase, per 10 % of progress, or at least this often while busy. */
const PLAIN_EVERY_MS = 15_000;
/** TTY redraws at most this often, except when the phase changes. */
const TTY_EVERY_MS = 100;

/** Finds or builds llama-server, showing progress on `stderr`; prints the binary and its version. */
export async function runSetup(opts: RunSetupOptions): Promise<EnsuredLlamaServer> {
  const controller = new AbortController();
  // Kept for the whole run (not `once`): a second Ctrl-C must not kill us while the detached build
  // group lives on; runStep escalates to SIGKILL on its own.
  const cancel = (): void => {
    if (!controller.signal.aborted) opts.stderr.write('\ncancelling setup…\n');
    controller.abort();
  };
  process.on('SIGINT', cancel);
  process.on('SIGTERM', cancel);
  const signal = opts.signal ? AbortSignal.any([opts.signal, controller.signal]) : controller.signal;
  const printer = createProgressPrinter(opts.stderr);
  let found: EnsuredLlamaServer;
  try {
    found = await ensureLlamaServer({
      configured: opts.configured,
      env: opts.env,
      cuda: opts.cuda,
      force: opts.force,
      jobs: opts.jobs,
      signal,
      onProgress: (p) => printer.update(p),
    });
  } finally {
    printer.done();
    process.removeListener('SIGINT', cancel);
    process.removeListener('SIGTERM', cancel);
  }
  if (found.built || !opts.quietIfCached) {
    const how = found.built ? 'built now' : found.source === 'cache' ? 'cached build' : `from ${describeSource(found.source)}`;
    opts.stderr.write(`llama-server: ${found.path} (${how}${found.cuda ? ', CUDA' : ''})\n`);
    opts.stderr.write(`version: ${found.version ?? 'unknown (it printed no version)'}\n`);
  }
  return found;
}

/** One self-rewriting line on a TTY; plain periodic lines otherwise (logs, CI). */
export function createProgressPrinter(stream: ProgressStream, now: () => number = Date.now): ProgressPrinter {
  const tty = stream.isTTY === true;
  let lastPhase = '';
  let lastDecile = -1;
  let lastAt = -Infinity;
  let drawn = false;
  return {
    update(p) {
      const t = now();
      const phaseChanged = p.phase !== lastPhase;
      const decile = p.pct === undefined ? -1 : Math.floor(p.pct / 10);
      if (tty) {
        if (!phaseChanged && t - lastAt < TTY_EVERY_MS) return;
        const width = Math.max(20, (stream.columns ?? 80) - 1);
        stream.write(`\r${formatProgressLine(p).slice(0, width)}\x1b[K`);
        drawn = true;
      } else {
        const due = phaseChanged || decile > lastDecile || t - lastAt >= PLAIN_EVERY_MS;
        if (!due) return;
        stream.write(`setup: ${p.phase}${p.pct === undefined ? '' : ` ${p.pct}%`} ${p.message}\n`);
      }
      if (phaseChanged) lastDecile = -1;
      lastPhase = p.phase;
      lastDecile = Math.max(lastDecile, decile);
      lastAt = t;
    },
    done() {
      if (drawn) stream.write('\r\x1b[K');
      drawn = false;
    },
  };
}

/** `[#####.....]  48% build      ggml-cpu.c`; a phase without a percentage shows an empty bar. */
export function formatProgressLine(p: SetupProgress): string {
  const filled = p.pct === undefined ? 0 : Math.round((Math.min(100, Math.max(0, p.pct)) * BAR_WIDTH) / 100);
  const bar = `[${'#'.repeat(filled)}${'.'.repeat(BAR_WIDTH - filled)}]`;
  const pct = p.pct === undefined ? '    ' : `${String(Math.round(p.pct)).padStart(3)}%`;
  return `${bar} ${pct} ${p.phase.padEnd(9)}  ${p.message}`;
}

function describeSource(source: EnsuredLlamaServer['source']): string {
  switch (source) {
    case 'config':
      return 'config llamaServer';
    case 'env':
      return '$SLOTWISE_LLAMA_SERVER';
    case 'path':
      return 'PATH';
    case 'cache':
      return 'the cache';
  }
}
