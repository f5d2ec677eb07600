/**
 * Headless Chromium for the UI test: Debian's `chromium` package driven by playwright-core (no
 * browser download). `npm test` installs it first (scripts/test-tools.sh); run alone, a test that
 * cannot find it fails saying how to install it.
 */
import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';

const CANDIDATES = ['/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome'];

export function findChromium(): string | undefined {
  const env = process.env.CHROMIUM_PATH;
  if (env) return existsSync(env) ? env : undefined;
  return CANDIDATES.find((p) => existsSync(p));
}

export function ensureChromium(): string {
  const found = findChromium();
  if (found) return found;
  throw new Error(
    'the UI test needs Chromium: `sudo apt-get install chromium` (Debian/Ubuntu; scripts/test-tools.sh, run by npm test, does it), or set CHROMIUM_PATH to a Chromium or Chrome binary',
  );
}

export async function launchHeadless(): Promise<Browser> {
  return chromium.launch({
    executablePath: ensureChromium(),
    args: [
      '--headless=new',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-dev-shm-usage',
      '--disable-background-networking',
      '--disable-extensions',
      '--no-first-run',
    ],
  });
}
