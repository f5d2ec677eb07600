/** Turning zod issues into messages that name the field and the fix. Pure; safe in workflows. */
import type { z } from 'zod';

export function issuePath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const p of path) {
    if (typeof p === 'number') out += `[${p}]`;
    // A key that is not a plain name (spaces, colons, quotes, empty) is quoted, so the path stays readable.
    else if (typeof p === 'string' && !/^[A-Za-z_$][\w$-]*$/.test(p)) out += `[${JSON.stringify(p)}]`;
    else out += out === '' ? String(p) : `.${String(p)}`;
  }
  return out === '' ? '(root)' : out;
}

export function describeIssues(error: z.ZodError, prefix = ''): string[] {
  return error.issues.map((i) => {
    const path = issuePath(i.path);
    const full = prefix === '' ? path : path === '(root)' ? prefix : `${prefix}.${path}`;
    return `${full}: ${i.message}`;
  });
}

/** An input that failed validation. `fields` lists each offending field with why and how to fix it. */
export class ValidationError extends Error {
  override readonly name = 'ValidationError';
  constructor(
    readonly source: string,
    readonly fields: string[],
  ) {
    super(`${source} is invalid: ${fields.join('; ')}`);
  }
}

export function parseOrThrow<S extends z.ZodType>(schema: S, value: unknown, source: string): z.output<S> {
  const r = schema.safeParse(value);
  if (!r.success) throw new ValidationError(source, describeIssues(r.error));
  return r.data;
}
