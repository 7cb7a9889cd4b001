// Pure parser for `rocm-smi … --json`. Its keys drift between ROCm releases ("Average Graphics Package Power (W)"
// became "Current Socket Graphics Package Power (W)", "(c)" became "(C)"), so fields are found by pattern, not name.
import type { GpuStatus } from '../../shared/protocol';
import { parseReading, readingOrUndefined } from './reading';

/** The flags of one poll: use, memory, temperature, power and the product name, as JSON. */
export const ROCM_ARGS = ['--showuse', '--showmemuse', '--showmeminfo', 'vram', '--showtemp', '--showpower', '--showproductname', '--json'];

export interface RocmParse {
  gpus: GpuStatus[];
  /** One line per problem (no JSON, a card without readings); the caller prefixes nothing, the text names rocm-smi. */
  warnings: string[];
}

const MIB = 1024 * 1024;

// First match wins: the edge sensor is what `rocm-smi` shows by default; power names from newest to oldest.
const FIELDS = {
  util: [/^gpu use \(%\)$/i],
  vramTotal: [/^vram total memory \(b\)$/i],
  vramUsed: [/^vram total used memory \(b\)$/i],
  temp: [/^temperature \(sensor edge\) \(c\)$/i, /^temperature \(sensor junction\) \(c\)$/i, /^temperature \(sensor [^)]*\) \(c\)$/i],
  power: [/^current socket graphics package power \(w\)$/i, /^average graphics package power \(w\)$/i, /^(?!max)[a-z ]*graphics package power \(w\)$/i],
  name: [/^card series$/i, /^device name$/i, /^card model$/i, /^card sku$/i],
} satisfies Record<string, RegExp[]>;

function pick(card: Record<string, unknown>, patterns: RegExp[]): unknown {
  const keys = Object.keys(card);
  for (const re of patterns) {
    const key = keys.find((k) => re.test(k.trim()));
    if (key !== undefined) return card[key];
  }
  return undefined;
}

export function parseRocmJson(text: string): RocmParse {
  // Some releases print warnings ("WARNING: …") around the JSON: take the outermost object.
  const start = text.indexOf('{');
  const end = text.lastIndexOf('}');
  if (start < 0 || end < start) return { gpus: [], warnings: [`rocm-smi: no JSON in output ${JSON.stringify(text.trim().slice(0, 120))}`] };
  let doc: unknown;
  try {
    doc = JSON.parse(text.slice(start, end + 1));
  } catch (err) {
    return { gpus: [], warnings: [`rocm-smi: could not parse JSON (${(err as Error).message})`] };
  }
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) return { gpus: [], warnings: ['rocm-smi: JSON output is not an object'] };

  const gpus: GpuStatus[] = [];
  const warnings: string[] = [];
  for (const [key, value] of Object.entries(doc)) {
    const m = /^card(\d+)$/i.exec(key);
    if (!m) continue; // "system" and other non-card sections
    const index = Number(m[1]);
    if (!value || typeof value !== 'object' || Array.isArray(value)) {
      warnings.push(`rocm-smi: ${key} is not an object`);
      continue;
    }
    const card = value as Record<string, unknown>;
    const util = parseReading(pick(card, FIELDS.util));
    const total = parseReading(pick(card, FIELDS.vramTotal));
    const used = parseReading(pick(card, FIELDS.vramUsed));
    const bad = [
      ['GPU use', util],
      ['VRAM total', total],
      ['VRAM used', used],
    ].filter(([, r]) => r === 'invalid');
    if (bad.length) warnings.push(`rocm-smi: ${key} has unreadable ${bad.map(([n]) => n).join(', ')}`);
    const name = pick(card, FIELDS.name);
    const gpu: GpuStatus = {
      index,
      name: typeof name === 'string' && name.trim() ? name.trim() : `AMD GPU ${index}`,
      utilizationPct: typeof util === 'number' ? util : 0,
      memoryUsedMiB: typeof used === 'number' ? Math.round(used / MIB) : 0,
      memoryTotalMiB: typeof total === 'number' ? Math.round(total / MIB) : 0,
    };
    const temp = readingOrUndefined(pick(card, FIELDS.temp));
    if (temp !== undefined) gpu.temperatureC = temp;
    const power = readingOrUndefined(pick(card, FIELDS.power));
    if (power !== undefined) gpu.powerW = power;
    gpus.push(gpu);
  }
  if (gpus.length === 0 && warnings.length === 0) warnings.push('rocm-smi: no GPU (cardN) in its output');
  return { gpus: gpus.sort((a, b) => a.index - b.index), warnings };
}
