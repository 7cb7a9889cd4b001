// Finds the stand-in llama-server (test/fixtures/fake-llama-server.mjs) of a source checkout: the
// load bench needs an upstream that can hold 1,000 streams, which the real one cannot on a small machine.
import { constants } from 'node:fs';
import { access } from 'node:fs/promises';
import { join } from 'node:path';

export const STAND_IN = join('test', 'fixtures', 'fake-llama-server.mjs');

/** Path of the executable stand-in one folder up from dist/ (the bundled CLI) or from bench/ (the source); undefined when absent. */
export async function findStandIn(): Promise<string | undefined> {
  for (const path of [join(__dirname, '..', STAND_IN)]) {
    try {
      await access(path, constants.X_OK);
      return path;
    } catch (err) {
      void err; // not here (or not executable): try the next place
    }
  }
  return undefined;
}
