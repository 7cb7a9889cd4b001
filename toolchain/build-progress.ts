// Progress of a llama-server setup: the event type, and the pure parser of CMake build output.
import { basename } from 'node:path';

/** Setup steps in order; `wait` is time spent behind another process's setup. */
export type SetupPhase = 'wait' | 'fetch' | 'extract' | 'clone' | 'configure' | 'build' | 'install';

export interface SetupProgress {
  phase: SetupPhase;
  /** Percent of this phase, 0–100, where the tool reports it (the build does). */
  pct?: number;
  /** One short line: the file being compiled, the command running, who we wait for. */
  message: string;
}

export type OnSetupProgress = (progress: SetupProgress) => void;

export interface BuildLine {
  pct: number;
  message: string;
}

// `[ 48%] Building C object ...` (Makefiles) or `[12/345] Building ...` (Ninja).
const MAKE_RE = /^\[\s*(\d{1,3})%\]\s+(.*)$/;
const NINJA_RE = /^\[(\d+)\/(\d+)\]\s+(.*)$/;
const ANSI_RE = /\x1b\[[0-9;]*[A-Za-z]/g;

/** Percent and a short subject from one line of `cmake --build` output; undefined for other lines (compiler warnings). */
export function parseBuildProgress(line: string): BuildLine | undefined {
  const text = line.replace(ANSI_RE, '').trim();
  let pct: number;
  let rest: string;
  const make = MAKE_RE.exec(text);
  const ninja = make ? null : NINJA_RE.exec(text);
  if (make) {
    pct = Number(make[1]);
    rest = make[2] ?? '';
  } else if (ninja) {
    const total = Number(ninja[2]);
    if (total === 0) return undefined;
    pct = Math.floor((Number(ninja[1]) * 100) / total);
    rest = ninja[3] ?? '';
  } else {
    return undefined;
  }
  return { pct: Math.min(100, pct), message: describeStep(rest.trim()) };
}

function describeStep(step: string): string {
  const object = /^Building \w+ object (\S+)$/.exec(step);
  if (object?.[1]) return basename(object[1]).replace(/\.(o|obj)$/, '');
  const linking = /^Linking \w+ (?:static library|shared library|shared module|executable) (\S+)$/.exec(step);
  if (linking?.[1]) return `link ${basename(linking[1])}`;
  const built = /^Built target (\S+)$/.exec(step);
  if (built?.[1]) return `built ${built[1]}`;
  return step;
}
