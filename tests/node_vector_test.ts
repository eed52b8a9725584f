/**
 * Convex's `vector-search` demo pattern in `"use node"` actions (issue 12): tests/fixtures/node_app's `foods.ts`
 * (isolate: mutation, queries, a fetch embedding helper) and `foodSearch.ts` (node: the openai SDK's embeddings,
 * `ctx.vectorSearch`, `ctx.runQuery`) deployed unchanged with the official CLI, driven with ConvexHttpClient against a
 * local mock of OpenAI's embeddings endpoint. Scores are checked against cosine similarities computed here.
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { ConvexHttpClient } from "convex/browser";
import { anyApi } from "convex/server";
import { assert, assertEquals, assertStringIncludes } from "./helpers/assert.ts";
import {
  type ConvexApp,
  createConvexAppFromFixture,
  DEPLOY_ARGS,
  runConvexCli,
  startTestDeployment,
} from "./helpers/convex_app.ts";

const REPO = fileURLToPath(new URL("../", import.meta.url));
// deno-lint-ignore no-explicit-any
const api = anyApi as any;
/** OpenAI ada-002's width, which the demo's schema names. */
const DIMENSIONS = 1536;

const FOODS: { description: string; cuisine: string }[] = [
  { description: "spicy beef noodle soup with chili oil", cuisine: "chinese" },
  { description: "miso ramen noodle soup", cuisine: "japanese" },
  { description: "salmon nigiri sushi", cuisine: "japanese" },
  { description: "margherita pizza with basil", cuisine: "italian" },
  { description: "spicy chicken curry with rice", cuisine: "indian" },
  { description: "tiramisu with espresso", cuisine: "italian" },
];

/** A deterministic bag-of-words embedding: each word adds 1 to a hashed dimension; unit length; float32 values. */
function embedLocally(text: string): number[] {
  const vector = new Array<number>(DIMENSIONS).fill(0);
  for (const word of text.toLowerCase().match(/[a-z]+/g) ?? []) {
    let hash = 0x811c9dc5;
    for (const char of word) hash = Math.imul(hash ^ char.charCodeAt(0), 0x01000193) >>> 0;
    vector[hash % DIMENSIONS] += 1;
  }
  const norm = Math.hypot(...vector) || 1;
  // Float32, as the SDK's base64 path decodes them: both paths then store and search the same numbers.
  return vector.map((value) => Math.fround(value / norm));
}

function cosine(a: number[], b: number[]): number {
  let dot = 0, normA = 0, normB = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i] * b[i];
    normA += a[i] * a[i];
    normB += b[i] * b[i];
  }
  return dot / Math.sqrt(normA * normB);
}

/**
 * A mock of OpenAI's embeddings endpoint; counts requests by encoding (the SDK asks for base64, fetch for float).
 * Under `/v1/short/` it answers 3-dimensional vectors (a model of the wrong width).
 */
function mockEmbeddings(): { url: string; requests: Record<string, number>; close(): Promise<void> } {
  const requests: Record<string, number> = {};
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (request) => {
    const path = new URL(request.url).pathname;
    if ((path !== "/v1/embeddings" && path !== "/v1/short/embeddings") || request.method !== "POST") {
      return new Response("not found", { status: 404 });
    }
    if (request.headers.get("authorization") !== "Bearer sk-test") return new Response("bad key", { status: 401 });
    const body = await request.json() as { input: string; encoding_format?: string };
    const format = body.encoding_format ?? "float";
    requests[format] = (requests[format] ?? 0) + 1;
    const vector = path === "/v1/short/embeddings" ? [0.6, 0.8, 0] : embedLocally(body.input);
    const bytes = new Uint8Array(new Float32Array(vector).buffer);
    const embedding = format === "base64" ? btoa(String.fromCharCode(...bytes)) : vector;
    return Response.json({
      object: "list",
      model: "text-embedding-ada-002",
      data: [{ object: "embedding", index: 0, embedding }],
      usage: { prompt_tokens: 1, total_tokens: 1 },
    });
  });
  return { url: `http://127.0.0.1:${server.addr.port}/v1`, requests, close: () => server.shutdown() };
}

/** The fixture app with the npm packages its node files import linked from this checkout. */
async function nodeApp(): Promise<ConvexApp> {
  const app = await createConvexAppFromFixture("node_app");
  for (const name of ["openai", "semver"]) {
    await Deno.symlink(await Deno.realPath(join(REPO, "node_modules", name)), join(app.dir, "node_modules", name));
  }
  return app;
}

interface FoodResult {
  _id: string;
  description: string;
  cuisine: string;
  _score: number;
}

Deno.test("node vector search: the demo's pattern deploys unchanged; embed, store, search, load", async () => {
  // 127.0.0.1 is opened to actions for the mock (the network policy closes loopback otherwise).
  const deployment = await startTestDeployment({ actionNet: { allowHosts: ["127.0.0.1"] }, functionRoutes: true });
  const embeddings = mockEmbeddings();
  const app = await nodeApp();
  try {
    await deployment.backend.deployments.updateEnvironment([
      { name: "OPENAI_BASE_URL", value: embeddings.url },
      { name: "OPENAI_API_KEY", value: "sk-test" },
    ]);
    const pushed = await runConvexCli(app, DEPLOY_ARGS, deployment);
    assertEquals(pushed.code, 0, `deploy failed:\n${pushed.stdout}\n${pushed.stderr}`);
    const environments = new Map(deployment.backend.deployments.moduleRecords.map((m) => [m.path, m.environment]));
    assertEquals([environments.get("foodSearch.js"), environments.get("foods.js")], ["node", "isolate"]);
    const logLines: string[] = [];
    const collect = (...args: unknown[]) => logLines.push(args.map(String).join(" "));
    const client = new ConvexHttpClient(deployment.url, {
      logger: { logVerbose: () => {}, log: collect, warn: collect, error: collect },
    });

    // Embedded by the openai SDK (base64 on the wire, decoded with Buffer), stored by a mutation.
    const ids = new Map<string, string>();
    for (const food of FOODS) ids.set(food.description, await client.action(api.foodSearch.addFood, food));
    assertEquals(await client.query(api.foods.count, {}), FOODS.length);
    assertEquals(embeddings.requests.base64, FOODS.length);

    // Query text embedded by the isolate file's fetch helper, searched, documents loaded with ctx.runQuery.
    const query = "spicy noodle soup";
    const expected = new Map(
      FOODS.map((food) => [food.description, cosine(embedLocally(query), embedLocally(food.description))]),
    );
    const all: FoodResult[] = await client.action(api.foodSearch.similarFoods, { query });
    assertEquals(all.length, FOODS.length);
    assertEquals(all[0].description, "spicy beef noodle soup with chili oil");
    assertEquals(all[1].description, "miso ramen noodle soup");
    for (const [i, hit] of all.entries()) {
      assertEquals(hit._id, ids.get(hit.description), `hit ${i} is the stored document`);
      const cuisine = FOODS.find((food) => food.description === hit.description)!.cuisine;
      assertEquals(hit.cuisine, cuisine);
      assert(
        Math.abs(hit._score - expected.get(hit.description)!) < 1e-5,
        `score of ${hit.description}: ${hit._score}`,
      );
      if (i > 0) assert(hit._score <= all[i - 1]._score, "hits come best first");
    }
    assertStringIncludes(logLines.join("\n"), `Computed embedding of "${query}": ${DIMENSIONS} dimensions`);

    // The demo's cuisine filter (q.or of q.eq) and a limit.
    const japanese: FoodResult[] = await client.action(api.foodSearch.similarFoods, {
      query: "noodle sushi",
      cuisines: ["japanese"],
    });
    assertEquals(japanese.map((hit) => hit.cuisine), ["japanese", "japanese"]);
    const twoCuisines: FoodResult[] = await client.action(api.foodSearch.similarFoods, {
      query: "spicy",
      cuisines: ["indian", "chinese"],
      limit: 1,
    });
    assertEquals(twoCuisines.length, 1);
    assert(["indian", "chinese"].includes(twoCuisines[0].cuisine), twoCuisines[0].cuisine);
    assertEquals(embeddings.requests.float, 3);

    // A vector of the wrong width is refused by the search, and the action fails with that message.
    await deployment.backend.deployments.updateEnvironment([
      { name: "OPENAI_BASE_URL", value: `${embeddings.url}/short` },
    ]);
    const refused = await client.action(api.foodSearch.similarFoods, { query }).catch((error: Error) => error);
    assert(refused instanceof Error, `expected an error, got ${JSON.stringify(refused)}`);
    assertStringIncludes(refused.message, `the vector has 3 dimensions, but the index`);
    assertEquals(await client.query(api.foods.count, {}), FOODS.length);
  } finally {
    await app.dispose();
    await embeddings.close();
    await deployment.close();
  }
});
