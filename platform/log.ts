// Leveled logger with a subject prefix (`[coder#1] …`). Library code logs through this, never console.
import { appendFileSync } from 'node:fs';

export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
const RANK: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export interface LogSink {
  write(line: string): void;
}

export interface Logger {
  debug(msg: string): void;
  info(msg: string): void;
  warn(msg: string): void;
  error(msg: string): void;
  /** A logger whose lines carry `[subject]`. */
  child(subject: string): Logger;
}

export interface LoggerOptions {
  level?: LogLevel;
  sinks: LogSink[];
  subject?: string;
}

export function createLogger(opts: LoggerOptions): Logger {
  const min = RANK[opts.level ?? 'info'];
  const emit = (level: LogLevel, msg: string): void => {
    if (RANK[level] < min) return;
    const prefix = opts.subject ? `[${opts.subject}] ` : '';
    const line = `${new Date().toISOString()} ${level.padEnd(5)} ${prefix}${msg}`;
    for (const sink of opts.sinks) sink.write(line);
  };
  return {
    debug: (m) => emit('debug', m),
    info: (m) => emit('info', m),
    warn: (m) => emit('warn', m),
    error: (m) => emit('error', m),
    child: (subject) => createLogger({ ...opts, subject: opts.subject ? `${opts.subject}/${subject}` : subject }),
  };
}

/** Appends synchronously: daemon log lines are few and must survive a crash right after them. */
export function fileSink(path: string): LogSink {
  return { write: (line) => appendFileSync(path, `${line}\n`, { mode: 0o600 }) }; // the mode applies when it creates the file
}

export function streamSink(stream: NodeJS.WritableStream): LogSink {
  return { write: (line) => void stream.write(`${line}\n`) };
}

export const silentLogger: Logger = createLogger({ sinks: [] });
