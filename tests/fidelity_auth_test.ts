/**
 * Issue 13, auth rejections as Convex gives them: each way a user token is refused answers 401 with Convex's code and
 * message (HTTP API and sync); an HTTP action runs whatever its Bearer value, and `getUserIdentity()` throws the
 * verification error there, as on Convex.
 */
import { ConvexClient } from "convex/browser";

import { assertEquals, assertMatch, waitFor } from "./helpers/assert.ts";
import { startTestServer, SYNC_APP_FILES } from "./helpers/sync_app.ts";
import { stopBundler } from "./helpers/runtime_app.ts";
import { Authenticator, base64UrlEncode } from "../src/auth/mod.ts";
import { handleHttpAction } from "../src/http/http_action_handler.ts";

const FILES = {
  ...SYNC_APP_FILES,
  "http.ts": `
    import { anyApi, httpRouter } from "convex/server";
    import { httpAction } from "./_generated/server";
    const http = httpRouter();
    http.route({
      path: "/whoami",
      method: "GET",
      handler: httpAction(async (ctx) => Response.json(await ctx.auth.getUserIdentity())),
    });
    // A webhook that checks its own secret never asks for the identity: it runs whatever the header holds.
    http.route({ path: "/open", method: "POST", handler: httpAction(async () => new Response("ran")) });
    http.route({
      path: "/caught",
      method: "GET",
      handler: httpAction(async (ctx) => {
        try {
          return Response.json({ identity: await ctx.auth.getUserIdentity() });
        } catch (error) {
          return Response.json({ thrown: (error as Error).message });
        }
      }),
    });
    http.route({
      path: "/nested",
      method: "GET",
      handler: httpAction(async (ctx) => Response.json(await ctx.runQuery(anyApi.messages.whoami, {}))),
    });
    export default http;
  `,
  "auth.config.ts": `
    export default {
      providers: [
        { type: "customJwt", issuer: "https://multi.example", jwks: process.env.MULTI_JWKS, algorithm: "ES256",
          applicationID: "custom-app" },
        { type: "customJwt", issuer: "https://single.example", jwks: process.env.SINGLE_JWKS, algorithm: "ES256" },
        { domain: process.env.OIDC_DOMAIN, applicationID: "oidc-app" },
      ],
    };
  `,
};

type KeyPair = CryptoKeyPair & { jwk: JsonWebKey & { kid: string } };

async function keyPair(alg: "ES256" | "RS256", kid: string): Promise<KeyPair> {
  const params = alg === "ES256"
    ? { name: "ECDSA", namedCurve: "P-256" }
    : { name: "RSASSA-PKCS1-v1_5", modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: "SHA-256" };
  const pair = await crypto.subtle.generateKey(params, true, ["sign", "verify"]) as CryptoKeyPair;
  return { ...pair, jwk: { ...await crypto.subtle.exportKey("jwk", pair.publicKey), kid, alg, use: "sig" } };
}

/** A token signed by `key`; `kid: null` leaves the header without one. */
async function sign(key: KeyPair, claims: Record<string, unknown>, kid: string | null = key.jwk.kid): Promise<string> {
  const alg = key.jwk.kty === "EC" ? "ES256" : "RS256";
  const encode = (value: unknown) => base64UrlEncode(new TextEncoder().encode(JSON.stringify(value)));
  const header = kid === null ? { alg, typ: "JWT" } : { alg, kid, typ: "JWT" };
  const input = `${encode(header)}.${encode(claims)}`;
  const algorithm = alg === "ES256" ? { name: "ECDSA", hash: "SHA-256" } : { name: "RSASSA-PKCS1-v1_5" };
  const signature = await crypto.subtle.sign(algorithm, key.privateKey, new TextEncoder().encode(input));
  return `${input}.${base64UrlEncode(new Uint8Array(signature))}`;
}

const PARSE = "Could not parse JWT payload. Check that the token is a valid JWT format with three base64-encoded " +
  "parts separated by dots.";
const OIDC_VERIFY = "Could not verify OIDC token claim. Check that the token signature is valid and the token " +
  "hasn't expired.";

Deno.test({
  name: "fidelity: user tokens are refused with Convex's codes and messages",
  async fn(t) {
    const multiA = await keyPair("ES256", "c1");
    const multiB = await keyPair("ES256", "c2");
    const single = await keyPair("ES256", "s1");
    const oidc = await keyPair("RS256", "o1");
    const provider = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (request) => {
      const url = new URL(request.url);
      if (url.pathname === "/multi.json") return Response.json({ keys: [multiA.jwk, multiB.jwk] });
      if (url.pathname === "/single.json") return Response.json({ keys: [single.jwk] });
      if (url.pathname === "/.well-known/openid-configuration") {
        return Response.json({ issuer: url.origin, jwks_uri: `${url.origin}/oidc.json` });
      }
      if (url.pathname === "/oidc.json") return Response.json({ keys: [oidc.jwk] });
      return new Response("not found", { status: 404 });
    });
    const origin = `http://127.0.0.1:${provider.addr.port}`;
    const server = await startTestServer({
      files: FILES,
      env: { MULTI_JWKS: `${origin}/multi.json`, SINGLE_JWKS: `${origin}/single.json`, OIDC_DOMAIN: origin },
    });
    const nowS = Math.floor(Date.now() / 1000);
    const base = { sub: "user-1", iat: nowS, exp: nowS + 3600 };
    const multi = { ...base, iss: "https://multi.example", aud: "custom-app" };
    const refusal = async (token: string) => {
      const response = await fetch(server.url + "/api/query", {
        method: "POST",
        headers: { "Content-Type": "application/json", Authorization: `Bearer ${token}` },
        body: JSON.stringify({ path: "messages:hello", args: { name: "x" } }),
      });
      const body = await response.json();
      assertEquals(response.status, 401, JSON.stringify(body));
      return body as { code: string; message: string };
    };
    const accepted = async (token: string) => {
      const response = await fetch(server.url + "/api/query", {
        method: "POST",
        headers: { "Content-Type": "application/json", Authorization: `Bearer ${token}` },
        body: JSON.stringify({ path: "messages:hello", args: { name: "x" } }),
      });
      const body = await response.json();
      assertEquals([response.status, body.status], [200, "success"], JSON.stringify(body));
    };
    const listed = `[CustomJWT(issuer=https://multi.example, app_id=custom-app), ` +
      `CustomJWT(issuer=https://single.example, app_id=none), OIDC(domain=${origin}, app_id=oidc-app)]`;
    const noProvider = {
      code: "NoAuthProvider",
      message: "No auth provider found matching the given token. Check that your JWT's issuer and audience match " +
        `one of your configured providers: ${listed}`,
    };
    try {
      await t.step("good tokens pass (a single-key JWKS needs no kid)", async () => {
        await accepted(await sign(multiA, multi));
        await accepted(await sign(multiB, multi));
        await accepted(await sign(single, { ...base, iss: "https://single.example" }, null));
        await accepted(await sign(oidc, { ...base, iss: origin, aud: "oidc-app" }));
        await accepted(await sign(multiA, { ...multi, iat: nowS + 3 }));
      });

      await t.step("no matching provider, wrong issuer, wrong or missing audience: NoAuthProvider", async () => {
        assertEquals(await refusal(await sign(multiA, { ...multi, iss: "https://unknown.example" })), noProvider);
        assertEquals(await refusal(await sign(multiA, { ...multi, aud: "other-app" })), noProvider);
        const { aud: _aud, ...noAudience } = multi;
        assertEquals(await refusal(await sign(multiA, noAudience)), noProvider);
        assertEquals(await refusal(await sign(oidc, { ...base, iss: origin, aud: "custom-app" })), noProvider);
      });

      await t.step("malformed tokens and a missing issuer: InvalidAuthHeader", async () => {
        assertEquals(await refusal("not-a-jwt"), { code: "InvalidAuthHeader", message: PARSE });
        assertEquals(await refusal("a.b.c"), { code: "InvalidAuthHeader", message: PARSE });
        assertEquals(await refusal(await sign(multiA, { ...multi, exp: "tomorrow" })), {
          code: "InvalidAuthHeader",
          message: PARSE,
        });
        const { iss: _iss, ...noIssuer } = multi;
        assertEquals(await refusal(await sign(multiA, noIssuer)), {
          code: "InvalidAuthHeader",
          message: "Missing issuer claim ('iss') in JWT payload. The JWT must include an 'iss' claim that matches " +
            "one of your configured auth providers.",
        });
      });

      await t.step("expired tokens: custom JWT and OIDC", async () => {
        const custom = await refusal(await sign(multiA, { ...multi, exp: nowS - 60 }));
        assertEquals(custom.code, "InvalidAuthHeader");
        assertMatch(custom.message, /^Could not validate token: Token expired 6\d seconds ago$/);
        assertEquals(await refusal(await sign(oidc, { ...base, iss: origin, aud: "oidc-app", exp: nowS - 60 })), {
          code: "Unauthenticated",
          message: OIDC_VERIFY,
        });
      });

      await t.step("signing keys: no kid among several keys, an unknown kid, a forged signature", async () => {
        assertEquals(await refusal(await sign(multiA, multi, null)), {
          code: "InvalidAuthHeader",
          message: "Could not decode token. JWT may be missing a 'kid' (key ID) header.",
        });
        const stranger = await keyPair("ES256", "c1");
        const kidMessage = (kid: string) =>
          `Could not decode token. The JWT's 'kid' (key ID) header is '${kid}', does this key match any key in the ` +
          "provider's JWKS?";
        assertEquals(await refusal(await sign(multiA, multi, "c9")), {
          code: "InvalidAuthHeader",
          message: kidMessage("c9"),
        });
        assertEquals(await refusal(await sign(stranger, multi)), {
          code: "InvalidAuthHeader",
          message: kidMessage("c1"),
        });
        assertEquals(await refusal(await sign(stranger, { ...base, iss: origin, aud: "oidc-app" }, "o1")), {
          code: "Unauthenticated",
          message: OIDC_VERIFY,
        });
      });

      await t.step("iat in the future beyond the 5 s allowance", async () => {
        const body = await refusal(await sign(multiA, { ...multi, iat: nowS + 120 }));
        assertEquals(body.code, "InvalidAuthHeader");
        assertMatch(body.message, /^Could not validate token: Token will be valid in 1[01]\d seconds$/);
      });

      await t.step("no providers configured", async () => {
        const authenticator = new Authenticator({ adminKey: "k", authConfig: () => ({ providers: [] }) });
        let error: unknown = null;
        await authenticator.fromUserToken(await sign(multiA, multi)).catch((caught) => error = caught);
        assertEquals((error as { code?: string }).code, "NoAuthProvider");
        assertEquals(
          (error as Error).message,
          "No auth provider found matching the given token (no providers configured). Check convex/auth.config.ts.",
        );
      });

      await t.step("sync: the client is told the same message and signs out", async () => {
        const logged: string[] = [];
        const original = console.error;
        console.error = (...parts: unknown[]) => logged.push(parts.map(String).join(" "));
        const client = new ConvexClient(server.url);
        try {
          // A fresh token each time, as a real token fetcher gives: the client logs the server's message once it
          // gives up on fresh tokens.
          const fetchToken = () => sign(multiA, { ...multi, exp: nowS - 60, jti: crypto.randomUUID() });
          const ok = await new Promise<boolean>((resolve) => client.setAuth(fetchToken, resolve));
          assertEquals(ok, false);
          const line = await waitFor(
            "the client's log line",
            () => Promise.resolve(logged.join("\n")),
            (text) => /Failed to authenticate/.test(text),
          );
          assertMatch(
            line,
            /Failed to authenticate: "Could not validate token: Token expired \d+ seconds ago", check your server auth/,
          );
        } finally {
          console.error = original;
          await client.close();
        }
      });

      await t.step(
        "HTTP actions: a Bearer value that does not verify runs the action; getUserIdentity throws",
        async () => {
          // As on Convex (and as the `convex` package documents getUserIdentity: it throws in HTTP actions).
          const site = (path: string, authorization: string | null, method = "GET") =>
            handleHttpAction(
              server.backend,
              new Request(`http://site${path}`, {
                method,
                headers: authorization === null ? {} : { Authorization: authorization },
              }),
              path,
            );
          const open = await site("/open", "Bearer sk_live_webhook_secret", "POST");
          assertEquals([open.status, await open.text()], [200, "ran"]);
          const caught = await site("/caught", "Bearer sk_live_webhook_secret");
          assertEquals(await caught.json(), { thrown: PARSE });
          const uncaught = await site("/whoami", "Bearer sk_live_webhook_secret");
          assertEquals(uncaught.status, 500);
          const body = await uncaught.json() as { code: string; trace: string };
          assertEquals(body.code, `${body.code.slice(0, 31)}Server Error: Uncaught Error: ${PARSE}`);
          assertMatch(body.code, /^\[Request ID: [0-9a-f]{16}\] /);
          // The queries the action calls see the same failure.
          const nested = await site("/nested", "Bearer not.a.jwt");
          assertEquals(nested.status, 500);
          assertMatch((await nested.json()).trace, new RegExp(`Uncaught Error: ${PARSE.replaceAll(".", "\\.")}`));
          const expired = await site("/caught", `Bearer ${await sign(multiA, { ...multi, exp: nowS - 60 })}`);
          assertMatch((await expired.json()).thrown, /^Could not validate token: Token expired 6\d seconds ago$/);
        },
      );

      await t.step("HTTP actions: a verified token, no header and another scheme", async () => {
        const site = (path: string, headers: Record<string, string>) =>
          handleHttpAction(server.backend, new Request(`http://site${path}`, { headers }), path);
        const token = await sign(multiA, multi);
        const identity = await (await site("/whoami", { Authorization: `Bearer ${token}` })).json();
        assertEquals(identity.tokenIdentifier, "https://multi.example|user-1");
        const nested = await (await site("/nested", { Authorization: `Bearer ${token}` })).json();
        assertEquals(nested.tokenIdentifier, "https://multi.example|user-1");
        assertEquals(await (await site("/whoami", {})).json(), null);
        assertEquals(await (await site("/caught", { Authorization: "Basic dXNlcjpwYXNz" })).json(), { identity: null });
      });
    } finally {
      await server.close();
      await provider.shutdown();
      await stopBundler();
    }
  },
});
