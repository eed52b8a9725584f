/**
 * Failed dashboard sign-ins, limited per client rather than for everyone: with one global count, anyone could send
 * 20 wrong keys a minute and lock the real admin out for as long as they kept at it. A client is the connection's peer
 * address (no forwarding header, which any client could forge; behind a reverse proxy every client is the proxy, and
 * the limit is a global one again), an IPv6 address counted by its /64, the block one host usually gets.
 *
 * Private to `src/dashboard`.
 */

/** Failed sign-ins allowed per client and window before that client's further attempts are refused for its rest. */
export const MAX_FAILED_SIGN_INS = 20;
export const SIGN_IN_WINDOW_MS = 60_000;
/** Clients tracked at once; beyond it the longest-tracked are forgotten (their windows start again). */
export const MAX_TRACKED_CLIENTS = 10_000;

/** The client a peer address counts as. */
export function signInClientOf(ip: string | null): string {
  if (ip === null) return "unknown";
  if (!ip.includes(":")) return ip;
  // The first four groups of the address: its /64 (an IPv4-mapped address keeps its IPv4 part).
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  if (mapped) return mapped[1];
  const [head, tail = ""] = ip.toLowerCase().split("::");
  const headGroups = head === "" ? [] : head.split(":");
  const tailGroups = tail === "" ? [] : tail.split(":");
  const groups = [
    ...headGroups,
    ...Array(Math.max(0, 8 - headGroups.length - tailGroups.length)).fill("0"),
    ...tailGroups,
  ];
  return `${groups.slice(0, 4).map((group) => group.replace(/^0+(?=.)/, "")).join(":")}::/64`;
}

/** See the module comment. */
export class SignInLimiter {
  /** Per client, in the order they were last (re)started: the first entries are the ones to forget. */
  readonly #windows = new Map<string, { startMs: number; failures: number }>();
  readonly #maxTracked: number;

  constructor(maxTracked = MAX_TRACKED_CLIENTS) {
    this.#maxTracked = maxTracked;
  }

  /** Whether `client` used up its failures for the current window. */
  blocked(client: string, nowMs: number): boolean {
    const window = this.#windows.get(client);
    return window !== undefined && nowMs - window.startMs <= SIGN_IN_WINDOW_MS &&
      window.failures >= MAX_FAILED_SIGN_INS;
  }

  /** Counts a failed sign-in of `client`. */
  recordFailure(client: string, nowMs: number): void {
    const window = this.#windows.get(client);
    if (window !== undefined && nowMs - window.startMs <= SIGN_IN_WINDOW_MS) {
      window.failures++;
      return;
    }
    this.#windows.delete(client);
    this.#windows.set(client, { startMs: nowMs, failures: 1 });
    for (const oldest of this.#windows.keys()) {
      if (this.#windows.size <= this.#maxTracked) break;
      this.#windows.delete(oldest);
    }
  }

  /** Clients tracked now (tests). */
  get trackedClients(): number {
    return this.#windows.size;
  }
}
