/**
 * Dashboard sign-in limits (src/dashboard/sign_in_limit.ts): failed sign-ins are counted per client, so one client's
 * wrong keys never lock the admin out from elsewhere, and the count of clients tracked is bounded.
 */
import { assert, assertEquals } from "./helpers/assert.ts";
import {
  MAX_FAILED_SIGN_INS,
  SIGN_IN_WINDOW_MS,
  signInClientOf,
  SignInLimiter,
} from "../src/dashboard/sign_in_limit.ts";
import { spawnServer } from "./helpers/convex_app.ts";

Deno.test("dashboard sign-in limit: per client, per window, IPv6 by /64, a bounded number of clients", () => {
  const limiter = new SignInLimiter(100);
  const attacker = signInClientOf("203.0.113.7");
  const admin = signInClientOf("198.51.100.2");
  for (let i = 0; i < MAX_FAILED_SIGN_INS; i++) {
    assert(!limiter.blocked(attacker, 1_000), `blocked after ${i} failures`);
    limiter.recordFailure(attacker, 1_000 + i);
  }
  assert(limiter.blocked(attacker, 2_000), "the attacker is refused for the rest of the window");
  assert(!limiter.blocked(admin, 2_000), "another client is not");
  assert(!limiter.blocked(attacker, 1_000 + SIGN_IN_WINDOW_MS + 1), "and the attacker again once it has passed");

  // One host's /64 is one client; an IPv4-mapped address is its IPv4 one.
  assertEquals(signInClientOf("2001:db8:0:1:aaaa::1"), "2001:db8:0:1::/64");
  assertEquals(signInClientOf("2001:DB8:0:1:ffff:ffff:ffff:ffff"), "2001:db8:0:1::/64");
  assertEquals(signInClientOf("2001:db8::1"), "2001:db8:0:0::/64");
  assertEquals(signInClientOf("::1"), "0:0:0:0::/64");
  assertEquals(signInClientOf("::ffff:192.0.2.1"), "192.0.2.1");
  assertEquals(signInClientOf(null), "unknown");

  // Many clients: the oldest are forgotten, the map stays bounded.
  for (let i = 0; i < 1_000; i++) limiter.recordFailure(`10.0.${i >> 8}.${i & 255}`, 3_000);
  assertEquals(limiter.trackedClients, 100);
});

Deno.test("dashboard sign-in limit: a client that keeps sending wrong keys gets 429, and only it", async () => {
  // Two clients on one machine: the loopback address and the machine's own non-loopback one, whose connections to
  // itself come from that address.
  const other = Deno.networkInterfaces().find((entry) => entry.family === "IPv4" && !entry.address.startsWith("127."));
  assert(other !== undefined, "this test needs a non-loopback IPv4 address on the machine");
  const server = await spawnServer({ extraArgs: ["--host=0.0.0.0"] });
  const port = new URL(server.url).port;
  try {
    const login = async (host: string, adminKey: string) => {
      const response = await fetch(`http://${host}:${port}/dashboard/api/login`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ adminKey }),
      });
      const body = await response.json() as { code?: string };
      return `${response.status} ${body.code ?? "signedIn"}`;
    };
    for (let i = 0; i < MAX_FAILED_SIGN_INS; i++) assertEquals(await login("127.0.0.1", "wrong"), "403 BadAdminKey");
    assertEquals(await login("127.0.0.1", "wrong"), "429 TooManySignIns");
    // That client is refused even with the right key until its window passes; the admin elsewhere signs in.
    assertEquals(await login("127.0.0.1", server.adminKey), "429 TooManySignIns");
    assertEquals(await login(other.address, server.adminKey), "200 signedIn");
  } finally {
    await server.close();
  }
});
