// Minimal WAV encoder for audio requests in tests: 16-bit PCM, mono, a tone of a given pitch.

/** `seconds` of a sine tone at `hz` as a 16-bit mono PCM WAV at `rate` samples a second. */
export function encodeWav(seconds: number, hz = 440, rate = 16_000): Buffer {
  const n = Math.round(seconds * rate);
  const data = Buffer.alloc(n * 2);
  for (let i = 0; i < n; i++) data.writeInt16LE(Math.round(8000 * Math.sin((2 * Math.PI * hz * i) / rate)), i * 2);
  const h = Buffer.alloc(44);
  h.write('RIFF', 0, 'latin1');
  h.writeUInt32LE(36 + data.length, 4);
  h.write('WAVEfmt ', 8, 'latin1');
  h.writeUInt32LE(16, 16); // fmt chunk size
  h.writeUInt16LE(1, 20); // PCM
  h.writeUInt16LE(1, 22); // mono
  h.writeUInt32LE(rate, 24);
  h.writeUInt32LE(rate * 2, 28); // bytes a second
  h.writeUInt16LE(2, 32); // bytes a frame
  h.writeUInt16LE(16, 34); // bits a sample
  h.write('data', 36, 'latin1');
  h.writeUInt32LE(data.length, 40);
  return Buffer.concat([h, data]);
}
