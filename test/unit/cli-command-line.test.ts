// Where the options for every command may go: before the command as well as after it.
import { describe, expect, it } from 'vitest';
import { commandLine } from '../../cli/main';

describe('commandLine', () => {
  it('moves the options for every command that come before the command after it', () => {
    expect(commandLine(['--state-dir', '/s', '--config=/c.json', '-v', 'status', '--json'])).toEqual({
      name: 'status',
      rest: ['--json', '--state-dir', '/s', '--config=/c.json', '-v'],
    });
    expect(commandLine(['--port', '0', '--verbose', 'start'])).toEqual({ name: 'start', rest: ['--port', '0', '--verbose'] });
  });

  it('leaves a command line that starts with the command as it is', () => {
    expect(commandLine(['bench', '--config', '/c.json', '--workload', 'chat'])).toEqual({ name: 'bench', rest: ['--config', '/c.json', '--workload', 'chat'] });
    expect(commandLine([])).toEqual({ name: undefined, rest: [] });
  });

  it('stops at --help, --version and anything it does not know, for main to answer', () => {
    expect(commandLine(['--help'])).toEqual({ name: '--help', rest: [] });
    expect(commandLine(['--state-dir', '/s', '--help', 'status'])).toEqual({ name: '--help', rest: ['status', '--state-dir', '/s'] });
    expect(commandLine(['--version'])).toEqual({ name: '--version', rest: [] });
    expect(commandLine(['--frobnicate', 'status'])).toEqual({ name: '--frobnicate', rest: ['status'] });
    expect(commandLine(['--json', 'status'])).toEqual({ name: '--json', rest: ['status'] });
  });

  it('keeps an option whose value is missing at the end, for parseArgs to name', () => {
    expect(commandLine(['--config'])).toEqual({ name: undefined, rest: ['--config'] });
  });
});
