/** Plain-text tables for the CLI: columns padded to their widest cell. Pure. */
export function formatTable(rows: readonly string[][], rightAligned: (col: number) => boolean = () => false): string {
  const widths = (rows[0] ?? []).map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)));
  return rows
    .map((r) =>
      r
        .map((c, i) => (rightAligned(i) ? c.padStart(widths[i] ?? 0) : c.padEnd(widths[i] ?? 0)))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
}
