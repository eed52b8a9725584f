/**
 * The network guard of the user-code worker, installed when this module is evaluated: it is imported first by
 * worker_main.ts, so every other module (call_resources.ts captures `fetch`) sees the guarded globals.
 *
 * - No user code accepts connections: `Deno.listen`, `listenTls`, `listenDatagram`, `serve`, node:net / node:http
 *   servers and node:dgram sockets throw. (The action runner's `--deny-net` also refuses every local address.)
 * - In an action runner, outgoing connections are checked against the action network policy (net_policy/), which
 *   arrives in the runner's arguments: `fetch` (each redirect hop and the client's proxy too), `Deno.connect`,
 *   `Deno.connectTls`, `WebSocket`, `EventSource`, node:net sockets (node:http, node:https, node:tls build on them).
 *   This adds what `--deny-net` cannot express (IPv6 private and link-local ranges), and is the whole policy when the
 *   runner is a compiled binary whose flags were fixed at compile time.
 *
 * Names are resolved (getaddrinfo) and every address checked before connecting. node:net connects to exactly the
 * addresses checked, and `Deno.connect` checks the address it reached; `fetch`, `WebSocket` and `EventSource` resolve
 * again themselves, so a name whose DNS answer changes between the two lookups (DNS rebinding) could reach an IPv6
 * private host: IPv4 and the machine's own addresses stay covered by `--deny-net`, which Deno checks on the address
 * it connects to. `WebSocket` and `EventSource` constructors are synchronous: for a name, the check completes after
 * the connection has started, and a denied one is closed then.
 */
import dgram from "node:dgram";
import net from "node:net";
import { lookup as dnsLookup } from "node:dns";
import { HostChecker } from "../net_policy/checker.ts";
import { decodePolicyArg } from "../net_policy/runner_arg.ts";
import { parseIp } from "../net_policy/addresses.ts";
import { checkUrl, checkUrlLiteral, guardedFetch } from "./net_guard_fetch.ts";

/** Members of `Deno` that accept connections. */
const LISTEN_APIS = ["listen", "listenTls", "listenDatagram", "serve"] as const;

installNetGuard();

function installNetGuard(): void {
  removeListeners();
  const policy = decodePolicyArg(Deno.args);
  // Transaction runners' workers have no net permission at all: nothing to check.
  if (policy === null) return;
  const checker = new HostChecker(policy);
  const proxies = guardHttpClients(checker);
  define(globalThis, "fetch", guardedFetch(checker, globalThis.fetch, (client) => proxies.get(client)));
  guardDenoConnect(checker);
  guardSocketClass(checker, "WebSocket");
  guardSocketClass(checker, "EventSource");
  guardNodeConnect(checker);
}

function cannotListen(what: string): () => never {
  return () => {
    throw new Deno.errors.NotCapable(`${what} is not available in Convex functions: they cannot accept connections`);
  };
}

function removeListeners(): void {
  for (const name of LISTEN_APIS) {
    if (name in Deno) define(Deno, name, cannotListen(`Deno.${name}`), false);
  }
  // node:http, node:https, node:tls and node:http2 servers are net.Server subclasses, loaded lazily, that assign
  // their own `listen`: the guarded member turns those assignments into the refusal too.
  guardMember(net.Server.prototype, "listen", () => cannotListen("server.listen"));
  for (const method of ["bind", "connect", "send"]) {
    define(dgram.Socket.prototype, method, cannotListen(`UDP socket.${method}`), false);
  }
  define(dgram, "createSocket", cannotListen("dgram.createSocket"), false);
}

/**
 * Replaces `target[name]` by `wrap(original)` for good: the property cannot be redefined, and a later assignment
 * (a subclass prototype or an instance setting its own) installs `wrap(assigned)` on the assignee instead.
 */
// deno-lint-ignore no-explicit-any
function guardMember(target: object, name: string, wrap: (original: any) => unknown): void {
  const guarded = wrap((target as Record<string, unknown>)[name]);
  Object.defineProperty(target, name, {
    get: () => guarded,
    set(this: object, assigned: unknown) {
      if (this === target) return;
      guardMember(Object.defineProperty(this, name, { value: assigned, configurable: true }), name, wrap);
    },
    configurable: false,
    enumerable: false,
  });
}

/** Wraps `Deno.createHttpClient` to remember (and check) each client's proxy. */
function guardHttpClients(checker: HostChecker): WeakMap<Deno.HttpClient, URL> {
  const proxies = new WeakMap<Deno.HttpClient, URL>();
  const realCreate = Deno.createHttpClient;
  define(Deno, "createHttpClient", (options: Deno.CreateHttpClientOptions = {}) => {
    const proxy = options.proxy !== undefined && "url" in options.proxy ? new URL(options.proxy.url) : undefined;
    if (proxy !== undefined) checkUrlLiteral(checker, proxy);
    const client = realCreate(options);
    if (proxy !== undefined) proxies.set(client, proxy);
    return client;
  });
  return proxies;
}

function guardDenoConnect(checker: HostChecker): void {
  for (const name of ["connect", "connectTls"] as const) {
    const real = Deno[name] as (options: Deno.ConnectOptions) => Promise<Deno.Conn>;
    define(Deno, name, async (options: Deno.ConnectOptions & { transport?: string }) => {
      // Unix sockets need file permissions, which the worker does not have.
      if (options.transport !== undefined && options.transport !== "tcp") return await real(options);
      const host = options.hostname ?? "127.0.0.1";
      await checker.check(host, options.port);
      const conn = await real(options);
      // The address actually reached: no DNS answer can change it after the check.
      const remote = conn.remoteAddr as Deno.NetAddr;
      const address = parseIp(remote.hostname);
      try {
        if (address !== null) checker.checkAddress(address, remote.port, host);
      } catch (error) {
        conn.close();
        throw error;
      }
      return conn;
    });
  }
}

/** `WebSocket` / `EventSource`: literals are checked before connecting, names right after (see the module comment). */
function guardSocketClass(checker: HostChecker, name: "WebSocket" | "EventSource"): void {
  const Real = (globalThis as Record<string, unknown>)[name] as
    | (new (url: string | URL, options?: unknown) => { close(): void })
    | undefined;
  if (Real === undefined) return;
  const Guarded = class extends Real {
    constructor(url: string | URL, options?: unknown) {
      const target = new URL(url);
      const checked = checkUrlLiteral(checker, target);
      super(url, options);
      if (!checked) checkUrl(checker, target).catch(() => this.close());
    }
  };
  Object.defineProperty(Guarded, "name", { value: name });
  define(globalThis, name, Guarded);
}

type LookupCallback = (error: Error | null, address?: unknown, family?: number) => void;
type LookupFunction = (host: string, options: Record<string, unknown>, callback: LookupCallback) => void;

/**
 * node:net sockets (and node:http/https/tls over them): literals are checked before connecting, and names go
 * through a lookup that checks every answer, so the socket connects only to checked addresses.
 */
function guardNodeConnect(checker: HostChecker): void {
  guardMember(net.Socket.prototype, "connect", (realConnect) => guardedSocketConnect(checker, realConnect));
}

/** `socket.connect` over `realConnect` (see guardNodeConnect). */
function guardedSocketConnect(
  checker: HostChecker,
  realConnect: (...args: unknown[]) => unknown,
): (this: net.Socket, ...args: unknown[]) => unknown {
  return function connect(this: net.Socket, ...args: unknown[]): unknown {
    const call = connectCall(args);
    if (call === null) return realConnect.apply(this, args); // a Unix socket path
    const { options, callback } = call;
    const host = typeof options.host === "string" ? options.host : "localhost";
    const port = Number(options.port);
    if (checker.checkLiteral(host, port)) return realConnect.apply(this, args);
    const userLookup = (options.lookup ?? dnsLookup) as LookupFunction;
    const lookup: LookupFunction = (name, lookupOptions, done) => {
      userLookup(name, { ...lookupOptions, all: true }, (error, found) => {
        if (error) return done(error);
        const entries = found as { address: string; family: number }[];
        try {
          for (const entry of entries) checker.checkAddress(parseIp(entry.address)!, port, host);
        } catch (denied) {
          return done(denied as Error);
        }
        if (lookupOptions.all === true) return done(null, entries);
        done(null, entries[0]?.address, entries[0]?.family);
      });
    };
    return realConnect.call(this, { ...options, host, lookup }, ...(callback === undefined ? [] : [callback]));
  };
}

/** The options and callback of `socket.connect(...)`'s forms, or null for a Unix socket path. */
function connectCall(args: unknown[]): { options: Record<string, unknown>; callback?: unknown } | null {
  // node's own callers pass one normalized array: [options, callback].
  const list = Array.isArray(args[0]) ? args[0] as unknown[] : args;
  const [first, second] = list;
  const last = list.at(-1);
  const callback = typeof last === "function" ? last : undefined;
  if (first !== null && typeof first === "object") {
    const options = first as Record<string, unknown>;
    return typeof options.path === "string" ? null : { options, callback };
  }
  if (typeof first === "string" && !/^\d+$/.test(first)) return null;
  return { options: { port: first, host: typeof second === "string" ? second : undefined }, callback };
}

function define(target: object, name: string, value: unknown, configurable = true): void {
  Object.defineProperty(target, name, { value, writable: configurable, configurable, enumerable: false });
}
