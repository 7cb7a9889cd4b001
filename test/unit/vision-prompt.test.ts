// Images and audio in prompts: the image typing the CLI and the extension share, the audio typing of
// `prompt --audio`, the extension's Ask About Image job and model choice, and its contributions in
// package.json (an image's context menu).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { audioFormat, audioPartOf, imageMime, imagePartOf } from '../../shared/media-data';
import { encodeWav } from '../helpers/wav';
import { imagePromptParams, visionModels } from '../../extension/core/vision';
import type { ModelStatus } from '../../shared/protocol';
import { encodePng } from '../helpers/png';

describe('image typing', () => {
  it('knows PNG, JPEG, GIF, WebP and BMP by their first bytes, and nothing else', () => {
    const png = encodePng(2, 2, () => [1, 2, 3]);
    expect(imageMime(png)).toBe('image/png');
    expect(imageMime(Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0, 0]))).toBe('image/jpeg');
    expect(imageMime(Buffer.from('GIF89a...'))).toBe('image/gif');
    expect(imageMime(Buffer.from('RIFF\0\0\0\0WEBPVP8 '))).toBe('image/webp');
    expect(imageMime(Buffer.from('BM\0\0'))).toBe('image/bmp');
    expect(imageMime(Buffer.from('{"models":{}}'))).toBeUndefined();
    expect(imageMime(new Uint8Array())).toBeUndefined();
    expect(imagePartOf(png)).toEqual({ type: 'image_url', image_url: { url: `data:image/png;base64,${png.toString('base64')}` } });
  });
});

describe('audio typing', () => {
  it('knows WAV, MP3 (a tag or a frame) and FLAC by their first bytes, and nothing else', () => {
    const wav = encodeWav(0.01);
    expect(audioFormat(wav)).toBe('wav');
    expect(audioFormat(Buffer.from('ID3\u0004\0\0'))).toBe('mp3');
    expect(audioFormat(Buffer.from([0xff, 0xfb, 0x90, 0x64]))).toBe('mp3');
    expect(audioFormat(Buffer.from('fLaC\0\0\0"'))).toBe('flac');
    expect(audioFormat(Buffer.from('RIFF\0\0\0\0WEBPVP8 '))).toBeUndefined(); // RIFF, but a picture
    expect(audioFormat(Buffer.from([0xff, 0xd8, 0xff, 0xe0]))).toBeUndefined(); // JPEG's 0xff is no frame sync
    expect(audioFormat(new Uint8Array())).toBeUndefined();
    expect(audioPartOf(wav)).toEqual({ type: 'input_audio', input_audio: { data: wav.toString('base64'), format: 'wav' } });
  });
});

describe('Ask About Image', () => {
  const model = (name: string, modalities?: ('vision' | 'audio')[]) => ({ name, info: { fileBytes: 1, ...(modalities ? { modalities } : {}) } }) as unknown as ModelStatus;

  it('offers the models whose projector reads images', () => {
    expect(visionModels([model('text'), model('eyes', ['vision']), model('ears', ['audio']), model('both', ['vision', 'audio'])])).toEqual(['eyes', 'both']);
  });

  it('asks the question with the picture in one chat message, and names a file that is no image', () => {
    const png = encodePng(2, 2, () => [9, 9, 9]);
    expect(imagePromptParams(png, 'shot.png', 'What is wrong here?', { model: 'eyes', maxTokens: 64 })).toEqual({
      model: 'eyes',
      maxTokens: 64,
      messages: [{ role: 'user', content: [{ type: 'text', text: 'What is wrong here?' }, { type: 'image_url', image_url: { url: `data:image/png;base64,${png.toString('base64')}` } }] }],
    });
    expect(() => imagePromptParams(Buffer.from('text'), 'notes.png', 'q', {})).toThrow('notes.png is not a PNG, JPEG, GIF, WebP or BMP image');
  });

  it("is in the palette and in an image file's context menu, while connected", () => {
    const pkg = JSON.parse(readFileSync(join(__dirname, '../../package.json'), 'utf8')) as { contributes: { commands: { command: string }[]; menus: Record<string, { command: string; when: string }[]> } };
    expect(pkg.contributes.commands.map((c) => c.command)).toContain('slotwise.askAboutImage');
    const menu = pkg.contributes.menus['explorer/context']!.find((m) => m.command === 'slotwise.askAboutImage')!;
    const re = new RegExp(/=~ \/(.+)\/i$/.exec(menu.when)![1]!, 'i');
    expect(['.png', '.JPG', '.jpeg', '.webp'].every((e) => re.test(e))).toBe(true);
    expect(re.test('.ts')).toBe(false);
    expect(menu.when).toContain('slotwise.connected');
    const source = readFileSync(join(__dirname, '../../extension/commands/prompt-commands.ts'), 'utf8');
    expect(source).toContain("registerSafe(s.log, 'slotwise.askAboutImage'");
  });
});
