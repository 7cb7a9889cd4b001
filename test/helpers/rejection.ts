import { SlotwiseError } from '../../shared/errors';

/** The SlotwiseError a promise rejects with; any other rejection, or none, fails the test. */
export async function rejection(promise: Promise<unknown>): Promise<SlotwiseError> {
  try {
    await promise;
  } catch (err) {
    if (err instanceof SlotwiseError) return err;
    throw err;
  }
  throw new Error('expected a rejection');
}
