/** Authentication with `auth.config.ts` providers (customJwt and OIDC), JWKS served by the test on loopback. */
import { ConvexClient, ConvexHttpClient } from "convex/browser";
import { anyApi } from "convex/server";
import { assert, assertEquals, assertMatch } from "./helpers/assert.ts";
import { startTestServer, SYNC_APP_FILES } from "./helpers/sync_app.ts";
import { stopBundler } from "./helpers/runtime_app.ts";
import { base64UrlEncode } from "../src/auth/mod.ts";
import { handleHttpAction } from "../src/http/http_action_handler.ts";

const api = anyApi;
const AUTH_FILES = {
  ...SYNC_APP_FILES,
  "http.ts": `
    import { httpRouter } from "convex/server";
    import { httpAction } from "./_generated/server";
    const http = httpRouter();
    http.route({
      path: "/whoami",
      method: "GET",
      handler: httpAction(async (ctx) => Response.json(await ctx.auth.getUserIdentity())),
    });
    export default http;
  `,
  "auth.config.ts": `
    export default {
      providers: [
        { type: "customJwt", issuer: process.env.CUSTOM_ISSUER, jwks: process.env.CUSTOM_JWKS, algorithm: "ES256",
          applicationID: "custom-app" },
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
  const jwk = { ...await crypto.subtle.exportKey("jwk", pair.publicKey), kid, alg, use: "sig" };
  return { ...pair, jwk };
}

async function sign(key: KeyPair, claims: Record<string, unknown>): Promise<string> {
  const alg = key.jwk.kty === "EC" ? "ES256" : "RS256";
  const encode = (value: unknown) => base64UrlEncode(new TextEncoder().encode(JSON.stringify(value)));
  const input = `${encode({ alg, kid: key.jwk.kid, typ: "JWT" })}.${encode(claims)}`;
  const algorithm = alg === "ES256" ? { name: "ECDSA", hash: "SHA-256" } : { name: "RSASSA-PKCS1-v1_5" };
  const signature = await crypto.subtle.sign(algorithm, key.privateKey, new TextEncoder().encode(input));
  return `${input}.${base64UrlEncode(new Uint8Array(signature))}`;
}

Deno.test({
  name: "auth: customJwt and OIDC tokens over HTTP and WebSocket; expired, forged, wrong audience rejected",
  async fn() {
    const custom = await keyPair("ES256", "c1");
    const oidc = await keyPair("RS256", "o1");
    const stranger = await keyPair("ES256", "c1");
    const provider = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (request) => {
      const url = new URL(request.url);
      const origin = url.origin;
      if (url.pathname === "/custom/jwks.json") return Response.json({ keys: [custom.jwk] });
      if (url.pathname === "/.well-known/openid-configuration") {
        return Response.json({ issuer: origin, jwks_uri: `${origin}/oidc/jwks.json` });
      }
      if (url.pathname === "/oidc/jwks.json") return Response.json({ keys: [oidc.jwk] });
      return new Response("not found", { status: 404 });
    });
    const origin = `http://127.0.0.1:${provider.addr.port}`;
    const server = await startTestServer({
      files: AUTH_FILES,
      env: { CUSTOM_ISSUER: "https://custom.example", CUSTOM_JWKS: `${origin}/custom/jwks.json`, OIDC_DOMAIN: origin },
    });
    try {
      const nowS = Math.floor(Date.now() / 1000);
      const claims = { sub: "user-1", iat: nowS, exp: nowS + 3600, email: "u@example.com", email_verified: true };
      const customToken = await sign(custom, { ...claims, iss: "https://custom.example", aud: "custom-app" });
      const oidcToken = await sign(oidc, { ...claims, iss: origin, aud: ["oidc-app"], given_name: "Ann", team: "x" });

      const http = new ConvexHttpClient(server.url);
      http.setAuth(customToken);
      const who = await http.query(api.messages.whoami, {}) as Record<string, unknown>;
      assertEquals(who.tokenIdentifier, "https://custom.example|user-1");
      assertEquals(who.email, "u@example.com");
      assertEquals(who.emailVerified, true);
      http.setAuth(oidcToken);
      const whoOidc = await http.query(api.messages.whoami, {}) as Record<string, unknown>;
      assertEquals([whoOidc.tokenIdentifier, whoOidc.givenName, whoOidc.team], [`${origin}|user-1`, "Ann", "x"]);

      // HTTP actions see the identity of a Bearer token; for a token that does not check out, getUserIdentity throws
      // the verification error (as on Convex; tests/fidelity_auth_test.ts pins the message).
      const httpWhoami = async (authorization?: string, expectedStatus = 200) => {
        const headers: Record<string, string> = authorization ? { Authorization: authorization } : {};
        const response = await handleHttpAction(
          server.backend,
          new Request("http://site/whoami", { headers }),
          "/whoami",
        );
        assertEquals(response.status, expectedStatus);
        return await response.json();
      };
      assertEquals((await httpWhoami(`Bearer ${customToken}`)).tokenIdentifier, "https://custom.example|user-1");
      assertEquals(await httpWhoami(), null);
      assertMatch((await httpWhoami("Bearer not-a-jwt", 500)).code, /Server Error: Uncaught Error: .*JWT/);

      const rejected = async (token: string, expected: string) => {
        const response = await fetch(server.url + "/api/query", {
          method: "POST",
          headers: { "Content-Type": "application/json", Authorization: `Bearer ${token}` },
          body: JSON.stringify({ path: "messages:whoami", args: {} }),
        });
        const body = await response.json();
        assertEquals(response.status, 401, JSON.stringify(body));
        assert(String(body.message).includes(expected), `${expected}: ${JSON.stringify(body)}`);
      };
      await rejected(
        await sign(custom, { ...claims, iss: "https://custom.example", aud: "custom-app", exp: nowS - 60 }),
        "expired",
      );
      await rejected(
        await sign(stranger, { ...claims, iss: "https://custom.example", aud: "custom-app" }),
        "Could not decode token",
      );
      await rejected(await sign(custom, { ...claims, iss: "https://custom.example", aud: "other" }), "audience");
      await rejected(await sign(custom, { ...claims, iss: "https://unknown.example", aud: "x" }), "No auth provider");
      await rejected(customToken.slice(0, -4) + "AAAA", "Could not decode token");

      // WebSocket: a valid token changes the identity live queries see; a forged one ends in onChange(false).
      const client = new ConvexClient(server.url);
      try {
        const changes: boolean[] = [];
        client.setAuth(() => Promise.resolve(customToken), (ok) => changes.push(ok));
        const seen = await new Promise<Record<string, unknown>>((resolve) => {
          client.onUpdate(api.messages.whoami, {}, (value) => value && resolve(value as Record<string, unknown>));
        });
        assertEquals(seen.tokenIdentifier, "https://custom.example|user-1");
        assertEquals(changes[0], true);
      } finally {
        await client.close();
      }
      const forgedClient = new ConvexClient(server.url);
      try {
        const forged = await sign(stranger, { ...claims, iss: "https://custom.example", aud: "custom-app" });
        const result = await new Promise<boolean>((resolve) => {
          forgedClient.setAuth(() => Promise.resolve(forged), (ok) => resolve(ok));
        });
        assertEquals(result, false);
      } finally {
        await forgedClient.close();
      }
    } finally {
      await server.close();
      await provider.shutdown();
      await stopBundler();
    }
  },
});
