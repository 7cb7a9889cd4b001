// Writes a GGUF file of random F32 weights atomically: the shared half of the tiny model and tiny
// projector writers (gguf/tiny-model.ts, gguf/tiny-projector.ts).
import { createHash, randomBytes, type Hash } from 'node:crypto';
import { open, rename, unlink, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { SlotwiseError } from '../shared/errors';
import { mulberry32 } from '../platform/prng';
import { errnoCode } from '../platform/errno';
import { encodeGgufHeader, layoutTensors, type GgufTensorInfo, type GgufValue } from './gguf';

export interface WrittenGguf {
  /** File size in bytes. */
  bytes: number;
  /** Hex SHA-256 of the file, computed while writing. */
  sha256: string;
}

/** A tensor to write: its name, dims fastest-first as GGUF stores them, and ggml type (F32 only). */
export type TensorSpec = Omit<GgufTensorInfo, 'offset'>;

/** ggml type id of F32, the only type written (general.file_type 0 = all F32). */
export const F32 = 0;
/** Small weights keep activations tame: generation is random text, never NaN. */
const WEIGHT_SCALE = 0.02;
const CHUNK_FLOATS = 64 * 1024;

export interface RandomGgufOptions {
  signal?: AbortSignal;
  /** Rows (index along the slowest dim) written as zeros, by tensor name; the rest stay as `seed` makes them. */
  zeroRows?: ReadonlyMap<string, ReadonlySet<number>>;
}

/** Writes `metadata` and `specs` (laid out in order) with weights from `seed`: same inputs → byte-identical file. */
export async function writeRandomGguf(
  outPath: string,
  metadata: Map<string, GgufValue>,
  specs: readonly TensorSpec[],
  seed: number,
  opts: RandomGgufOptions = {},
): Promise<WrittenGguf> {
  const tensors = layoutTensors(specs);
  const header = encodeGgufHeader({ metadata, tensors });
  return writeAtomically(outPath, async (sink) => {
    await sink.write(header);
    await writeTensorData(sink, tensors, header.length, seed, opts);
  });
}

/** Streams every tensor in layout order, a chunk at a time; norms are 1.0, the rest uniform ±scale. */
async function writeTensorData(
  sink: Sink,
  tensors: readonly GgufTensorInfo[],
  dataOffset: number,
  seed: number,
  { signal, zeroRows }: RandomGgufOptions,
): Promise<void> {
  const random = mulberry32(seed);
  const chunk = Buffer.alloc(CHUNK_FLOATS * 4);
  const view = new DataView(chunk.buffer, chunk.byteOffset, chunk.byteLength);
  for (const t of tensors) {
    await sink.write(Buffer.alloc(dataOffset + t.offset - sink.bytes)); // alignment padding
    const isNorm = t.name.endsWith('_norm.weight');
    const zero = zeroRows?.get(t.name);
    const rowFloats = t.dims.slice(0, -1).reduce((a, b) => a * b, 1);
    const total = t.dims.reduce((a, b) => a * b, 1);
    for (let done = 0; done < total; ) {
      signal?.throwIfAborted();
      const n = Math.min(total - done, CHUNK_FLOATS);
      for (let i = 0; i < n; i++) {
        // A zeroed row still draws its numbers, so every other weight is the one `seed` gives it.
        const w = isNorm ? 1 : (random() * 2 - 1) * WEIGHT_SCALE;
        view.setFloat32(i * 4, zero?.has(Math.floor((done + i) / rowFloats)) ? 0 : w, true);
      }
      await sink.write(chunk.subarray(0, n * 4));
      done += n;
    }
  }
}

interface Sink {
  /** Bytes written so far. */
  readonly bytes: number;
  write(data: Buffer): Promise<void>;
}

/** Runs `fill` against a temp file beside `outPath`, then renames it into place: a crash or
 * error never leaves a partial file at `outPath`. */
async function writeAtomically(outPath: string, fill: (sink: Sink) => Promise<void>): Promise<WrittenGguf> {
  const tmp = join(dirname(outPath), `.${basename(outPath)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  const fh = await openForWrite(tmp, outPath);
  const hash = createHash('sha256');
  const sink = fileSink(fh, hash);
  try {
    await fill(sink);
    await fh.sync(); // data on disk before the rename makes it visible
    await fh.close();
    await rename(tmp, outPath);
  } catch (err) {
    await fh.close().catch((closeErr: unknown) => {
      // Already closed (the failure came after close): nothing left to release.
      void closeErr;
    });
    await unlink(tmp).catch((unlinkErr: unknown) => {
      // The original error matters more; a leftover dot-file temp is harmless.
      void unlinkErr;
    });
    throw err;
  }
  return { bytes: sink.bytes, sha256: hash.digest('hex') };
}

async function openForWrite(tmp: string, outPath: string): Promise<FileHandle> {
  try {
    return await open(tmp, 'wx', 0o644);
  } catch (err) {
    const reason = errnoCode(err) ?? (err as Error).message;
    throw new SlotwiseError('SW_ERR_MODEL_FILE', `cannot write model file ${outPath}: ${reason}`, { cause: err });
  }
}

function fileSink(fh: FileHandle, hash: Hash): Sink {
  let bytes = 0;
  return {
    get bytes() {
      return bytes;
    },
    async write(data: Buffer) {
      hash.update(data);
      // A short write is legal for write(2); keep going until the whole buffer is out.
      for (let done = 0; done < data.length; ) {
        const { bytesWritten } = await fh.write(data, done, data.length - done, bytes + done);
        done += bytesWritten;
      }
      bytes += data.length;
    },
  };
}
