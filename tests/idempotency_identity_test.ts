/**
 * Mutation idempotency is bound to the caller's identity: a client that reuses another client's `sessionId` (and so
 * the same `(sessionId, requestId)` key) under a different identity runs its own mutation and never receives the other
 * identity's result; the same identity re-sending the key still gets the first result without a second run.
 */
import { assert, assertEquals, assertNotEquals } from "./helpers/assert.ts";
import { RawSocket } from "./helpers/raw_socket.ts";
import { ADMIN_KEY, withServer } from "./helpers/sync_app.ts";
import { stopBundler } from "./helpers/runtime_app.ts";

type Identity = { tokenIdentifier: string } | "anonymous";

/** Sends one mutation as `identity` on a new socket of session `sessionId`; resolves with its MutationResponse. */
async function sendAs(
  url: string,
  sessionId: string,
  identity: Identity,
  body: string,
): Promise<Record<string, unknown>> {
  const raw = new RawSocket(url);
  await raw.opened;
  try {
    raw.connect({ sessionId });
    if (identity !== "anonymous") {
      raw.send({ type: "Authenticate", baseVersion: 0, tokenType: "Admin", value: ADMIN_KEY, impersonating: identity });
    }
    raw.send({ type: "Mutation", requestId: 0, udfPath: "messages:send", args: [{ channel: "idem", body }] });
    await raw.until(() => raw.ofType("MutationResponse").length === 1, "mutation response");
    return raw.ofType("MutationResponse")[0];
  } finally {
    raw.socket.close();
  }
}

async function countMessages(url: string): Promise<number> {
  const response = await fetch(`${url}/api/query`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ path: "messages:list", args: { channel: "idem" } }),
  });
  const body = await response.json() as { status: string; value: string[] };
  assertEquals(body.status, "success");
  return body.value.length;
}

Deno.test({
  name: "idempotency: a reused sessionId under another identity runs its own mutation, never gets another's result",
  async fn() {
    await withServer(async (server) => {
      const sessionId = crypto.randomUUID();
      const alice = { tokenIdentifier: "https://issuer.test|alice" };
      const bob = { tokenIdentifier: "https://issuer.test|bob" };

      const first = await sendAs(server.url, sessionId, alice, "from alice");
      assertEquals(first.success, true);
      assertEquals(await countMessages(server.url), 1);

      const fromBob = await sendAs(server.url, sessionId, bob, "from bob");
      assertEquals(fromBob.success, true, "bob's mutation runs");
      assertNotEquals(fromBob.result, first.result, "bob never receives alice's result");
      assertEquals(await countMessages(server.url), 2);

      const fromAnonymous = await sendAs(server.url, sessionId, "anonymous", "from nobody");
      assertEquals(fromAnonymous.success, true);
      assert(fromAnonymous.result !== first.result && fromAnonymous.result !== fromBob.result);
      assertEquals(await countMessages(server.url), 3);

      // The key still deduplicates within one identity: alice's re-send is answered with her first result.
      const replay = await sendAs(server.url, sessionId, alice, "from alice");
      assertEquals(replay, first);
      assertEquals(await countMessages(server.url), 3, "the re-send did not run again");
    });
    await stopBundler();
  },
});

Deno.test({
  name: "idempotency: durable results are bound to the identity (executor, admin vs anonymous vs user)",
  async fn() {
    await withServer(async (server) => {
      const executor = server.backend.executor;
      const key = `${crypto.randomUUID()}\u00007`;
      const send = (identityJson: string | null, allowInternal: boolean, body: string) =>
        executor.call({
          path: "messages:send",
          args: { channel: "idem", body },
          expectedType: "mutation",
          identityJson,
          allowInternal,
          idempotencyKey: key,
        });
      const carol = JSON.stringify({ tokenIdentifier: "https://issuer.test|carol" });
      const callers: [string | null, boolean][] = [[null, false], [null, true], [carol, false], [carol, true]];
      const results: string[] = [];
      for (const [identityJson, admin] of callers) {
        const result = await send(identityJson, admin, "x");
        assert(result.ok, result.ok ? "" : result.errorMessage);
        results.push(result.valueJson);
        const again = await send(identityJson, admin, "x");
        assert(again.ok);
        assertEquals(again.valueJson, result.valueJson, "the same caller gets its first result");
      }
      assertEquals(new Set(results).size, callers.length, "each caller ran its own mutation");
      assertEquals(await countMessages(server.url), callers.length);
    });
    await stopBundler();
  },
});
