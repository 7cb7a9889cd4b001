// Checks, before any long step starts, that the tools a setup needs are on PATH, and names the
// package to install in one line when they are not.
import { existsSync } from 'node:fs';
import { SlotwiseError } from '../shared/errors';
import { which } from '../platform/which';

export type ToolName = 'npm' | 'tar' | 'git' | 'cmake' | 'make' | 'c++' | 'nvcc';

interface ToolHint {
  /** How the tool is named in the message. */
  label: string;
  candidates: string[];
  apt: string;
  /** `brew install <x>`, or a full command. */
  mac: string;
}

const HINTS: Record<Exclude<ToolName, 'nvcc'>, ToolHint> = {
  npm: { label: 'npm', candidates: ['npm'], apt: 'npm', mac: 'brew install node' },
  tar: { label: 'tar', candidates: ['tar'], apt: 'tar', mac: 'brew install gnu-tar' },
  git: { label: 'git', candidates: ['git'], apt: 'git', mac: 'brew install git' },
  cmake: { label: 'cmake', candidates: ['cmake'], apt: 'cmake', mac: 'brew install cmake' },
  make: { label: 'make', candidates: ['make', 'gmake'], apt: 'build-essential', mac: 'xcode-select --install' },
  'c++': {
    label: 'a C++ compiler (c++, g++ or clang++)',
    candidates: ['c++', 'g++', 'clang++'],
    apt: 'build-essential',
    mac: 'xcode-select --install',
  },
};

/** Where the CUDA toolkit puts nvcc when it is not on PATH; CMake's FindCUDAToolkit looks there too. */
const NVCC_FALLBACK = '/usr/local/cuda/bin/nvcc';

/**
 * Throws SW_ERR_TOOL_MISSING naming every missing tool and how to install it, in one line.
 * `alternative` ends the line (`set SLOTWISE_LLAMA_SERVER to an existing llama-server`).
 */
export async function requireTools(tools: readonly ToolName[], env: NodeJS.ProcessEnv, alternative?: string): Promise<void> {
  const missing: ToolHint[] = [];
  for (const tool of tools) {
    if (tool === 'nvcc') continue;
    if (tool === 'make' && env.CMAKE_GENERATOR) continue; // the user picked another generator (Ninja...)
    if (tool === 'c++' && env.CXX && (await which(env.CXX.trim().split(/\s+/)[0] ?? '', env))) continue;
    const hint = HINTS[tool];
    if (!(await anyOnPath(hint.candidates, env))) missing.push(hint);
  }
  const or = alternative ? ` or ${alternative}` : '';
  if (missing.length > 0) {
    const labels = missing.map((m) => m.label);
    const apt = unique(missing.map((m) => m.apt));
    const brew = unique(missing.filter((m) => m.mac.startsWith('brew install ')).map((m) => m.mac.slice(13)));
    const mac = [brew.length ? `brew install ${brew.join(' ')}` : '', ...unique(missing.filter((m) => !m.mac.startsWith('brew')).map((m) => m.mac))]
      .filter(Boolean)
      .join(' && ');
    const them = missing.length === 1 ? 'it' : 'them';
    throw new SlotwiseError(
      'SW_ERR_TOOL_MISSING',
      `${labels.join(', ')} not found: install ${them} (Debian/Ubuntu: sudo apt-get install ${apt.join(' ')}; macOS: ${mac})${or}`,
    );
  }
  if (tools.includes('nvcc') && !(await hasNvcc(env))) {
    throw new SlotwiseError(
      'SW_ERR_TOOL_MISSING',
      `nvcc not found: install the CUDA toolkit (https://developer.nvidia.com/cuda-downloads) or build without CUDA${or}`,
    );
  }
}

async function anyOnPath(names: readonly string[], env: NodeJS.ProcessEnv): Promise<boolean> {
  for (const name of names) if (await which(name, env)) return true;
  return false;
}

async function hasNvcc(env: NodeJS.ProcessEnv): Promise<boolean> {
  if (env.CUDACXX && existsSync(env.CUDACXX)) return true;
  return Boolean(await which('nvcc', env)) || existsSync(NVCC_FALLBACK);
}

function unique(items: string[]): string[] {
  return [...new Set(items)];
}
