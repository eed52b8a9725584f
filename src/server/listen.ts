/**
 * Serves the two Hono apps with `Deno.serve`.
 *
 * Private to `src/server`: other folders use its `mod.ts`.
 */
import { DenvexError } from "../errors/mod.ts";
import type { Hono } from "hono";
import { fallbackErrorResponse } from "../http/mod.ts";
import { type ObserveOptions, observeRequests } from "./observe.ts";

/** A listening origin. */
export interface Listener {
  /** The port actually bound (differs from the requested one when that was 0). */
  port: number;
  /** Stops accepting connections and resolves once in-flight requests are done. */
  shutdown(): Promise<void>;
}

/** Thrown when a port cannot be bound; its message is one line for the user. */
export class ListenError extends DenvexError {
  constructor(message: string) {
    super("ListenFailed", message);
    this.name = "ListenError";
  }
}

/**
 * Binds `host:port` and serves `app` there. `what` names the origin in errors. With `observe`, requests are counted,
 * timed and (json log) logged, and the API origin answers `/metrics`.
 */
export function listen(app: Hono, host: string, port: number, what: string, observe?: ObserveOptions): Listener {
  let server: Deno.HttpServer<Deno.NetAddr>;
  try {
    server = Deno.serve({
      hostname: host,
      port,
      // The default prints "Listening on ..."; the server prints its own summary once both ports are bound.
      onListen: () => {},
      onError: fallbackErrorResponse,
    }, observe ? observeRequests(app.fetch, observe) : app.fetch);
  } catch (error) {
    if (error instanceof Deno.errors.AddrInUse) throw new ListenError(`${what} port ${port} is already in use`);
    if (error instanceof Deno.errors.AddrNotAvailable) {
      throw new ListenError(`cannot listen on ${host}:${port} for the ${what}: address not available`);
    }
    throw error;
  }
  return { port: server.addr.port, shutdown: () => server.shutdown() };
}
