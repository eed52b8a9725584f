/**
 * Stop signals: the first SIGINT/SIGTERM asks for a graceful shutdown, a later one exits at once.
 *
 * Private to `src/server`: other folders use its `mod.ts`.
 */

/** Exit code after a second stop signal: 128 + SIGINT, as shells report an interrupted program. */
const FORCED_EXIT_CODE = 130;
/**
 * Signals this soon after the first are the same stop request delivered twice, not a user insisting: Ctrl-C reaches
 * both `deno task` and the server through the process group, and `deno run --watch` follows SIGINT with SIGTERM.
 */
const DUPLICATE_WINDOW_MS = 1_000;
const STOP_SIGNALS: readonly Deno.Signal[] = ["SIGINT", "SIGTERM"];

/** A subscription to stop signals. */
export interface StopSignals {
  /** Resolves with the first stop signal received. */
  readonly received: Promise<Deno.Signal>;
  /** Removes the listeners (the default action, termination, applies again). */
  dispose(): void;
}

/**
 * Listens for SIGINT and SIGTERM. Subscribe before opening anything, so a signal during startup still shuts down
 * cleanly instead of killing the process with the database half-open.
 */
export function listenForStopSignals(): StopSignals {
  let resolveReceived: (signal: Deno.Signal) => void = () => {};
  const received = new Promise<Deno.Signal>((resolve) => resolveReceived = resolve);
  let firstAtMs: number | null = null;
  const handlers = STOP_SIGNALS.map((signal) => {
    const handler = () => {
      if (firstAtMs === null) {
        firstAtMs = performance.now();
        resolveReceived(signal);
        return;
      }
      if (performance.now() - firstAtMs < DUPLICATE_WINDOW_MS) return;
      console.error(`denvex: second ${signal}, exiting without a clean shutdown`);
      Deno.exit(FORCED_EXIT_CODE);
    };
    Deno.addSignalListener(signal, handler);
    return { signal, handler };
  });
  return {
    received,
    dispose: () => handlers.forEach(({ signal, handler }) => Deno.removeSignalListener(signal, handler)),
  };
}
