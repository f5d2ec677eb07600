/**
 * One heartbeat per activity execution, whoever starts it: the paid call beats while it routes,
 * reserves and calls, and the provider call inside it adds its details (the tokens streamed so far,
 * the model streaming them). Two timers each sending their own details would overwrite each other
 * at the server, and a later attempt would read whichever came last.
 */
import type { Context } from '@temporalio/activity';

interface Beat {
  readonly details: Record<string, unknown>;
  users: number;
  timer: NodeJS.Timeout;
}

const beats = new WeakMap<Context, Beat>();

/** Starts beating for this execution (or joins the beat already going); returns its details to fill and the stop. */
export function heartbeatFor(ctx: Context, everyMs = 1_000): { details: Record<string, unknown>; stop: () => void } {
  let b = beats.get(ctx);
  if (!b) {
    const details: Record<string, unknown> = {};
    const timer = setInterval(() => ctx.heartbeat(Object.keys(details).length > 0 ? { ...details } : undefined), everyMs);
    b = { details, users: 0, timer };
    beats.set(ctx, b);
  }
  const beat = b;
  beat.users += 1;
  let stopped = false;
  return {
    details: beat.details,
    stop: () => {
      if (stopped) return;
      stopped = true;
      beat.users -= 1;
      if (beat.users === 0) {
        clearInterval(beat.timer);
        beats.delete(ctx);
      }
    },
  };
}

/** What the last attempt's heartbeat said about a stream it was relaying. */
export function streamedSoFar(ctx: Context): { streamedTokens: number; model?: string } {
  const d = ctx.info.heartbeatDetails as { streamedTokens?: unknown; model?: unknown } | undefined;
  return {
    streamedTokens: typeof d?.streamedTokens === 'number' ? d.streamedTokens : 0,
    ...(typeof d?.model === 'string' ? { model: d.model } : {}),
  };
}
