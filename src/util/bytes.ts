/** UTF-8 sizes without Buffer or TextEncoder, so workflows can use it too. Pure. */

/** Bytes the string takes in UTF-8 (lone surrogates count as the 3-byte replacement character). */
export function utf8Bytes(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length && (s.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      n += 4;
      i += 1;
    } else n += 3;
  }
  return n;
}

/** Bytes of the value's JSON in UTF-8 (what a payload of it takes, before any codec). */
export function jsonBytes(v: unknown): number {
  return utf8Bytes(JSON.stringify(v) ?? '');
}

/**
 * The newest items of `list` (its end) whose JSON takes at most `maxBytes` in all, as a JSON array
 * would hold them; order kept. A new array; `list` is not changed.
 */
export function newestWithin<T>(list: readonly T[], maxBytes: number): T[] {
  let total = 2;
  let i = list.length;
  while (i > 0) {
    const size = jsonBytes(list[i - 1]) + (i === list.length ? 0 : 1);
    if (total + size > maxBytes) break;
    total += size;
    i -= 1;
  }
  return list.slice(i);
}
