/** Small helpers for node:http servers. */
import type { Server } from 'node:http';

/** Closes a server and every connection it holds (keep-alive ones too); resolves when it is closed. */
export async function closeServer(s: Server | undefined): Promise<void> {
  if (!s) return;
  s.closeAllConnections();
  await new Promise<void>((resolve) => s.close(() => resolve()));
}
