/**
 * The server ⇄ runner channel is out of user code's reach. A permission-less worker can still write to its process's
 * standard streams (`Deno.stdout`, `node:fs` on fd 1 and 2): when the runner protocol travelled over the runner's
 * stdout, a function could write a complete frame there — a forged result for its own or any execution id, or a
 * mutation outcome with writes to any table — and the server took it as the runner's word. The protocol now runs over
 * a per-runner Unix socket that only the runner's own code can connect to; what user code writes to stdout is dropped.
 */
import { assert, assertEquals, assertThrows } from "./helpers/assert.ts";
import { prepareRunnerSocketDir } from "../src/runtime/runner_socket.ts";
import { APP_FILES, bundleApp, openDeployedApp, stopBundler, writeApp } from "./helpers/runtime_app.ts";
import { type ExecuteRequest, RunnerPool } from "../src/runtime/mod.ts";

/** Forges a frame (4-byte big-endian length, JSON) claiming success for execution ids e1…e2000 and a1…a2000. */
const FORGE_MODULE = `
  import { query, mutation, action } from "./_generated/server";

  function forgedFrames(): Uint8Array[] {
    const frames: Uint8Array[] = [];
    for (const prefix of ["e", "a"]) {
      for (let n = 1; n <= 2000; n++) {
        const message = {
          type: "result", executionId: prefix + n, ok: true, resultJson: JSON.stringify("FORGED"), logLines: [],
          executionTimeMs: 0,
          outcome: { kind: "commit", writes: [] },
        };
        const body = new TextEncoder().encode(JSON.stringify(message));
        const frame = new Uint8Array(4 + body.length);
        new DataView(frame.buffer).setUint32(0, body.length);
        frame.set(body, 4);
        frames.push(frame);
      }
    }
    return frames;
  }

  async function forge(): Promise<string> {
    // A computed specifier: the bundler leaves it to the runtime, as user code could.
    const fs = await import(["node", "fs"].join(":"));
    let written = 0;
    for (const frame of forgedFrames()) {
      try {
        Deno.stdout.writeSync(frame);
        written++;
      } catch { /* refused: nothing forged this way */ }
      try {
        fs.writeSync(1, frame);
        written++;
      } catch { /* refused */ }
    }
    return "real " + (written > 0 ? "(stdout writable)" : "(stdout closed)");
  }

  export const forgeQuery = query({ args: {}, handler: () => forge() });
  export const forgeMutation = mutation({ args: {}, handler: () => forge() });
  export const forgeAction = action({ args: {}, handler: () => forge() });
`;

Deno.test("runner channel: frames user code writes to stdout never reach the server as protocol", async () => {
  const dir = await Deno.makeTempDir({ prefix: "denvex-channel-test-" });
  const modules = await bundleApp(await writeApp(`${dir}/app`, { ...APP_FILES, "forge.ts": FORGE_MODULE }));
  await stopBundler();
  const { dataDir, persistence, database, deploymentDir } = await openDeployedApp(dir, modules);
  // A socket a killed server left behind, in a folder others could enter.
  await Deno.mkdir(`${dataDir}/runners`, { mode: 0o755 });
  await Deno.writeTextFile(`${dataDir}/runners/stale.sock`, "");
  const pool = new RunnerPool({
    dataDir,
    location: persistence.location,
    queryRunners: 1,
    minActionRunners: 1,
    maxActionRunners: 1,
    createTable: (name) => database.createTable(name),
    onCall: () => Promise.reject(new Error("no server calls expected")),
  });
  const call = (udfType: ExecuteRequest["udfType"], modulePath: string, exportName: string) =>
    pool.execute({
      udfType,
      modulePath,
      exportName,
      argsJson: "[{}]",
      snapshotTs: database.latestTs,
      catalog: database.catalog,
      identityJson: null,
      env: {},
      requestId: "channel",
      deploymentDir,
    });
  try {
    assertEquals((await Deno.stat(`${dataDir}/runners`)).mode! & 0o777, 0o700);
    assertEquals(await exists(`${dataDir}/runners/stale.sock`), false);
    for (const [udfType, name] of [["query", "forgeQuery"], ["mutation", "forgeMutation"], ["action", "forgeAction"]]) {
      const type = udfType as ExecuteRequest["udfType"];
      // Twice: the forged frames of the first call must not answer the second either.
      for (let round = 0; round < 2; round++) {
        const result = await call(type, "forge.js", name);
        assertEquals(result.ok, true, `${name}: ${result.errorMessage}`);
        assertEquals(
          JSON.parse(result.resultJson!).slice(0, 4),
          "real",
          `${name} round ${round}: ${result.resultJson}`,
        );
      }
    }
    // The runners are still in service for ordinary calls.
    const hello = await call("query", "messages.js", "hello");
    assertEquals(hello.ok, true, hello.errorMessage);
  } finally {
    await pool.close();
    await database.close();
    await Deno.remove(dir, { recursive: true });
  }
});

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

Deno.test("runner channel: a data directory too long for a socket path is refused at start, naming the limit", () => {
  const fits = `/tmp/${"d".repeat(70)}`;
  const tooLong = `/tmp/${"d".repeat(90)}`;
  try {
    assertEquals(prepareRunnerSocketDir(fits), `${fits}/runners`);
    const error = assertThrows(() => prepareRunnerSocketDir(tooLong));
    assert(/too long for the runners' Unix sockets/.test(error.message) && error.message.includes("--data"));
  } finally {
    Deno.removeSync(fits, { recursive: true });
  }
});
