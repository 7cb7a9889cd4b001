// One error type with a stable code, a user-facing one-line message and the cause kept.
// Match on `code` (it survives JSON), never on `instanceof` across process boundaries.
import type { ErrorBody, ErrorCode } from './protocol';

interface CodeInfo {
  /** HTTP status when this error ends a request. */
  status: number;
  /** OpenAI-style error type. */
  type: string;
  /** CLI exit code: 2 for bad usage or config, else 1. */
  exit: 1 | 2;
}

const CODES: Record<ErrorCode, CodeInfo> = {
  SW_ERR_USAGE: { status: 400, type: 'invalid_request_error', exit: 2 },
  SW_ERR_CONFIG: { status: 400, type: 'invalid_request_error', exit: 2 },
  SW_ERR_MODEL_NOT_FOUND: { status: 404, type: 'invalid_request_error', exit: 1 },
  SW_ERR_MODEL_FILE: { status: 400, type: 'invalid_request_error', exit: 1 },
  SW_ERR_GGUF_INVALID: { status: 400, type: 'invalid_request_error', exit: 1 },
  SW_ERR_LLAMA_SERVER_NOT_FOUND: { status: 500, type: 'server_error', exit: 1 },
  SW_ERR_TOOL_MISSING: { status: 500, type: 'server_error', exit: 1 },
  SW_ERR_BUILD_FAILED: { status: 500, type: 'server_error', exit: 1 },
  SW_ERR_INSTANCE_FAILED: { status: 503, type: 'server_error', exit: 1 },
  SW_ERR_INSTANCE_EXITED: { status: 502, type: 'server_error', exit: 1 },
  SW_ERR_INSTANCE_STALLED: { status: 504, type: 'server_error', exit: 1 },
  SW_ERR_HEALTH_TIMEOUT: { status: 503, type: 'server_error', exit: 1 },
  SW_ERR_NO_INSTANCE: { status: 503, type: 'server_error', exit: 1 },
  SW_ERR_NOT_ENOUGH_MEMORY: { status: 503, type: 'server_error', exit: 1 },
  SW_ERR_UNAUTHORIZED: { status: 401, type: 'authentication_error', exit: 1 },
  SW_ERR_FORBIDDEN: { status: 403, type: 'permission_error', exit: 1 },
  SW_ERR_BAD_REQUEST: { status: 400, type: 'invalid_request_error', exit: 2 },
  SW_ERR_BODY_TOO_LARGE: { status: 413, type: 'invalid_request_error', exit: 1 },
  SW_ERR_BODY_TIMEOUT: { status: 408, type: 'invalid_request_error', exit: 1 },
  SW_ERR_HEADERS_TOO_LARGE: { status: 431, type: 'invalid_request_error', exit: 1 },
  SW_ERR_METHOD_NOT_ALLOWED: { status: 405, type: 'invalid_request_error', exit: 1 },
  SW_ERR_UPGRADE_REQUIRED: { status: 426, type: 'invalid_request_error', exit: 1 },
  SW_ERR_NOT_FOUND: { status: 404, type: 'invalid_request_error', exit: 1 },
  SW_ERR_METHOD_NOT_FOUND: { status: 404, type: 'invalid_request_error', exit: 1 },
  SW_ERR_QUEUE_FULL: { status: 503, type: 'server_error', exit: 1 },
  SW_ERR_QUEUE_TIMEOUT: { status: 504, type: 'server_error', exit: 1 },
  SW_ERR_UPSTREAM: { status: 502, type: 'server_error', exit: 1 },
  SW_ERR_UPSTREAM_REJECTED: { status: 400, type: 'invalid_request_error', exit: 1 },
  SW_ERR_CANCELLED: { status: 499, type: 'invalid_request_error', exit: 1 },
  SW_ERR_SUPERSEDED: { status: 409, type: 'invalid_request_error', exit: 1 },
  SW_ERR_JOB_NOT_FOUND: { status: 404, type: 'invalid_request_error', exit: 1 },
  SW_ERR_MODEL_CANNOT_INFILL: { status: 400, type: 'invalid_request_error', exit: 1 },
  SW_ERR_WRONG_MODEL_KIND: { status: 400, type: 'invalid_request_error', exit: 1 },
  SW_ERR_DAEMON_UNREACHABLE: { status: 503, type: 'server_error', exit: 1 },
  SW_ERR_DAEMON_RUNNING: { status: 409, type: 'invalid_request_error', exit: 1 },
  SW_ERR_STATE_DIR_UNSAFE: { status: 500, type: 'server_error', exit: 1 },
  SW_ERR_STATE_DIR_UNUSABLE: { status: 500, type: 'server_error', exit: 2 },
  SW_ERR_SHUTTING_DOWN: { status: 503, type: 'server_error', exit: 1 },
  SW_ERR_JOB_INTERRUPTED: { status: 503, type: 'server_error', exit: 1 },
  SW_ERR_PROTOCOL_MISMATCH: { status: 400, type: 'invalid_request_error', exit: 1 },
  SW_ERR_INTERNAL: { status: 500, type: 'server_error', exit: 1 },
};

export interface SlotwiseErrorOptions {
  cause?: unknown;
  /** Longer detail (log excerpt, offending value) shown with `--verbose` or on request. */
  detail?: string;
}

/** The base error of Slotwise. `message` is one line naming the subject and the fix. */
export class SlotwiseError extends Error {
  override readonly name = 'SlotwiseError';
  readonly code: ErrorCode;
  readonly detail: string | undefined;

  constructor(code: ErrorCode, message: string, options: SlotwiseErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.detail = options.detail;
  }

  get status(): number {
    return CODES[this.code].status;
  }

  get exitCode(): 1 | 2 {
    return CODES[this.code].exit;
  }

  toBody(): ErrorBody {
    const body: ErrorBody = { code: this.code, type: CODES[this.code].type, message: this.message };
    if (this.detail) body.detail = this.detail;
    return body;
  }
}

/** True for a value carrying a known Slotwise code, including one rebuilt from JSON. */
export function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && Object.hasOwn(CODES, value);
}

/** Wraps anything thrown into a SlotwiseError; unknown errors become SW_ERR_INTERNAL with the cause kept. */
export function toSlotwiseError(err: unknown): SlotwiseError {
  if (err instanceof SlotwiseError) return err;
  if (err && typeof err === 'object' && 'code' in err && isErrorCode(err.code)) {
    const e = err as { code: ErrorCode; message?: string; detail?: string };
    return new SlotwiseError(e.code, e.message ?? e.code, { cause: err, detail: e.detail });
  }
  const message = err instanceof Error ? err.message : String(err);
  return new SlotwiseError('SW_ERR_INTERNAL', `internal error: ${firstLine(message)}`, {
    cause: err,
    detail: err instanceof Error ? err.stack : undefined,
  });
}

/** The single envelope for HTTP error bodies: `{error: {code, type, message}}`. */
export function errorEnvelope(err: unknown): { status: number; body: { error: ErrorBody } } {
  const e = toSlotwiseError(err);
  const body = e.toBody();
  delete body.detail; // detail stays in the daemon log; clients get one line
  body.message = oneLine(body.message);
  if (body.message.length > MAX_MESSAGE) body.message = `${body.message.slice(0, MAX_MESSAGE - 1)}…`;
  return { status: e.status, body: { error: body } };
}

/** Longest message sent to a client: messages echo client input (model names, methods), which may be huge. */
const MAX_MESSAGE = 500;

/** Control characters (newlines included) escaped JSON-style, so echoed input cannot break a one-line message or log line. */
export function oneLine(text: string): string {
  return text.replace(/[\u0000-\u001f\u007f\u2028\u2029]/g, (c) => {
    const named: Record<string, string> = { '\n': '\\n', '\r': '\\r', '\t': '\\t' };
    return named[c] ?? `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;
  });
}

/** Client-supplied text for a message: JSON-quoted (escapes included) and capped at `max` characters. */
export function quote(value: string, max = 80): string {
  return JSON.stringify(value.length > max ? `${value.slice(0, max)}…` : value);
}

export function firstLine(text: string): string {
  const line = text.split('\n', 1)[0] ?? '';
  return line.length > 300 ? `${line.slice(0, 297)}...` : line;
}

/** A readable description of a JS value's type for validation messages: `a string ("x")`, `null`, `an array`. */
export function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  switch (typeof value) {
    case 'string':
      return `a string (${JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value)})`;
    case 'number':
      return `the number ${value}`;
    case 'boolean':
      return `${value}`;
    case 'undefined':
      return 'nothing';
    case 'object':
      return 'an object';
    default:
      return typeof value;
  }
}
