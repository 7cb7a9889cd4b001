// The text of a chat message's content, its image parts left out: job titles (daemon, extension) and checks on text alone.
import type { ChatContentPart } from './protocol';

export function contentText(content: string | readonly ChatContentPart[]): string {
  return typeof content === 'string' ? content : content.map((p) => (p.type === 'text' ? p.text : '')).join('');
}
