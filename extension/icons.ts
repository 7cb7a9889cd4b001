// IconSpec (codicon id + theme color id, from the vscode-free core) → ThemeIcon.
import * as vscode from 'vscode';
import type { IconSpec } from './core/slots-tree-model';

export function themeIcon(spec: IconSpec): vscode.ThemeIcon {
  return new vscode.ThemeIcon(spec.id, spec.color ? new vscode.ThemeColor(spec.color) : undefined);
}
