/**
 * The network policy of actions, decided on addresses rather than spellings (DESIGN.md): by default an action reaches
 * the public internet only. Loopback, private, link-local and reserved ranges, the machine's own addresses, the
 * deployment's database and the server's own ports are unreachable. `--action-allow-host` opens named hosts, but never
 * the database port or the server's ports on them.
 *
 * The policy becomes the action runner's `--deny-net` list (Deno checks it on the resolved address of every
 * connection, fetch and listen) and is handed to the worker's guard (worker/net_guard.ts), which adds what the flag
 * cannot express: IPv6 ranges, and the whole policy when the runner is a compiled binary with fixed flags.
 */
import { lookup } from "node:dns/promises";
import {
  formatIp,
  type IpAddress,
  isNonPublicAddress,
  NON_PUBLIC_IPV4_CIDRS,
  parseIp,
  parseIpv4Cidr,
  permissionHost,
  rangeToCidrs,
  subtractRanges,
  unmapIpv4,
} from "./addresses.ts";

/** What the server knows when it builds the policy. */
export interface NetPolicyInput {
  /** `--action-allow-host` values: names or IP literals. */
  allowHosts: readonly string[];
  /** The deployment's PostgreSQL server, if it uses one. */
  database: { host: string; port: number } | null;
  /** The server's own listening ports. */
  serverPorts: readonly number[];
}

/** The resolved policy: what the action runner's flags and its worker's guard enforce. */
export interface ActionNetPolicy {
  /** Entries of `--deny-net`: IPv4 CIDRs, bracketed IPv6 addresses, `host:port` pairs. */
  denyNet: string[];
  /** Canonical addresses that `--action-allow-host` opened (the guard lets these through its range check). */
  allowedAddresses: string[];
}

/** How names and the machine's own addresses are found (injectable for unit tests). */
export interface NetPolicyEnvironment {
  /** Every address `host` resolves to (as getaddrinfo answers, /etc/hosts included). */
  resolve(host: string): Promise<string[]>;
  /** Every address of the machine's own interfaces. */
  ownAddresses(): string[];
}

/** The real environment: getaddrinfo and `Deno.networkInterfaces()` (needs `--allow-sys=networkInterfaces`). */
export const SYSTEM_NET_ENVIRONMENT: NetPolicyEnvironment = {
  resolve: async (host) => (await lookup(host, { all: true, verbatim: true })).map((entry) => entry.address),
  ownAddresses: () => {
    try {
      return Deno.networkInterfaces().map((entry) => entry.address);
    } catch (error) {
      if (error instanceof Deno.errors.NotCapable || error instanceof Deno.errors.PermissionDenied) {
        throw new Error(
          "the action network policy needs the machine's addresses: run the server with --allow-sys=networkInterfaces",
        );
      }
      throw error;
    }
  },
};

/** IPv6 addresses denied exactly whatever the machine's interfaces: unspecified and loopback. */
const ALWAYS_DENIED_IPV6 = ["::", "::1"];

/** Builds the policy for `input`, resolving names (allowed hosts, the database host) now, once. */
export async function resolveActionNetPolicy(
  input: NetPolicyInput,
  environment: NetPolicyEnvironment = SYSTEM_NET_ENVIRONMENT,
): Promise<ActionNetPolicy> {
  const allowed = await resolveHosts(input.allowHosts, environment);
  const database = input.database === null ? [] : await resolveHosts([input.database.host], environment);
  const own = environment.ownAddresses().map(parseIp).filter((address) => address !== null);
  const allowedKeys = new Set(allowed.map(formatIp));

  const v4Holes = allowed.filter((address) => address.family === 4).map((a) => ({ first: a.value, last: a.value }));
  const v4Denied = [
    ...NON_PUBLIC_IPV4_CIDRS.map(parseIpv4Cidr),
    ...own.filter((address) => address.family === 4).map((a) => ({ first: a.value, last: a.value })),
  ];
  const denyNet = subtractRanges(v4Denied, v4Holes).flatMap(rangeToCidrs);
  const v6Denied = [...ALWAYS_DENIED_IPV6.map((text) => parseIp(text)!), ...own.filter((a) => a.family === 6)];
  for (const address of v6Denied) {
    if (!allowedKeys.has(formatIp(address))) denyNet.push(permissionHost(address));
  }
  // The protected ports stay closed on every allowed address and on the database's own addresses.
  const protectedPorts = [...input.serverPorts, ...(input.database === null ? [] : [input.database.port])];
  for (const address of allowed) {
    for (const port of protectedPorts) denyNet.push(`${permissionHost(address)}:${port}`);
  }
  if (input.database !== null) {
    for (const address of database) denyNet.push(`${permissionHost(address)}:${input.database.port}`);
    if (parseIp(input.database.host) === null) denyNet.push(`${input.database.host}:${input.database.port}`);
  }
  return { denyNet: [...new Set(denyNet)], allowedAddresses: [...allowedKeys] };
}

/** The addresses of `hosts`: IP literals as they are, names resolved (a name that does not resolve is an error). */
async function resolveHosts(hosts: readonly string[], environment: NetPolicyEnvironment): Promise<IpAddress[]> {
  const addresses: IpAddress[] = [];
  for (const host of hosts) {
    const literal = parseIp(host);
    const texts = literal !== null ? [formatIp(literal)] : await resolveName(host, environment);
    for (const text of texts) {
      const address = parseIp(text);
      if (address === null) continue;
      // Deno normalizes IPv4-mapped IPv6 to IPv4 before checking, so the IPv4 form is the one to list.
      addresses.push(unmapIpv4(address) ?? address);
    }
  }
  return addresses;
}

async function resolveName(host: string, environment: NetPolicyEnvironment): Promise<string[]> {
  try {
    const addresses = await environment.resolve(host);
    if (addresses.length === 0) throw new Error("no addresses");
    return addresses;
  } catch (error) {
    throw new Error(`cannot resolve ${host}: ${error instanceof Error ? error.message : String(error)}`);
  }
}

/** Decides single connections against a resolved policy, the way the `--deny-net` flag does (used by the guard). */
export class NetPolicyMatcher {
  readonly #deniedRanges: { first: number; last: number }[] = [];
  readonly #deniedAddresses = new Set<string>();
  /** `address:port` and `name:port` keys. */
  readonly #deniedEndpoints = new Set<string>();
  readonly #allowed: Set<string>;

  constructor(policy: ActionNetPolicy) {
    this.#allowed = new Set(policy.allowedAddresses);
    for (const entry of policy.denyNet) this.#addDenyEntry(entry);
  }

  #addDenyEntry(entry: string): void {
    if (entry.includes("/")) return void this.#deniedRanges.push(parseIpv4Cidr(entry));
    const whole = parseIp(entry);
    if (whole !== null) return void this.#deniedAddresses.add(formatIp(whole));
    const split = entry.match(/^(\[[^\]]+\]|[^:]+):(\d+)$/);
    if (split === null) throw new Error(`Bad deny entry ${entry}`);
    const address = parseIp(split[1]);
    this.#deniedEndpoints.add(`${address === null ? split[1].toLowerCase() : formatIp(address)}:${split[2]}`);
  }

  /** True if the name `name` (as spelled) is denied at `port` whatever it resolves to. */
  deniesName(name: string, port: number): boolean {
    return this.#deniedEndpoints.has(`${name.toLowerCase()}:${port}`);
  }

  /** True if connecting to `name` (as spelled, may be null) at `address`:`port` is denied. */
  denies(address: IpAddress, port: number, name: string | null = null): boolean {
    const effective = unmapIpv4(address) ?? address;
    const key = formatIp(effective);
    if (name !== null && this.deniesName(name, port)) return true;
    if (this.#deniedEndpoints.has(`${key}:${port}`) || this.#deniedAddresses.has(key)) return true;
    if (
      effective.family === 4 && this.#deniedRanges.some((r) => effective.value >= r.first && effective.value <= r.last)
    ) {
      return true;
    }
    return isNonPublicAddress(effective) && !this.#allowed.has(key);
  }
}
