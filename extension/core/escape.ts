// Escaping for the two markups the extension renders: webview HTML and hover Markdown.

/** Escapes text for HTML element content and attribute values. */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

/** Escapes text for a Markdown table cell or inline text (no links, no HTML, no pipes). */
export function escapeMarkdown(text: string): string {
  return text.replace(/[\\`*_[\]()#|<>~]/g, (c) => `\\${c}`);
}
