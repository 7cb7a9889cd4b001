// The GPU webview's HTML shell: strict CSP (nonce for the one script and style), theme CSS variables only.
import { escapeHtml } from './escape';

export interface ShellOptions {
  /** `webview.cspSource`. */
  cspSource: string;
  /** Fresh per render; only elements carrying it may run or style. */
  nonce: string;
  /** `webview.asWebviewUri(dist/webview/gpu.js)` as a string. */
  scriptUri: string;
}

/** A random nonce (base64url, 128 bits) from the given byte source (crypto.getRandomValues in the host). */
export function makeNonce(randomBytes: (n: number) => Uint8Array): string {
  return Buffer.from(randomBytes(16)).toString('base64url');
}

export function gpuShellHtml(o: ShellOptions): string {
  const csp = [`default-src 'none'`, `img-src ${o.cspSource} data:`, `style-src 'nonce-${o.nonce}'`, `script-src 'nonce-${o.nonce}'`, `font-src ${o.cspSource}`].join('; ');
  return `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="UTF-8">
<meta http-equiv="Content-Security-Policy" content="${escapeHtml(csp)}">
<meta name="viewport" content="width=device-width, initial-scale=1.0">
<title>Slotwise GPU</title>
<style nonce="${escapeHtml(o.nonce)}">${GPU_CSS}</style>
</head>
<body>
<main id="root" aria-live="polite"><p class="message">Loading…</p></main>
<script nonce="${escapeHtml(o.nonce)}" src="${escapeHtml(o.scriptUri)}"></script>
</body>
</html>`;
}

/** Styles from the theme's CSS variables only, so every theme (high contrast included) looks right. */
export const GPU_CSS = `
body { padding: 0 12px 12px; color: var(--vscode-foreground); font-family: var(--vscode-font-family); font-size: var(--vscode-font-size); }
.message { color: var(--vscode-descriptionForeground); margin: 8px 0; }
.warning { color: var(--vscode-editorWarning-foreground); margin: 4px 0; }
.card { border: 1px solid var(--vscode-widget-border, var(--vscode-panel-border)); border-radius: 4px; padding: 6px 8px; margin: 8px 0; background: var(--vscode-sideBar-background); }
.card h3 { font-size: 1em; font-weight: 600; margin: 0 0 2px; }
.subtitle { color: var(--vscode-descriptionForeground); font-size: 0.9em; margin-bottom: 4px; }
.gauge { margin: 6px 0; }
.gauge-head { display: flex; justify-content: space-between; gap: 8px; }
.gauge-head .value { font-variant-numeric: tabular-nums; color: var(--vscode-descriptionForeground); }
svg.bar { display: block; width: 100%; height: 6px; margin: 3px 0; }
svg.bar .track { fill: var(--vscode-input-background, rgba(128,128,128,0.2)); }
svg.bar .fill.level-ok { fill: var(--vscode-charts-blue); }
svg.bar .fill.level-warn { fill: var(--vscode-charts-yellow); }
svg.bar .fill.level-high { fill: var(--vscode-charts-red); }
svg.spark { display: block; width: 100%; height: 24px; }
svg.spark polyline { fill: none; stroke: var(--vscode-charts-blue); stroke-width: 1.2; vector-effect: non-scaling-stroke; }
svg.spark .baseline { stroke: var(--vscode-widget-border, rgba(128,128,128,0.35)); stroke-width: 1; vector-effect: non-scaling-stroke; }
/* The memory bar: a model's colour by its place in the status (seg-c0…c5), other processes muted, free as the track. */
.membar { margin: 8px 0 4px; }
svg.stack { display: block; width: 100%; height: 12px; margin: 3px 0; }
svg.stack .seg { stroke: var(--vscode-sideBar-background, var(--vscode-editor-background)); stroke-width: 1; vector-effect: non-scaling-stroke; }
/* A frame around the bar and each swatch, so free memory (the track colour) shows on every theme. */
svg.stack .frame { fill: none; }
svg.stack .frame, svg.swatch .seg { stroke: var(--vscode-widget-border, var(--vscode-contrastBorder, rgba(128,128,128,0.6))); stroke-width: 1; vector-effect: non-scaling-stroke; }
.seg-c0 { fill: var(--vscode-charts-blue); }
.seg-c1 { fill: var(--vscode-charts-purple); }
.seg-c2 { fill: var(--vscode-charts-orange); }
.seg-c3 { fill: var(--vscode-charts-green); }
.seg-c4 { fill: var(--vscode-charts-yellow); }
.seg-c5 { fill: var(--vscode-charts-red); }
.seg-other { fill: var(--vscode-descriptionForeground); fill-opacity: 0.45; }
.seg-reserved { fill: var(--vscode-descriptionForeground); fill-opacity: 0.18; }
.seg-free { fill: var(--vscode-input-background, rgba(128,128,128,0.2)); }
ul.legend { list-style: none; margin: 2px 0; padding: 0; display: flex; flex-wrap: wrap; gap: 2px 12px; font-variant-numeric: tabular-nums; }
ul.legend li { display: flex; align-items: center; gap: 4px; }
ul.legend .size, ul.legend .note { color: var(--vscode-descriptionForeground); }
svg.swatch { width: 10px; height: 10px; flex: none; }
.fit, .budget { margin: 4px 0 0; color: var(--vscode-descriptionForeground); }
.fit .nofit { color: var(--vscode-editorWarning-foreground); }
table.processes { width: 100%; border-collapse: collapse; margin-top: 8px; font-variant-numeric: tabular-nums; }
table.processes caption { text-align: left; font-weight: 600; margin-bottom: 4px; }
table.processes th, table.processes td { text-align: left; padding: 2px 6px 2px 0; border-bottom: 1px solid var(--vscode-widget-border, rgba(128,128,128,0.2)); }
table.processes th { color: var(--vscode-descriptionForeground); font-weight: normal; }
button { color: var(--vscode-button-foreground); background: var(--vscode-button-background); border: none; padding: 4px 10px; cursor: pointer; }
button:hover { background: var(--vscode-button-hoverBackground); }
button.secondary { color: var(--vscode-button-secondaryForeground); background: var(--vscode-button-secondaryBackground); }
`;
