/**
 * What a worker that requires encryption (SWITCHYARD_ENCRYPTION_REQUIRED) decodes a plaintext
 * payload to: this marker, never the plaintext. Workflows refuse it cleanly (workflows/messages.ts
 * `refusePlaintext`): the run fails at once with the fix, a signal is dropped, an update is
 * refused. Nothing is stuck. Pure: workflows import it.
 */
export const PLAINTEXT_REFUSED = '__switchyardPlaintextRefused';

export function isPlaintextMarker(v: unknown): boolean {
  return typeof v === 'object' && v !== null && (v as Record<string, unknown>)[PLAINTEXT_REFUSED] === true;
}
