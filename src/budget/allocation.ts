/** Splitting a budget between categories in whole nanodollars that add up to the total exactly. Pure. */

/**
 * Fractions must sum to 1 (within 1e-9). Largest-remainder rounding: each category gets the floor
 * of its share, and the leftover nanodollars go one each to the largest remainders (ties by name),
 * so the parts always sum to the total and each is within one nanodollar of its share.
 */
export function allocate(totalNanos: number, fractions: Readonly<Record<string, number>>): Record<string, number> {
  if (!Number.isSafeInteger(totalNanos) || totalNanos < 0) throw new RangeError(`totalNanos must be a non-negative integer, got ${totalNanos}`);
  const names = Object.keys(fractions).sort();
  if (names.length === 0) throw new RangeError('allocations must name at least one category');
  const sum = names.reduce((s, n) => s + (fractions[n] ?? 0), 0);
  if (Math.abs(sum - 1) > 1e-9) throw new RangeError(`allocations must sum to 1, got ${sum}`);
  const shares = names.map((n) => (totalNanos * (fractions[n] ?? 0)) / sum);
  const parts = shares.map((s) => Math.floor(s));
  let left = totalNanos - parts.reduce((a, b) => a + b, 0);
  const order = shares.map((s, i) => ({ i, rem: s - Math.floor(s) })).sort((a, b) => b.rem - a.rem || (names[a.i] ?? '').localeCompare(names[b.i] ?? ''));
  for (let k = 0; left > 0 && order.length > 0; k = (k + 1) % order.length) {
    const i = order[k]?.i ?? 0;
    parts[i] = (parts[i] ?? 0) + 1;
    left -= 1;
  }
  for (let k = 0; left < 0; k = (k + 1) % order.length) {
    const i = order[order.length - 1 - k]?.i ?? 0;
    if ((parts[i] ?? 0) > 0) {
      parts[i] = (parts[i] ?? 0) - 1;
      left += 1;
    }
  }
  return Object.fromEntries(names.map((n, i) => [n, parts[i] ?? 0]));
}
