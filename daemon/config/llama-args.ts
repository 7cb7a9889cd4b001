// Reading llama-server's command-line flags out of a model's `args`, for the defaults Slotwise adds
// only where the user chose none (threads, HTTP threads, log verbosity) and the flags it owns.

/** The flag an argument names: `--threads=4` → `--threads`; `-t` and values stay as they are. */
export function flagOf(arg: string): string {
  return arg.split('=', 1)[0] ?? arg;
}

/** True when `args` set any of `flags`, as `--flag value` or `--flag=value`. */
export function setsFlag(args: readonly string[], flags: readonly string[]): boolean {
  return args.some((a) => flags.includes(flagOf(a)));
}
