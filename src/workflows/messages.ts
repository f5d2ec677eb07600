/**
 * Entities must survive any message a client can send: a signal cannot be refused, so one that
 * cannot be applied is dropped and logged, never allowed to fail the workflow task (which would
 * retry it forever and stop the entity); an update's argument is checked by its validator, so a
 * malformed one is refused for its caller before anything changes. Workflow code.
 */
import { ApplicationFailure, log, setHandler, type SignalDefinition } from '@temporalio/workflow';
import { isPlaintextMarker } from '../security/plaintextMarker.js';

/**
 * A run started with a plaintext payload on a worker that requires encryption fails at once,
 * saying why and how to fix it (nothing was called or charged), instead of a workflow task that
 * fails forever. The codec hands workflows a marker in place of such a payload.
 */
export function refusePlaintext(args: readonly unknown[], workflow: string): void {
  if (args.some(isPlaintextMarker)) {
    throw ApplicationFailure.create({
      type: 'EncryptionRequired',
      nonRetryable: true,
      message: `${workflow} refused: it was started with a plaintext payload, and this worker requires encryption (SWITCHYARD_ENCRYPTION_REQUIRED). Give the client that started it SWITCHYARD_ENCRYPTION_KEY and start it again; nothing was called or charged`,
    });
  }
}

export const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The message is an object (not null, a list or a scalar), keeping its declared type for the fields' own checks. */
export const isMessage = <T>(v: T): v is T & object => isRecord(v);

/** Sets a signal handler for which an error while applying a message drops the message, not the entity. */
export function onSignal<A extends unknown[]>(def: SignalDefinition<A>, handler: (...args: A) => void): void {
  setHandler(def, (...args: A) => {
    if (args.some(isPlaintextMarker)) return void log.warn('signal dropped: sent in plaintext to a worker that requires encryption', { signal: def.name });
    try {
      handler(...args);
    } catch (e) {
      log.warn('signal dropped: it could not be applied', { signal: def.name, error: e instanceof Error ? e.message : String(e) });
    }
  });
}

/** Refuses an update whose argument is not an object (null, a list, a number...). */
export function refuseUnless(update: string, ok: boolean, what = 'an object argument'): void {
  if (!ok) throw ApplicationFailure.create({ type: 'InvalidMessage', nonRetryable: true, message: `${update}: expected ${what}` });
}

/** A validator for updates that take one object argument. */
export const objectArgument =
  (update: string) =>
  (arg: unknown): void =>
    refuseUnless(update, isRecord(arg) && !isPlaintextMarker(arg), 'an object argument (sent encrypted, if this worker requires encryption)');
