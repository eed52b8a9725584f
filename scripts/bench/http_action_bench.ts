/**
 * HTTP action round trip: a `GET /hello` HTTP action (deployed with the official CLI, run in an action runner)
 * against a bare `Deno.serve` handler answering the same text, sequential requests, measured in the same run and
 * printed as a ratio.
 */
import { createSiteApp } from "../../src/http/site_app.ts";
import { createConvexApp, deployApp, startTestDeployment } from "../../tests/helpers/convex_app.ts";

const REQUESTS = 500;
const HTTP_TS = `
import { httpRouter } from "convex/server";
import { httpAction } from "./_generated/server";
const http = httpRouter();
http.route({ path: "/hello", method: "GET", handler: httpAction(async () => new Response("hello")) });
export default http;
`;

async function meanRoundTripMs(url: string): Promise<number> {
  for (let i = 0; i < 50; i++) await (await fetch(url)).text(); // warm up
  const started = performance.now();
  for (let i = 0; i < REQUESTS; i++) {
    const text = await (await fetch(url)).text();
    if (text !== "hello") throw new Error(`unexpected answer ${text}`);
  }
  return (performance.now() - started) / REQUESTS;
}

const deployment = await startTestDeployment();
const app = await createConvexApp({ "http.ts": HTTP_TS });
const bare = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, () => new Response("hello"));
const site = Deno.serve(
  { hostname: "127.0.0.1", port: 0, onListen: () => {} },
  createSiteApp({ version: "bench", instanceName: "bench", adminKey: deployment.adminKey, backend: deployment.backend })
    .fetch,
);
try {
  await deployApp(app, deployment);
  const bareMs = await meanRoundTripMs(`http://127.0.0.1:${bare.addr.port}/hello`);
  const actionMs = await meanRoundTripMs(`http://127.0.0.1:${site.addr.port}/hello`);
  console.log(`HTTP action round trip (${REQUESTS} sequential GETs):`);
  console.log(`  bare Deno.serve: ${(bareMs * 1000).toFixed(0)} µs`);
  console.log(
    `  HTTP action:     ${(actionMs * 1000).toFixed(0)} µs (${(actionMs / bareMs).toFixed(1)}x the bare round trip)`,
  );
} finally {
  await bare.shutdown();
  await site.shutdown();
  await app.dispose();
  await deployment.close();
}
