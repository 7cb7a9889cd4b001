// Types of setup-e2e.mjs (kept as plain JS so a fresh machine can run it before anything is built).
export declare const CODE_SERVER_VERSION: string;
export declare const NODE_MAJOR: string;
export declare const CHROMIUM: string;

export interface E2ePaths {
  cacheDir: string;
  chromium: string;
  nodeDir: string;
  node: string;
  /** code-server's entry script, run with `node`. */
  codeServer: string;
}

export declare function e2eCacheDir(env?: NodeJS.ProcessEnv): string;
export declare function ensureE2eTools(opts?: { log?: (line: string) => void; env?: NodeJS.ProcessEnv }): Promise<E2ePaths>;
