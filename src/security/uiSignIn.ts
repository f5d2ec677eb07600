/**
 * Sign-in for the embedded Temporal UI's codec endpoint. The UI (the dev server's) cannot send a
 * token to its codec endpoint, so `switchyard up` serves the UI and the endpoint from one origin
 * (uiGate.ts) and lets only a browser holding a session cookie decode. A browser gets the cookie
 * by opening a sign-in link: a one-time code, good for a few minutes, signed with a secret that
 * only the `up` process and its owner's stack record (a 0600 file) hold. `switchyard ui` mints a
 * new link from that record.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

export const SIGN_IN_PATH = '/switchyard/sign-in';
export const SESSION_COOKIE = 'switchyard_ui_session';
/** How long a sign-in link works. */
export const CODE_TTL_MS = 10 * 60_000;

function mac(secret: string, body: string): string {
  return createHmac('sha256', Buffer.from(secret, 'base64url')).update(`switchyard-ui-sign-in:${body}`).digest('base64url');
}

/** A one-time sign-in code: `<expiry ms>.<nonce>.<mac>`. */
export function mintSignInCode(secret: string, now = Date.now()): string {
  const body = `${now + CODE_TTL_MS}.${randomBytes(12).toString('base64url')}`;
  return `${body}.${mac(secret, body)}`;
}

export function signInUrl(uiUrl: string, secret: string, now = Date.now()): string {
  return `${uiUrl.replace(/\/+$/, '')}${SIGN_IN_PATH}?code=${mintSignInCode(secret, now)}`;
}

export function newSignInSecret(): string {
  return randomBytes(32).toString('base64url');
}

export type SignInCheck = { ok: true } | { ok: false; why: 'malformed' | 'forged' | 'expired' | 'used' };

/** Checks codes and remembers the ones used until they expire (each works once). */
export class SignInCodes {
  private readonly used = new Map<string, number>();

  constructor(private readonly secret: string) {}

  redeem(code: string, now = Date.now()): SignInCheck {
    for (const [nonce, expiry] of this.used) if (expiry < now) this.used.delete(nonce);
    const m = /^(\d{1,15})\.([A-Za-z0-9_-]{16})\.([A-Za-z0-9_-]{43})$/.exec(code);
    if (!m) return { ok: false, why: 'malformed' };
    const [, exp = '', nonce = '', given = ''] = m;
    const want = Buffer.from(mac(this.secret, `${exp}.${nonce}`));
    if (want.length !== given.length || !timingSafeEqual(want, Buffer.from(given))) return { ok: false, why: 'forged' };
    const expiry = Number(exp);
    if (expiry < now) return { ok: false, why: 'expired' };
    if (this.used.has(nonce)) return { ok: false, why: 'used' };
    this.used.set(nonce, expiry);
    return { ok: true };
  }
}
