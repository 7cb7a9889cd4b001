// The `slotwise.*` settings, read fresh on each use so changes apply without a reload.
import * as vscode from 'vscode';
import type { EndpointSettings } from './core/endpoint';
import type { CompletionSettings } from './core/inline-completions';

export interface Settings extends EndpointSettings {
  autoStartDaemon: boolean;
  configPath: string;
  promptOutput: 'editor' | 'output';
  promptFormat: 'chat' | 'completion';
  maxTokens: number;
  temperature: number;
}

export function readSettings(): Settings {
  const c = vscode.workspace.getConfiguration('slotwise');
  return {
    stateDir: c.get<string>('stateDir', '').trim(),
    daemonUrl: c.get<string>('daemonUrl', '').trim(),
    tokenFile: c.get<string>('tokenFile', '').trim(),
    autoStartDaemon: c.get<boolean>('autoStartDaemon', true),
    configPath: c.get<string>('configPath', '').trim(),
    promptOutput: c.get<string>('promptOutput', 'editor') === 'output' ? 'output' : 'editor',
    promptFormat: c.get<string>('promptFormat', 'chat') === 'completion' ? 'completion' : 'chat',
    maxTokens: c.get<number>('maxTokens', 512),
    temperature: c.get<number>('temperature', 0.7),
  };
}

/** `slotwise.completions.*`: inline completions. */
export function readCompletionSettings(): CompletionSettings {
  const c = vscode.workspace.getConfiguration('slotwise.completions');
  return {
    enabled: c.get<boolean>('enabled', false),
    model: c.get<string>('model', '').trim(),
    debounceMs: c.get<number>('debounceMs', 150),
    maxTokens: c.get<number>('maxTokens', 64),
  };
}

export const COMPLETIONS_SECTION = 'slotwise.completions';

/** Settings whose change means "find the daemon again". */
export const ENDPOINT_KEYS = ['slotwise.stateDir', 'slotwise.daemonUrl', 'slotwise.tokenFile'];
