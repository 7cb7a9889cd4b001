// Checks on the Markdown the bench writes.
import { expect } from 'vitest';

/** Every row of every table has as many cells as the table's header. */
export function expectRectangularTables(md: string): void {
  let width = 0;
  for (const line of md.split('\n')) {
    if (!line.startsWith('|')) {
      width = 0;
      continue;
    }
    const cells = line.split(' | ').length;
    if (width === 0) width = cells;
    expect(cells, line).toBe(width);
  }
}
