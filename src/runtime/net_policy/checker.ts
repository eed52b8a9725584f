/**
 * Checks one connection target against the action network policy, inside the worker (see worker/net_guard.ts): IP
 * literals in any spelling directly, names after resolving them the way the connection itself will (getaddrinfo).
 */
import { lookup } from "node:dns/promises";
import { formatIp, type IpAddress, parseIp } from "./addresses.ts";
import { type ActionNetPolicy, NetPolicyMatcher } from "./policy.ts";

/** Resolves a name to every address getaddrinfo gives (A and AAAA). */
export type Resolver = (host: string) => Promise<string[]>;

/** The resolver connections use: getaddrinfo, /etc/hosts included. */
export const systemResolver: Resolver = async (host) =>
  (await lookup(host, { all: true, verbatim: true })).map((entry) => entry.address);

/** See the module comment. */
export class HostChecker {
  readonly #matcher: NetPolicyMatcher;
  readonly #resolve: Resolver;

  constructor(policy: ActionNetPolicy, resolve: Resolver = systemResolver) {
    this.#matcher = new NetPolicyMatcher(policy);
    this.#resolve = resolve;
  }

  /**
   * Checks an IP literal at once. Returns false when `host` is a name, which needs {@link check}; throws
   * `Deno.errors.NotCapable` when the address is denied.
   */
  checkLiteral(host: string, port: number): boolean {
    const address = parseIp(host);
    if (address === null) return false;
    this.checkAddress(address, port, host);
    return true;
  }

  /** Checks `host` (literal or name) on every address it resolves to. Throws `Deno.errors.NotCapable` if denied. */
  async check(host: string, port: number): Promise<void> {
    if (this.checkLiteral(host, port)) return;
    this.#checkName(host, port);
    let texts: string[];
    try {
      texts = await this.#resolve(host.endsWith(".") ? host.slice(0, -1) : host);
    } catch (error) {
      // The connection would fail the same way; failing here keeps an unchecked resolution from happening later.
      throw new TypeError(`cannot resolve ${host}: ${error instanceof Error ? error.message : String(error)}`);
    }
    for (const text of texts) {
      const address = parseIp(text);
      if (address !== null) this.checkAddress(address, port, host);
    }
  }

  /** Throws `Deno.errors.NotCapable` if `address`:`port` (reached as `name`) is denied. */
  checkAddress(address: IpAddress, port: number, name: string | null = null): void {
    if (this.#matcher.denies(address, port, name)) throw denied(name ?? formatIp(address), port);
  }

  #checkName(host: string, port: number): void {
    // A name listed with a port (the database host) is denied as spelled too, whatever it resolves to.
    if (this.#matcher.deniesName(host, port)) throw denied(host, port);
  }
}

function denied(host: string, port: number): Error {
  const shown = host.includes(":") && !host.startsWith("[") ? `[${host}]` : host;
  return new Deno.errors.NotCapable(
    `Requires net access to "${shown}:${port}": actions cannot reach loopback, private or link-local addresses, ` +
      "the deployment's database or the server itself (the server's --action-allow-host opens a host)",
  );
}
