// GGUF header reader and encoder. One table of value types (VALUE_CODECS) serves both directions,
// so the tiny-model writer and the reader cannot drift apart. Only the header is read: models are
// multi-GB, so the file is read incrementally through a small buffer and every length read from
// the file is checked against the file size before anything is allocated for it.
import { open, type FileHandle } from 'node:fs/promises';
import { basename } from 'node:path';
import { SlotwiseError } from '../shared/errors';
import { formatBytes } from '../shared/format';
import { errnoCode } from '../platform/errno';

// ---------------------------------------------------------------------------------------------
// Types

/** GGUF value types that can stand alone or as array items. */
export type GgufNumberType = 'uint8' | 'int8' | 'uint16' | 'int16' | 'uint32' | 'int32' | 'float32' | 'float64';
/** 64-bit integers are always `bigint` (scalars and array items alike), so a value's JS type
 * follows from its GGUF type alone; use `ggufNumber()` to read one as a number. */
export type GgufBigIntType = 'uint64' | 'int64';
export type GgufItemType = GgufNumberType | GgufBigIntType | 'bool' | 'string';

export type GgufScalar =
  | { type: GgufNumberType; value: number }
  | { type: GgufBigIntType; value: bigint }
  | { type: 'bool'; value: boolean }
  | { type: 'string'; value: string };

/** Arrays stay typed (`string[]`, `number[]`, …). GGUF forbids arrays of arrays. */
export type GgufArray =
  | { type: 'array'; itemType: GgufNumberType; value: number[] }
  | { type: 'array'; itemType: GgufBigIntType; value: bigint[] }
  | { type: 'array'; itemType: 'bool'; value: boolean[] }
  | { type: 'array'; itemType: 'string'; value: string[] };

export type GgufValue = GgufScalar | GgufArray;

export interface GgufTensorInfo {
  name: string;
  /** Sizes fastest-varying first, as stored (token_embd is [n_embd, n_vocab]). */
  dims: number[];
  /** ggml type id; see `ggmlTypeName()`. */
  type: number;
  /** Byte offset of the data, relative to `dataOffset`. */
  offset: number;
}

export interface GgufHeader {
  path: string;
  /** Bytes. */
  fileSize: number;
  version: 2 | 3;
  /** Keys in file order. */
  metadata: Map<string, GgufValue>;
  tensors: GgufTensorInfo[];
  /** `general.alignment`, default 32 (bytes). */
  alignment: number;
  /** Absolute byte offset of the tensor data section. */
  dataOffset: number;
  /** Arrays read past without keeping their items (ReadGgufOptions.skipArrays): key → item count. Not in `metadata`. */
  skipped: Map<string, number>;
}

/** What `encodeGgufHeader` needs; a `GgufHeader` qualifies. */
export interface GgufWritable {
  metadata: ReadonlyMap<string, GgufValue>;
  tensors: readonly GgufTensorInfo[];
}

export interface ReadGgufOptions {
  signal?: AbortSignal;
  /** Config name of the model, for the hint in "file not found". */
  model?: string;
  /** Array keys to read past without keeping their items (listed in `skipped`). Default VOCAB_TABLES. */
  skipArrays?: ReadonlySet<string>;
}

/**
 * The tokenizer's tables that only a tokenizer reads: Slotwise needs the vocab's size and token texts
 * (tokenizer.ggml.tokens) but none of these. Llama 3 has 280k merges: kept, they made a header read
 * take a few hundred ms and tens of MB at every instance start. Pass `skipArrays: new Set()` to keep them.
 */
export const VOCAB_TABLES: ReadonlySet<string> = new Set(['tokenizer.ggml.merges', 'tokenizer.ggml.scores', 'tokenizer.ggml.token_type']);

// ---------------------------------------------------------------------------------------------
// Format tables

const MAGIC = 'GGUF';
const DEFAULT_ALIGNMENT = 32;
const ARRAY_TYPE_ID = 9;
const MAX_DIMS = 4;
/** A corrupt length inside a multi-GB file must fail cleanly, not allocate gigabytes. Tighter than
 * gguf.cpp's 1 Gi: real chat templates are KBs and the largest vocab arrays ~300k items. */
const MAX_STRING_BYTES = 64 * 1024 * 1024;
const MAX_ARRAY_ITEMS = 16 * 1024 * 1024;

interface ValueCodec {
  id: number;
  name: GgufItemType;
  /** Bytes on disk; 0 for strings (u64 length + UTF-8 bytes). */
  size: number;
  read(buf: Buffer, at: number): number | bigint | boolean;
  write(buf: Buffer, at: number, value: number | bigint | boolean): void;
}

const num = (v: number | bigint | boolean): number => v as number;
const big = (v: number | bigint | boolean): bigint => v as bigint;

const VALUE_CODECS: readonly ValueCodec[] = [
  { id: 0, name: 'uint8', size: 1, read: (b, o) => b.readUInt8(o), write: (b, o, v) => b.writeUInt8(num(v), o) },
  { id: 1, name: 'int8', size: 1, read: (b, o) => b.readInt8(o), write: (b, o, v) => b.writeInt8(num(v), o) },
  { id: 2, name: 'uint16', size: 2, read: (b, o) => b.readUInt16LE(o), write: (b, o, v) => b.writeUInt16LE(num(v), o) },
  { id: 3, name: 'int16', size: 2, read: (b, o) => b.readInt16LE(o), write: (b, o, v) => b.writeInt16LE(num(v), o) },
  { id: 4, name: 'uint32', size: 4, read: (b, o) => b.readUInt32LE(o), write: (b, o, v) => b.writeUInt32LE(num(v), o) },
  { id: 5, name: 'int32', size: 4, read: (b, o) => b.readInt32LE(o), write: (b, o, v) => b.writeInt32LE(num(v), o) },
  { id: 6, name: 'float32', size: 4, read: (b, o) => b.readFloatLE(o), write: (b, o, v) => b.writeFloatLE(num(v), o) },
  { id: 7, name: 'bool', size: 1, read: (b, o) => b[o] !== 0, write: (b, o, v) => b.writeUInt8(v ? 1 : 0, o) },
  { id: 8, name: 'string', size: 0, read: () => 0, write: () => undefined },
  { id: 10, name: 'uint64', size: 8, read: (b, o) => b.readBigUInt64LE(o), write: (b, o, v) => b.writeBigUInt64LE(big(v), o) },
  { id: 11, name: 'int64', size: 8, read: (b, o) => b.readBigInt64LE(o), write: (b, o, v) => b.writeBigInt64LE(big(v), o) },
  { id: 12, name: 'float64', size: 8, read: (b, o) => b.readDoubleLE(o), write: (b, o, v) => b.writeDoubleLE(num(v), o) },
];
const CODEC_BY_ID = new Map(VALUE_CODECS.map((c) => [c.id, c]));
const CODEC_BY_NAME = new Map(VALUE_CODECS.map((c) => [c.name, c]));

/** ggml tensor types by id: [name, elements per block, bytes per block]; holes are removed types. */
const GGML_TYPES: readonly (readonly [string, number, number] | undefined)[] = [
  ['f32', 1, 4], ['f16', 1, 2], ['q4_0', 32, 18], ['q4_1', 32, 20], undefined, undefined,
  ['q5_0', 32, 22], ['q5_1', 32, 24], ['q8_0', 32, 34], ['q8_1', 32, 36], ['q2_K', 256, 84],
  ['q3_K', 256, 110], ['q4_K', 256, 144], ['q5_K', 256, 176], ['q6_K', 256, 210], ['q8_K', 256, 292],
  ['iq2_xxs', 256, 66], ['iq2_xs', 256, 74], ['iq3_xxs', 256, 98], ['iq1_s', 256, 50], ['iq4_nl', 32, 18],
  ['iq3_s', 256, 110], ['iq2_s', 256, 82], ['iq4_xs', 256, 136], ['i8', 1, 1], ['i16', 1, 2], ['i32', 1, 4],
  ['i64', 1, 8], ['f64', 1, 8], ['iq1_m', 256, 56], ['bf16', 1, 2], undefined, undefined, undefined,
  ['tq1_0', 256, 54], ['tq2_0', 256, 66], undefined, undefined, undefined, ['mxfp4', 32, 17],
  ['nvfp4', 64, 36], ['q1_0', 128, 18], ['q2_0', 64, 18],
];

/** ggml's own short name of a tensor type (`f32`, `q4_K`, …), for status and messages. */
export function ggmlTypeName(type: number): string {
  return GGML_TYPES[type]?.[0] ?? `unknown(${type})`;
}

/** The ggml type id of a short name (`f16`, `q8_0`; case-insensitive), as llama.cpp's `--cache-type-k` takes it. */
export function ggmlTypeId(name: string): number | undefined {
  const lower = name.toLowerCase();
  const id = GGML_TYPES.findIndex((t) => t?.[0].toLowerCase() === lower);
  return id < 0 ? undefined : id;
}

/** Bytes of a tensor's data, or undefined for a type this table does not know. */
export function ggmlTensorBytes(type: number, dims: readonly number[]): number | undefined {
  const traits = GGML_TYPES[type];
  if (!traits) return undefined;
  const elements = dims.reduce((a, b) => a * b, 1);
  return Math.ceil(elements / traits[1]) * traits[2];
}

export function alignUp(offset: number, alignment: number): number {
  return Math.ceil(offset / alignment) * alignment;
}

/** Assigns data offsets the way ggml lays tensors out: in order, each aligned. */
export function layoutTensors(
  specs: readonly Omit<GgufTensorInfo, 'offset'>[],
  alignment = DEFAULT_ALIGNMENT,
): GgufTensorInfo[] {
  let offset = 0;
  return specs.map((spec) => {
    const bytes = ggmlTensorBytes(spec.type, spec.dims);
    if (bytes === undefined) throw new RangeError(`layoutTensors: unknown ggml type ${spec.type}`);
    const info = { ...spec, dims: [...spec.dims], offset };
    offset = alignUp(offset + bytes, alignment);
    return info;
  });
}

// ---------------------------------------------------------------------------------------------
// Reading

const CHUNK = 64 * 1024;

/** Buffered little-endian reads from a file handle; only ever holds about one chunk. */
class FileReader {
  readonly #fh: FileHandle;
  readonly #signal: AbortSignal | undefined;
  readonly size: number;
  readonly fail: (msg: string) => SlotwiseError;
  #buf = Buffer.alloc(0);
  #bufStart = 0; // file offset of #buf[0]
  #pos = 0; // file offset of the next byte to hand out

  constructor(fh: FileHandle, size: number, fail: (msg: string) => SlotwiseError, signal?: AbortSignal) {
    this.#fh = fh;
    this.size = size;
    this.fail = fail;
    this.#signal = signal;
  }

  get offset(): number {
    return this.#pos;
  }

  has(n: number): boolean {
    return this.#pos + n <= this.#bufStart + this.#buf.length;
  }

  /** Makes `n` bytes available; `what` names the item for the truncation message. */
  async need(n: number, what: string): Promise<void> {
    if (this.has(n)) return;
    if (this.#pos + n > this.size) {
      throw this.fail(`truncated: ${what} runs past the end of the file (size ${fileSize(this.size)})`);
    }
    this.#signal?.throwIfAborted();
    const want = Math.min(Math.max(n, CHUNK), this.size - this.#pos);
    const next = Buffer.allocUnsafe(want);
    const kept = this.#buf.copy(next, 0, this.#pos - this.#bufStart);
    let filled = kept;
    while (filled < want) {
      const { bytesRead } = await this.#fh.read(next, filled, want - filled, this.#pos + filled);
      if (bytesRead === 0) throw this.fail(`truncated: ${what} runs past the end of the file (it shrank while being read)`);
      filled += bytesRead;
    }
    this.#buf = next;
    this.#bufStart = this.#pos;
  }

  /** Advances past `n` bytes, buffered or not (without reading those that are not). */
  skip(n: number, what: string): void {
    if (this.has(n)) {
      this.#pos += n;
      return;
    }
    if (this.#pos + n > this.size) {
      throw this.fail(`truncated: ${what} runs past the end of the file (size ${fileSize(this.size)})`);
    }
    this.#signal?.throwIfAborted();
    this.#pos += n;
    this.#buf = Buffer.alloc(0);
    this.#bufStart = this.#pos;
  }

  /** Moves back to `offset`, which must still be buffered (undoes a take()). */
  rewind(offset: number): void {
    this.#pos = offset;
  }

  /** Advances past `n` buffered bytes and returns where they start in `buf`. */
  take(n: number): number {
    const at = this.#pos - this.#bufStart;
    this.#pos += n;
    return at;
  }

  get buf(): Buffer {
    return this.#buf;
  }

  u32(): number {
    return this.#buf.readUInt32LE(this.take(4));
  }

  u64(): bigint {
    return this.#buf.readBigUInt64LE(this.take(8));
  }

  i64(): bigint {
    return this.#buf.readBigInt64LE(this.take(8));
  }

  utf8(n: number): string {
    const at = this.take(n);
    return this.#buf.toString('utf8', at, at + n);
  }
}

/** Reads a GGUF file's header (metadata and tensor infos), never its tensor data. */
export async function readGgufHeader(path: string, opts: ReadGgufOptions = {}): Promise<GgufHeader> {
  opts.signal?.throwIfAborted();
  const fh = await openModel(path, opts.model);
  try {
    const stat = await fh.stat();
    if (!stat.isFile()) throw new SlotwiseError('SW_ERR_MODEL_FILE', `model path is not a file: ${path}`);
    const fail = (msg: string): SlotwiseError => new SlotwiseError('SW_ERR_GGUF_INVALID', `[${basename(path)}] ${msg}`);
    return await parseHeader(new FileReader(fh, stat.size, fail, opts.signal), path, opts.skipArrays ?? VOCAB_TABLES);
  } finally {
    await fh.close();
  }
}

async function openModel(path: string, model: string | undefined): Promise<FileHandle> {
  try {
    return await open(path, 'r');
  } catch (err) {
    const code = errnoCode(err);
    const hint = model ? ` — check models.${model}.path` : '';
    if (code === 'ENOENT' || code === 'ENOTDIR') {
      throw new SlotwiseError('SW_ERR_MODEL_FILE', `model file not found: ${path}${hint}`, { cause: err });
    }
    const reason = code === 'EACCES' || code === 'EPERM' ? 'permission denied' : (err as Error).message;
    throw new SlotwiseError('SW_ERR_MODEL_FILE', `cannot open model file ${path}: ${reason}`, { cause: err });
  }
}

async function parseHeader(r: FileReader, path: string, skipArrays: ReadonlySet<string>): Promise<GgufHeader> {
  const version = await readPreamble(r);
  await r.need(16, 'header');
  const tensorCount = countOf(r, r.u64(), 24, 'tensor infos');
  const kvCount = countOf(r, r.u64(), 13, 'metadata entries');
  const metadata = new Map<string, GgufValue>();
  const skipped = new Map<string, number>();
  for (let i = 0; i < kvCount; i++) {
    const key = await readString(r, `metadata key ${i}`);
    if (metadata.has(key) || skipped.has(key)) throw r.fail(`corrupt: duplicate metadata key "${key}"`);
    const value = await readValue(r, `metadata value "${key}"`, skipArrays.has(key));
    if (typeof value === 'number') skipped.set(key, value);
    else metadata.set(key, value);
  }
  const alignment = alignmentOf(r, metadata.get('general.alignment'));
  const tensors: GgufTensorInfo[] = [];
  for (let i = 0; i < tensorCount; i++) tensors.push(await readTensorInfo(r, i));
  const dataOffset = alignUp(r.offset, alignment);
  for (const t of tensors) checkTensorData(r, t, dataOffset, alignment);
  return { path, fileSize: r.size, version, metadata, tensors, alignment, dataOffset, skipped };
}

async function readPreamble(r: FileReader): Promise<2 | 3> {
  if (r.size < 4) throw r.fail(`not a GGUF file (only ${r.size} bytes)`);
  await r.need(4, 'magic');
  const at = r.take(4);
  const magic = r.buf.subarray(at, at + 4);
  if (magic.toString('latin1') !== MAGIC) {
    throw r.fail(`not a GGUF file (magic "${escapeBytes(magic)}", expected "${MAGIC}")`);
  }
  await r.need(4, 'header');
  const version = r.u32();
  if (version === 2 || version === 3) return version;
  // A big-endian file reads its version byte-swapped (3 -> 50331648).
  const hint = version > 0xffff ? '; a big-endian file?' : version === 1 ? '; v1 is obsolete, re-convert the model' : '';
  throw r.fail(`unsupported GGUF version ${version} (expected 2 or 3${hint})`);
}

function escapeBytes(bytes: Uint8Array): string {
  let out = '';
  for (const b of bytes) {
    const printable = b >= 0x20 && b < 0x7f && b !== 0x22 && b !== 0x5c;
    out += printable ? String.fromCharCode(b) : `\\x${b.toString(16).padStart(2, '0')}`;
  }
  return out;
}

/** A count from the header; one that could not fit in the file is corruption, not truncation. */
function countOf(r: FileReader, n: bigint, minItemBytes: number, what: string): number {
  if (n > BigInt(Math.floor(r.size / minItemBytes))) {
    throw r.fail(`corrupt: header claims ${n} ${what}, more than fit in the file (size ${fileSize(r.size)})`);
  }
  return Number(n);
}

async function readString(r: FileReader, what: string): Promise<string> {
  await r.need(8, what);
  const n = stringLength(r, what);
  await r.need(n, what);
  return r.utf8(n);
}

/** readString without a promise when the string is buffered already: a vocab is 100,000s of strings
 * (Llama 3: 128k tokens and 280k merges), and two awaits each took most of the header's read time. */
function bufferedString(r: FileReader, what: string): string | undefined {
  if (!r.has(8)) return undefined;
  const start = r.offset;
  const n = stringLength(r, what);
  if (r.has(n)) return r.utf8(n);
  r.rewind(start);
  return undefined;
}

/** Reads a string's length field and checks it. */
function stringLength(r: FileReader, what: string): number {
  const len = r.u64();
  if (len > BigInt(r.size)) {
    throw r.fail(`corrupt: ${what} claims a string of ${len} bytes, more than the whole file (size ${fileSize(r.size)})`);
  }
  if (len > MAX_STRING_BYTES) throw r.fail(`corrupt: ${what} claims a string of ${len} bytes (limit ${MAX_STRING_BYTES})`);
  return Number(len);
}

/** The value; with `skipArray`, an array is read past and only its item count returned. */
async function readValue(r: FileReader, what: string, skipArray = false): Promise<GgufValue | number> {
  await r.need(4, what);
  const typeId = r.u32();
  if (typeId === ARRAY_TYPE_ID) return readArray(r, what, skipArray);
  const codec = codecOf(r, typeId, what);
  if (codec.name === 'string') return { type: 'string', value: await readString(r, what) };
  await r.need(codec.size, what);
  return { type: codec.name, value: codec.read(r.buf, r.take(codec.size)) } as GgufScalar;
}

async function readArray(r: FileReader, what: string, skip: boolean): Promise<GgufArray | number> {
  await r.need(12, what);
  const typeId = r.u32();
  if (typeId === ARRAY_TYPE_ID) throw r.fail(`corrupt: ${what} is an array of arrays, which GGUF does not allow`);
  const codec = codecOf(r, typeId, what);
  const count = r.u64();
  const minItemBytes = codec.size || 8;
  if (count > BigInt(Math.floor(r.size / minItemBytes))) {
    throw r.fail(`corrupt: ${what} claims ${count} array items, more than fit in the file (size ${fileSize(r.size)})`);
  }
  if (count > MAX_ARRAY_ITEMS) throw r.fail(`corrupt: ${what} claims ${count} array items (limit ${MAX_ARRAY_ITEMS})`);
  const n = Number(count);
  if (skip) {
    await skipItems(r, codec, n, what);
    return n;
  }
  const items: (string | number | bigint | boolean)[] = [];
  for (let i = 0; i < n; i++) {
    if (codec.name === 'string') {
      items.push(bufferedString(r, what) ?? (await readString(r, what)));
      continue;
    }
    // Fill a chunk's worth of items at once rather than awaiting per item.
    if (!r.has(codec.size)) await r.need(Math.min(codec.size * (n - i), CHUNK), what);
    items.push(codec.read(r.buf, r.take(codec.size)));
  }
  return { type: 'array', itemType: codec.name, value: items } as GgufArray;
}

/** Reads past `n` items, checking each string's length as readString does. */
async function skipItems(r: FileReader, codec: ValueCodec, n: number, what: string): Promise<void> {
  if (codec.name !== 'string') return r.skip(codec.size * n, what);
  for (let i = 0; i < n; i++) {
    if (!r.has(8)) await r.need(8, what);
    r.skip(stringLength(r, what), what);
  }
}

function codecOf(r: FileReader, typeId: number, what: string): ValueCodec {
  const codec = CODEC_BY_ID.get(typeId);
  if (!codec) throw r.fail(`corrupt: ${what} has unknown type ${typeId}`);
  return codec;
}

function alignmentOf(r: FileReader, value: GgufValue | undefined): number {
  if (value === undefined) return DEFAULT_ALIGNMENT;
  if (value.type !== 'uint32') throw r.fail(`corrupt: general.alignment must be of type uint32, not ${value.type}`);
  const a = value.value;
  if (a === 0 || (a & (a - 1)) !== 0) throw r.fail(`corrupt: general.alignment ${a} is not a power of 2`);
  return a;
}

async function readTensorInfo(r: FileReader, i: number): Promise<GgufTensorInfo> {
  const name = await readString(r, `tensor info ${i}`);
  const what = `tensor info "${name}"`;
  await r.need(4, what);
  const nDims = r.u32();
  if (nDims > MAX_DIMS) throw r.fail(`corrupt: tensor "${name}" has ${nDims} dimensions (at most ${MAX_DIMS})`);
  await r.need(8 * nDims + 12, what);
  const dims: number[] = [];
  for (let d = 0; d < nDims; d++) {
    const size = r.i64();
    if (size < 0n || size > BigInt(Number.MAX_SAFE_INTEGER)) {
      throw r.fail(`corrupt: tensor "${name}" has an invalid size ${size} in dimension ${d}`);
    }
    dims.push(Number(size));
  }
  const type = r.u32();
  const offset = r.u64();
  if (offset > BigInt(r.size)) throw r.fail(`corrupt: tensor "${name}" has offset ${offset}, beyond the end of the file`);
  return { name, dims, type, offset: Number(offset) };
}

/** A cut-off download passes every header check; this catches it before llama-server does. */
function checkTensorData(r: FileReader, t: GgufTensorInfo, dataOffset: number, alignment: number): void {
  if (t.offset % alignment !== 0) {
    throw r.fail(`corrupt: tensor "${t.name}" offset ${t.offset} is not a multiple of the alignment ${alignment}`);
  }
  const bytes = ggmlTensorBytes(t.type, t.dims);
  if (bytes === undefined) return; // a type newer than this table: let llama-server judge it
  const end = dataOffset + t.offset + bytes;
  if (end > r.size) {
    throw r.fail(
      `truncated: tensor "${t.name}" data ends at ${fileSize(end)}, past the end of the file (size ${fileSize(r.size)}) — was the download interrupted?`,
    );
  }
}

/** File sizes in messages: decimal units, one decimal (`40 B`, `1.2 MB`, `4.1 GB`), as download pages state them. */
function fileSize(n: number): string {
  return formatBytes(n, { decimal: true, digits: 1 });
}

// ---------------------------------------------------------------------------------------------
// Writing

/** Growable byte buffer for the header; tensor data is streamed by the caller, never held here. */
class ByteWriter {
  #buf = Buffer.alloc(CHUNK);
  #len = 0;

  get length(): number {
    return this.#len;
  }

  #reserve(n: number): number {
    if (this.#len + n > this.#buf.length) {
      const next = Buffer.alloc(Math.max(this.#buf.length * 2, this.#len + n));
      this.#buf.copy(next, 0, 0, this.#len);
      this.#buf = next;
    }
    const at = this.#len;
    this.#len += n;
    return at;
  }

  // Each write reserves first: reserving may swap #buf for a bigger one.
  u32(v: number): void {
    const at = this.#reserve(4);
    this.#buf.writeUInt32LE(v, at);
  }

  u64(v: number | bigint): void {
    const at = this.#reserve(8);
    this.#buf.writeBigUInt64LE(BigInt(v), at);
  }

  string(s: string): void {
    const n = Buffer.byteLength(s, 'utf8');
    this.u64(n);
    const at = this.#reserve(n);
    this.#buf.write(s, at, n, 'utf8');
  }

  item(codec: ValueCodec, v: string | number | bigint | boolean): void {
    if (typeof v === 'string') return this.string(v);
    const at = this.#reserve(codec.size);
    codec.write(this.#buf, at, v);
  }

  /** Zero bytes up to the next multiple of `alignment` (the buffer starts zeroed). */
  pad(alignment: number): void {
    this.#reserve(alignUp(this.#len, alignment) - this.#len);
  }

  finish(): Buffer {
    return this.#buf.subarray(0, this.#len);
  }
}

function codecNamed(name: GgufItemType): ValueCodec {
  const codec = CODEC_BY_NAME.get(name);
  if (!codec) throw new RangeError(`unknown GGUF type ${name}`);
  return codec;
}

function encodeValue(w: ByteWriter, value: GgufValue): void {
  if (value.type !== 'array') {
    const codec = codecNamed(value.type);
    w.u32(codec.id);
    w.item(codec, value.value);
    return;
  }
  const codec = codecNamed(value.itemType);
  w.u32(ARRAY_TYPE_ID);
  w.u32(codec.id);
  w.u64(value.value.length);
  for (const item of value.value) w.item(codec, item);
}

/** Encodes a GGUF v3 header (metadata and tensor infos) padded to the data offset:
 * the returned length is where the first tensor's data starts. */
export function encodeGgufHeader(header: GgufWritable): Buffer {
  const alignValue = header.metadata.get('general.alignment');
  if (alignValue && alignValue.type !== 'uint32') throw new RangeError('general.alignment must be a uint32');
  const alignment = alignValue?.value ?? DEFAULT_ALIGNMENT;
  const w = new ByteWriter();
  w.u32(Buffer.from(MAGIC, 'latin1').readUInt32LE(0));
  w.u32(3);
  w.u64(header.tensors.length);
  w.u64(header.metadata.size);
  for (const [key, value] of header.metadata) {
    w.string(key);
    encodeValue(w, value);
  }
  for (const t of header.tensors) {
    w.string(t.name);
    w.u32(t.dims.length);
    for (const d of t.dims) w.u64(d);
    w.u32(t.type);
    w.u64(t.offset);
  }
  w.pad(alignment);
  return w.finish();
}

// ---------------------------------------------------------------------------------------------
// Summary

/** The facts about a model that status shows. Numeric fields are 0 where the architecture has
 * no such key (e.g. Mamba has no attention head count). */
export interface GgufSummary {
  architecture: string;
  name?: string;
  /** `<arch>.block_count`. */
  layers: number;
  /** Training context, tokens. */
  contextLength: number;
  embeddingLength: number;
  /** Largest per-layer value where the file stores one per layer. */
  headCount: number;
  vocabSize?: number;
  /** `general.file_type` (llama_ftype: 0 = all F32, 1 = mostly F16, 15 = Q4_K_M, …). */
  fileType?: number;
}

/** A metadata value as a number: bigints converted, per-layer arrays reduced to their maximum. */
export function ggufNumber(header: Pick<GgufHeader, 'metadata'>, key: string): number | undefined {
  const v = header.metadata.get(key);
  if (!v || v.type === 'bool' || v.type === 'string') return undefined;
  if (v.type !== 'array') return Number(v.value);
  if (v.itemType === 'bool' || v.itemType === 'string' || v.value.length === 0) return undefined;
  let max = -Infinity;
  for (const item of v.value as (number | bigint)[]) max = Math.max(max, Number(item));
  return max;
}

export function ggufString(header: Pick<GgufHeader, 'metadata'>, key: string): string | undefined {
  const v = header.metadata.get(key);
  return v?.type === 'string' ? v.value : undefined;
}

/** Status facts of a model; fails when the file names no architecture. */
export function summarizeGguf(header: GgufHeader): GgufSummary {
  const arch = ggufString(header, 'general.architecture');
  if (!arch) {
    throw new SlotwiseError(
      'SW_ERR_GGUF_INVALID',
      `[${basename(header.path)}] no "general.architecture" in the metadata: not a model file`,
    );
  }
  const tokens = header.metadata.get('tokenizer.ggml.tokens');
  return {
    architecture: arch,
    name: ggufString(header, 'general.name'),
    layers: ggufNumber(header, `${arch}.block_count`) ?? 0,
    contextLength: ggufNumber(header, `${arch}.context_length`) ?? 0,
    embeddingLength: ggufNumber(header, `${arch}.embedding_length`) ?? 0,
    headCount: ggufNumber(header, `${arch}.attention.head_count`) ?? 0,
    vocabSize: tokens?.type === 'array' ? tokens.value.length : ggufNumber(header, `${arch}.vocab_size`),
    fileType: ggufNumber(header, 'general.file_type'),
  };
}
