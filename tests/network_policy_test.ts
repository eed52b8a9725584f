/**
 * The network policy of user code (issue 9, item 2), end to end: real actions in real runner processes try every
 * spelling of loopback, the machine's own addresses, the database and the server's ports, try to listen, and queries
 * and mutations try the network at all. Plus unit tests of the address arithmetic behind the `--deny-net` list.
 */
import { assert, assertEquals, assertStringIncludes } from "./helpers/assert.ts";
import { startAppPool } from "./helpers/app_pool.ts";
import type { ActionNetOptions, ExecuteRequest } from "../src/runtime/mod.ts";
import type { PersistenceLocation } from "../src/persistence/types.ts";
import {
  formatIp,
  isNonPublicAddress,
  type NetPolicyEnvironment,
  NetPolicyMatcher,
  parseIp,
  parseIpv4Cidr,
  rangeToCidrs,
  resolveActionNetPolicy,
  subtractRanges,
} from "../src/runtime/net_policy/mod.ts";
import { parseCommandLine, UsageError } from "../src/server/config.ts";
import { PG_URL } from "./helpers/databases.ts";
import { commandLineOf, descendantPids, spawnServerChild } from "./helpers/server_child.ts";

/** A probe's outcome: reached (with what it got) or refused (with the error's name and message). */
interface Probe {
  target: string;
  ok: boolean;
  detail: string;
}

const NET_APP: Record<string, string> = {
  "_generated/server.ts": `
    export { queryGeneric as query, mutationGeneric as mutation, actionGeneric as action } from "convex/server";
  `,
  "schema.ts": `
    import { defineSchema } from "convex/server";
    export default defineSchema({});
  `,
  "net.ts": `
    import { action, query, mutation } from "./_generated/server";
    import { v } from "convex/values";

    const refused = (target, error) => ({ target, ok: false, detail: String(error?.name) + ": " + String(error?.message) });
    // Computed, so the bundler leaves it alone and the push's import scan cannot see it: what an attacker would do.
    const node = (name) => import(["node", name].join(":"));

    async function probeFetch(url) {
      try {
        const response = await fetch(url);
        return { target: url, ok: true, detail: String(response.status) + " " + (await response.text()) };
      } catch (error) {
        return refused(url, error);
      }
    }

    async function probeConnect({ hostname, port }) {
      const target = hostname + " " + port;
      try {
        const conn = await Deno.connect({ hostname, port });
        conn.close();
        return { target, ok: true, detail: "connected" };
      } catch (error) {
        return refused(target, error);
      }
    }

    async function probeNodeConnect({ hostname, port }) {
      const target = hostname + " " + port;
      const net = await node("net");
      return await new Promise((resolve) => {
        try {
          const socket = net.connect({ host: hostname, port });
          socket.on("connect", () => { socket.destroy(); resolve({ target, ok: true, detail: "connected" }); });
          socket.on("error", (error) => resolve(refused(target, error)));
        } catch (error) {
          resolve(refused(target, error));
        }
      });
    }

    async function probeWebSocket(url) {
      return await new Promise((resolve) => {
        try {
          const socket = new WebSocket(url);
          socket.onopen = () => { socket.close(); resolve({ target: url, ok: true, detail: "open" }); };
          socket.onerror = (event) => resolve(refused(url, { name: "ErrorEvent", message: event.message }));
        } catch (error) {
          resolve(refused(url, error));
        }
      });
    }

    async function probeDenoListens(results) {
      const attempt = async (target, start) => {
        try {
          const listener = await start();
          results.push({ target, ok: true, detail: "listening" });
          await listener?.close?.();
        } catch (error) {
          results.push(refused(target, error));
        }
      };
      await attempt("Deno.listen", () => Deno.listen({ port: 0 }));
      await attempt("Deno.listen 127.0.0.1", () => Deno.listen({ hostname: "127.0.0.1", port: 0 }));
      await attempt("Deno.listenTls", () => Deno.listenTls({ port: 0, cert: "", key: "" }));
      await attempt("Deno.serve", () => Deno.serve({ port: 0, onListen() {} }, () => new Response("x")).shutdown());
      return results;
    }

    async function probeListens() {
      const results = [];
      const attempt = async (target, start) => {
        try {
          const listener = await start();
          results.push({ target, ok: true, detail: "listening" });
          await listener?.close?.();
        } catch (error) {
          results.push(refused(target, error));
        }
      };
      await probeDenoListens(results);
      const net = await node("net");
      const http = await node("http");
      const dgram = await node("dgram");
      const nodeListen = (server, host) => new Promise((resolve, reject) => {
        server.on("error", reject);
        server.listen(0, host, () => resolve({ close: () => server.close() }));
      });
      await attempt("node:net listen", () => nodeListen(net.createServer(), "127.0.0.1"));
      await attempt("node:net listen any", () => nodeListen(net.createServer(), undefined));
      await attempt("node:http listen", () => nodeListen(http.createServer(), "127.0.0.1"));
      await attempt("node:dgram bind", () => new Promise((resolve, reject) => {
        const socket = dgram.createSocket("udp4");
        socket.on("error", reject);
        socket.bind(0, "127.0.0.1", () => resolve({ close: () => socket.close() }));
      }));
      return results;
    }

    export const fetchAll = action({ args: { urls: v.array(v.string()) }, handler: async (_ctx, { urls }) =>
      await Promise.all(urls.map(probeFetch)) });
    export const connectAll = action({
      args: { targets: v.array(v.object({ hostname: v.string(), port: v.number() })) },
      handler: async (_ctx, { targets }) => await Promise.all(targets.map(probeConnect)),
    });
    export const nodeConnectAll = action({
      args: { targets: v.array(v.object({ hostname: v.string(), port: v.number() })) },
      handler: async (_ctx, { targets }) => await Promise.all(targets.map(probeNodeConnect)),
    });
    export const webSocketAll = action({ args: { urls: v.array(v.string()) }, handler: async (_ctx, { urls }) =>
      await Promise.all(urls.map(probeWebSocket)) });
    export const listenAll = action({ args: {}, handler: async () => await probeListens() });
    export const queryNetwork = query({ args: { url: v.string(), port: v.number() }, handler: async (_ctx, { url, port }) =>
      [await probeFetch(url), await probeConnect({ hostname: "127.0.0.1", port }), ...await probeDenoListens([])] });
    export const mutationNetwork = mutation({ args: { url: v.string(), port: v.number() }, handler: async (_ctx, { url, port }) =>
      [await probeFetch(url), await probeConnect({ hostname: "127.0.0.1", port })] });
  `,
};

/** A deployment of NET_APP and a pool running it with `actionNet`, against `location`. */
async function startNetApp(location: PersistenceLocation, actionNet?: ActionNetOptions) {
  const app = await startAppPool({
    files: NET_APP,
    location,
    pool: { queryRunners: 1, maxActionRunners: 1, ...(actionNet === undefined ? {} : { actionNet }) },
    requestId: "net",
  });
  const run = async (udfType: ExecuteRequest["udfType"], exportName: string, args: unknown): Promise<Probe[]> => {
    const result = await app.execute(udfType, "net.js", exportName, args as Record<string, unknown>);
    assert(result.ok, `${exportName} failed: ${result.errorMessage}`);
    return JSON.parse(result.resultJson!) as Probe[];
  };
  return { run, close: () => app.close() };
}

/** A local HTTP and WebSocket server on every address of the machine (dual-stack `::`), plus a redirect route. */
function startLocalServer() {
  return Deno.serve({ hostname: "::", port: 0, onListen: () => {} }, (request) => {
    if (request.headers.get("upgrade") === "websocket") return Deno.upgradeWebSocket(request).response;
    const url = new URL(request.url);
    const to = url.searchParams.get("to");
    if (url.pathname === "/redirect" && to !== null) return Response.redirect(to, 302);
    return new Response("local secret");
  });
}

/** The machine's own addresses that this process can reach the local server on (IPv6 link-local needs a zone). */
function ownAddresses(): string[] {
  return [...new Set(Deno.networkInterfaces().map((entry) => entry.address))]
    .filter((address) => !address.toLowerCase().startsWith("fe80:"));
}

function urlHost(address: string): string {
  return address.includes(":") ? `[${address}]` : address;
}

/** Every spelling of "this machine" for the HTTP server at `port`. */
function localUrls(port: number): string[] {
  const spellings = [
    "127.0.0.1",
    "localhost",
    "LOCALHOST.",
    "0.0.0.0",
    "0",
    "127.1",
    "127.0.0.2",
    "2130706433",
    "0x7f.1",
    "0x7f000001",
    "0177.0.0.1",
    "[::1]",
    "[::]",
    "[::ffff:127.0.0.1]",
    "[::ffff:7f00:1]",
    "[0:0:0:0:0:ffff:7f00:1]",
    "[::ffff:0.0.0.0]",
    ...ownAddresses().map(urlHost),
  ];
  return [...new Set(spellings)].map((host) => `http://${host}:${port}/`);
}

function refusedByPolicy(probe: Probe): boolean {
  return !probe.ok && probe.detail.startsWith("NotCapable:");
}

function assertAllRefused(probes: Probe[], what: string): void {
  const reached = probes.filter((probe) => !refusedByPolicy(probe));
  assertEquals(reached, [], `${what}: these were not refused by the policy`);
}

/** The test process itself (no policy) reaches each URL: so a refusal inside an action means the policy acted. */
async function assertReachableFromTest(urls: string[]): Promise<void> {
  for (const url of urls) {
    if (url.includes("LOCALHOST.")) continue;
    const response = await fetch(url);
    assertEquals(await response.text(), "local secret", url);
  }
}

Deno.test("network policy: actions reach no local address by any spelling, and nothing listens", async (t) => {
  const server = startLocalServer();
  const port = server.addr.port;
  const app = await startNetApp({ kind: "sqlite", path: `${await Deno.makeTempDir()}/net.sqlite3` });
  try {
    const urls = localUrls(port);
    await assertReachableFromTest(urls);

    await t.step("fetch", async () => {
      assertAllRefused(await app.run("action", "fetchAll", { urls }), "fetch");
    });

    await t.step("fetch of private IPv6 ranges (the worker's guard)", async () => {
      const probes = await app.run("action", "fetchAll", {
        urls: [`http://[fd00::3]:${port}/`, `http://[fe80::1]:${port}/`, `http://[fec0::1]:${port}/`],
      });
      assertAllRefused(probes, "private IPv6");
    });

    await t.step("Deno.connect and node:net", async () => {
      const hosts = [
        "127.0.0.1",
        "localhost",
        "0.0.0.0",
        "127.0.0.2",
        "::",
        "::1",
        "::ffff:127.0.0.1",
        ...ownAddresses(),
      ];
      const targets = hosts.map((hostname) => ({ hostname, port }));
      assertAllRefused(await app.run("action", "connectAll", { targets }), "Deno.connect");
      assertAllRefused(await app.run("action", "nodeConnectAll", { targets }), "node:net connect");
    });

    await t.step("WebSocket", async () => {
      const wsUrls = [
        "ws://127.0.0.1",
        "ws://[::1]",
        "ws://0.0.0.0",
        ...ownAddresses().map((a) => `ws://${urlHost(a)}`),
      ]
        .map((base) => `${base}:${port}/`);
      assertAllRefused(await app.run("action", "webSocketAll", { urls: wsUrls }), "WebSocket");
      // A name: the guard's check completes after the constructor, the flag refuses the resolved address.
      const byName = await app.run("action", "webSocketAll", { urls: [`ws://localhost:${port}/`] });
      assertEquals(byName.filter((probe) => probe.ok), []);
    });

    await t.step("listening: Deno.listen, Deno.serve, node:net, node:http, node:dgram", async () => {
      const probes = await app.run("action", "listenAll", {});
      assertEquals(probes.length, 8);
      assertAllRefused(probes, "listen");
    });

    await t.step("queries and mutations have no network at all", async () => {
      const args = { url: `http://127.0.0.1:${port}/`, port };
      const fromQuery = await app.run("query", "queryNetwork", args);
      assertEquals(fromQuery.filter((probe) => probe.ok), []);
      assertStringIncludes(fromQuery[0].detail, "fetch is not allowed in queries and mutations");
      const fromMutation = await app.run("mutation", "mutationNetwork", args);
      assertEquals(fromMutation.filter((probe) => probe.ok), []);
    });
  } finally {
    await app.close();
    await server.shutdown();
  }
});

Deno.test("network policy: --action-allow-host opens one host, never the database or the server's ports", async (t) => {
  const server = startLocalServer();
  const port = server.addr.port;
  const serverPort = startLocalServer();
  const pg = new URL(PG_URL);
  const pgPort = Number(pg.port || 5432);
  const app = await startNetApp({ kind: "postgres", url: PG_URL }, {
    allowHosts: ["127.0.0.1"],
    serverPorts: Promise.resolve([serverPort.addr.port]),
  });
  try {
    await t.step("the allowed host is reachable by fetch, Deno.connect, node:net and WebSocket", async () => {
      const fetched = await app.run("action", "fetchAll", { urls: [`http://127.0.0.1:${port}/`] });
      assertEquals(fetched, [{ target: `http://127.0.0.1:${port}/`, ok: true, detail: "200 local secret" }]);
      const target = [{ hostname: "127.0.0.1", port }];
      assertEquals((await app.run("action", "connectAll", { targets: target }))[0].ok, true);
      assertEquals((await app.run("action", "nodeConnectAll", { targets: target }))[0].ok, true);
      const opened = await app.run("action", "webSocketAll", { urls: [`ws://127.0.0.1:${port}/`] });
      assertEquals(opened[0].ok, true, opened[0].detail);
    });

    await t.step("other spellings of loopback stay closed", async () => {
      const urls = [`http://[::1]:${port}/`, `http://0.0.0.0:${port}/`, `http://127.0.0.2:${port}/`];
      assertAllRefused(await app.run("action", "fetchAll", { urls }), "other loopback");
    });

    await t.step("a redirect from the allowed host to a closed one is refused", async () => {
      const urls = [`http://[::1]:${port}/`, `http://[fd00::3]:${port}/`, `http://127.0.0.2:${port}/`].map((to) =>
        `http://127.0.0.1:${port}/redirect?to=${encodeURIComponent(to)}`
      );
      const probes = await app.run("action", "fetchAll", { urls });
      assertEquals(probes.filter((probe) => probe.ok), []);
      // A redirect that stays on allowed ground is followed as usual.
      const allowed = `http://127.0.0.1:${port}/redirect?to=${encodeURIComponent(`http://localhost:${port}/`)}`;
      assertEquals(await app.run("action", "fetchAll", { urls: [allowed] }), [
        { target: allowed, ok: true, detail: "200 local secret" },
      ]);
    });

    await t.step("the database port stays closed on every spelling, the allowed host included", async () => {
      const hosts = ["127.0.0.1", "localhost", "0.0.0.0", "::1", pg.hostname.replace(/^\[|\]$/g, "")];
      const targets = hosts.map((hostname) => ({ hostname, port: pgPort }));
      assertAllRefused(await app.run("action", "connectAll", { targets }), "database via Deno.connect");
      assertAllRefused(await app.run("action", "nodeConnectAll", { targets }), "database via node:net");
    });

    await t.step("the server's own ports stay closed on the allowed host", async () => {
      const urls = [`http://127.0.0.1:${serverPort.addr.port}/`, `http://localhost:${serverPort.addr.port}/`];
      assertAllRefused(await app.run("action", "fetchAll", { urls }), "server port");
    });

    await t.step("listening stays impossible on the allowed host", async () => {
      assertAllRefused(await app.run("action", "listenAll", {}), "listen");
    });
  } finally {
    await app.close();
    await server.shutdown();
    await serverPort.shutdown();
  }
});

Deno.test("network policy: the server hands --action-allow-host and its own ports (even with --port 0) to action runners", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "denvex-net-server-" });
  const server = await spawnServerChild(dataDir, ["--action-allow-host", "127.0.0.1"]);
  try {
    const apiUrl = new URL(await server.ready());
    const sitePort = /HTTP actions: +http:\/\/[^:]+:(\d+)/.exec(server.output())?.[1];
    assert(sitePort !== undefined, server.output());
    // The warm action runner starts once the ports are known; its flags carry the policy.
    let denyNet: string[] = [];
    for (let attempt = 0; attempt < 200 && denyNet.length === 0; attempt++) {
      for (const pid of await descendantPids(server.pid)) {
        const flag = (await commandLineOf(pid)).split(" ").find((arg) => arg.startsWith("--deny-net="));
        if (flag !== undefined) denyNet = flag.slice("--deny-net=".length).split(",");
      }
      if (denyNet.length === 0) await new Promise((resolve) => setTimeout(resolve, 50));
    }
    assert(denyNet.length > 0, `no action runner with --deny-net:\n${server.output()}`);
    // 127.0.0.1 is open, the rest of loopback closed, the server's own ports closed on 127.0.0.1.
    assert(!denyNet.includes("127.0.0.0/8") && denyNet.includes("127.0.0.0") && denyNet.includes("127.0.0.2/31"));
    assert(denyNet.includes(`127.0.0.1:${apiUrl.port}`) && denyNet.includes(`127.0.0.1:${sitePort}`), denyNet.join());
    assert(denyNet.includes("[::1]") && denyNet.includes("10.0.0.0/8"));
  } finally {
    await server.stop();
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("network policy: IP literals parse in every spelling the OS accepts", () => {
  const cases: [string, string][] = [
    ["127.0.0.1", "127.0.0.1"],
    ["127.1", "127.0.0.1"],
    ["2130706433", "127.0.0.1"],
    ["0x7f.1", "127.0.0.1"],
    ["0177.0.0.1", "127.0.0.1"],
    ["0", "0.0.0.0"],
    ["[::1]", "::1"],
    ["0:0:0:0:0:0:0:1", "::1"],
    ["::ffff:127.0.0.1", "::ffff:7f00:1"],
    ["fe80::1%eth0", "fe80::1"],
    ["FD00:0:0::2", "fd00::2"],
    ["2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"],
  ];
  for (const [text, canonical] of cases) assertEquals(formatIp(parseIp(text)!), canonical, text);
  for (const name of ["localhost", "example.com", "1.2.3.4.5", "256.1.1.1", "::1::2", "127.0.0.1a", ""]) {
    assertEquals(parseIp(name), null, name);
  }
});

Deno.test("network policy: non-public ranges in both families, embedded IPv4 judged by its address", () => {
  const nonPublic = [
    "10.1.2.3",
    "100.64.0.1",
    "169.254.169.254",
    "172.31.255.255",
    "192.168.1.1",
    "0.0.0.0",
    "224.0.0.1",
    "255.255.255.255",
    "::",
    "::1",
    "::ffff:10.0.0.1",
    "64:ff9b::a00:1",
    "2002:c0a8:101::1",
    "fd12::1",
    "fe80::1",
    "ff02::1",
  ];
  for (const text of nonPublic) assert(isNonPublicAddress(parseIp(text)!), `${text} should be non-public`);
  for (
    const text of ["8.8.8.8", "172.32.0.1", "100.128.0.1", "2606:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808"]
  ) {
    assert(!isNonPublicAddress(parseIp(text)!), `${text} should be public`);
  }
});

Deno.test("network policy: IPv4 range subtraction yields the exact CIDR cover", () => {
  const loopback = parseIpv4Cidr("127.0.0.0/8");
  const one = parseIpv4Cidr("127.0.0.1/32");
  const cidrs = subtractRanges([loopback], [one]).flatMap(rangeToCidrs);
  assertEquals(cidrs, [
    "127.0.0.0",
    "127.0.0.2/31",
    "127.0.0.4/30",
    "127.0.0.8/29",
    "127.0.0.16/28",
    "127.0.0.32/27",
    "127.0.0.64/26",
    "127.0.0.128/25",
    "127.0.1.0/24",
    "127.0.2.0/23",
    "127.0.4.0/22",
    "127.0.8.0/21",
    "127.0.16.0/20",
    "127.0.32.0/19",
    "127.0.64.0/18",
    "127.0.128.0/17",
    "127.1.0.0/16",
    "127.2.0.0/15",
    "127.4.0.0/14",
    "127.8.0.0/13",
    "127.16.0.0/12",
    "127.32.0.0/11",
    "127.64.0.0/10",
    "127.128.0.0/9",
  ]);
  // The cover is exact: every address but the hole, counted.
  const count = cidrs.reduce((total, cidr) => {
    const range = parseIpv4Cidr(cidr.includes("/") ? cidr : `${cidr}/32`);
    return total + range.last - range.first + 1;
  }, 0);
  assertEquals(count, 2 ** 24 - 1);
  // Holes at the edges, overlapping and outside; merging of adjacent ranges.
  assertEquals(
    subtractRanges([parseIpv4Cidr("10.0.0.0/30")], [{ first: 0x0a000000, last: 0x0a000000 }]).flatMap(rangeToCidrs),
    ["10.0.0.1", "10.0.0.2/31"],
  );
  assertEquals(subtractRanges([parseIpv4Cidr("10.0.0.0/8")], [parseIpv4Cidr("0.0.0.0/0")]), []);
  assertEquals(
    subtractRanges([parseIpv4Cidr("10.0.0.0/9"), parseIpv4Cidr("10.128.0.0/9")], [parseIpv4Cidr("11.0.0.0/8")])
      .flatMap(rangeToCidrs),
    ["10.0.0.0/8"],
  );
  assertEquals(rangeToCidrs(parseIpv4Cidr("0.0.0.0/0")), ["0.0.0.0/0"]);
});

Deno.test("network policy: the deny list opens allowed hosts but keeps the database and server ports", async () => {
  const environment: NetPolicyEnvironment = {
    resolve: (host) => {
      const table: Record<string, string[]> = {
        "db.internal": ["10.0.0.7", "fd00::7"],
        "cache.internal": ["10.0.0.9"],
        "public.db": ["203.0.114.5"],
      };
      const found = table[host];
      return found ? Promise.resolve(found) : Promise.reject(new Error("ENOTFOUND"));
    },
    ownAddresses: () => ["127.0.0.1", "::1", "198.100.1.2", "2606:1::2", "fe80::1"],
  };
  const policy = await resolveActionNetPolicy({
    allowHosts: ["cache.internal", "127.0.0.1", "fd00::5"],
    database: { host: "public.db", port: 5432 },
    serverPorts: [3210, 3211],
  }, environment);
  const matcher = new NetPolicyMatcher(policy);
  const denies = (text: string, port: number, name: string | null = null) => matcher.denies(parseIp(text)!, port, name);
  assert(!policy.denyNet.includes("127.0.0.0/8") && policy.denyNet.includes("127.0.0.0"));
  assert(policy.denyNet.includes("198.100.1.2") && policy.denyNet.includes("[2606:1::2]"));
  assert(policy.denyNet.includes("[::1]") && policy.denyNet.includes("[::]") && policy.denyNet.includes("[fe80::1]"));
  assert(policy.denyNet.includes("127.0.0.1:3210") && policy.denyNet.includes("10.0.0.9:5432"));
  assert(policy.denyNet.includes("203.0.114.5:5432") && policy.denyNet.includes("public.db:5432"));
  // Allowed hosts: open, except the protected ports.
  assert(!denies("10.0.0.9", 6379) && !denies("127.0.0.1", 8080) && !denies("fd00::5", 443));
  assert(denies("127.0.0.1", 3210) && denies("10.0.0.9", 5432) && denies("fd00::5", 3211));
  // Everything else local stays closed, by any family or form.
  assert(denies("127.0.0.2", 8080) && denies("10.0.0.8", 6379) && denies("::ffff:127.0.0.2", 80));
  assert(denies("fd00::6", 443) && denies("198.100.1.2", 443) && denies("2606:1::2", 443));
  // The database: its port on its addresses and its name; public hosts otherwise open.
  assert(denies("203.0.114.5", 5432) && !denies("203.0.114.5", 443) && !denies("8.8.8.8", 5432));
  assert(matcher.deniesName("PUBLIC.db", 5432));
  await resolveActionNetPolicy({ allowHosts: ["nowhere.invalid"], database: null, serverPorts: [] }, environment)
    .then(() => assert(false, "an allowed host that does not resolve must fail"), (error: Error) => {
      assertStringIncludes(error.message, "nowhere.invalid");
    });
});

Deno.test("network policy: --action-allow-host is repeatable and takes names or IP literals only", () => {
  const parsed = parseCommandLine(
    [
      "serve",
      "--action-allow-host",
      "cache.internal",
      "--action-allow-host",
      "[fd00::5]",
      "--action-allow-host=10.0.0.9",
    ],
    () => undefined,
  );
  assert(parsed.kind === "serve");
  assertEquals(parsed.config.actionAllowHosts, ["cache.internal", "fd00::5", "10.0.0.9"]);
  assertEquals(
    (parseCommandLine(["serve"], () => undefined) as { config: { actionAllowHosts: string[] } }).config
      .actionAllowHosts,
    [],
  );
  for (const bad of ["10.0.0.0/8", "host:5432", "http://x", "a b", ""]) {
    let error: unknown = null;
    try {
      parseCommandLine(["serve", "--action-allow-host", bad], () => undefined);
    } catch (caught) {
      error = caught;
    }
    assert(error instanceof UsageError, `--action-allow-host ${bad} should be refused`);
  }
});
