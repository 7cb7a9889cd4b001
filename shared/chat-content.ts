// A chat message's content parts as the daemon reads them: its text with the media left out (job titles
// in the daemon and the extension, checks on text alone), and which parts carry media and where their data
// sits (the media checks of the chat route, the prompt-cache key).
import type { ChatContentPart, Modality } from './protocol';

const READS: Record<Modality, string> = { vision: 'images', audio: 'audio' };

/** What a projector reads, in words: `images`, `audio`, `images and audio` (status, the Slots view, refusals). */
export function readsText(modalities: readonly Modality[]): string {
  return modalities.map((m) => READS[m]).join(' and ');
}

interface MediaPart {
  what: string;
  /** The encoder it needs: video is read as frames, by the vision one (mtmd_helper_support_video). */
  needs: Modality;
  data: (p: Record<string, unknown>) => unknown;
}

/** Content parts that carry media (OpenAI's chat and Responses ones, and llama-server's video ones), what each is, and where its data sits. */
const MEDIA_PARTS: Readonly<Record<string, MediaPart>> = {
  image_url: { what: 'an image', needs: 'vision', data: (p) => (p.image_url as { url?: unknown } | undefined)?.url },
  // The Responses API's (/v1/responses): its image_url is the URL itself.
  input_image: { what: 'an image', needs: 'vision', data: (p) => (typeof p.image_url === 'string' ? p.image_url : (p.image_url as { url?: unknown } | undefined)?.url) },
  input_audio: { what: 'audio', needs: 'audio', data: (p) => dataOrUrl(p.input_audio) },
  input_video: { what: 'a video', needs: 'vision', data: (p) => dataOrUrl(p.input_video) },
  video_url: { what: 'a video', needs: 'vision', data: (p) => dataOrUrl(p.video_url) },
};

/** llama-server reads a media part's `data`, else its `url` (tools/server/server-common.cpp). */
function dataOrUrl(o: unknown): unknown {
  const m = (o ?? {}) as { data?: unknown; url?: unknown };
  return m.data ?? m.url;
}

/** What a media part is (`an image`, `audio`, `a video`), the encoder it needs, and its data (a data: URL, base64, or a URL); undefined for a part without media. */
export function mediaOf(part: unknown): { what: string; needs: Modality; data: unknown } | undefined {
  const p = (part ?? {}) as Record<string, unknown>;
  const media = typeof p.type === 'string' && Object.hasOwn(MEDIA_PARTS, p.type) ? MEDIA_PARTS[p.type] : undefined;
  return media && { what: media.what, needs: media.needs, data: media.data(p) };
}

/**
 * Whether a value of a request body is where media data sits: a media part, or a completion prompt's
 * `{"prompt_string", "multimodal_data": [base64, …]}` (llama-server's multimodal form).
 */
export function holdsMedia(container: unknown): boolean {
  if (mediaOf(container)) return true;
  return !Array.isArray(container) && Array.isArray((container as { multimodal_data?: unknown } | null)?.multimodal_data);
}

export function contentText(content: string | readonly ChatContentPart[]): string {
  return typeof content === 'string' ? content : content.map((p) => (p.type === 'text' ? p.text : '')).join('');
}
