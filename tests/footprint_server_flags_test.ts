/**
 * The server's V8 flags (issue 14: a capped young generation keeps its memory down under load and after a burst) reach
 * every way the server starts: the launcher behind `deno task start` and the container, the compiled binary, and the
 * servers tests and benchmarks start; and V8 takes them (a server given them starts and serves).
 */
import { assert, assertEquals, assertStringIncludes } from "./helpers/assert.ts";
import { SERVER_MAX_SEMI_SPACE_MIB, SERVER_V8_FLAGS } from "../src/server/launcher.ts";
import { grantsFor, serverRunArgs } from "../src/server/launcher.ts";
import { compileArgs } from "../scripts/compile.ts";
import { serveCommandArgs } from "./helpers/server_child.ts";
import { spawnServer } from "./helpers/convex_app.ts";

const FLAG = `--v8-flags=${SERVER_V8_FLAGS}`;

/** The `deno` flags before the module in `args` (what applies to the process, not to the program). */
function denoFlags(args: string[]): string[] {
  return args.slice(0, args.findIndex((arg) => arg.endsWith("main.ts")));
}

Deno.test("server V8 flags: the young generation is capped, in MiB", () => {
  assertEquals(SERVER_V8_FLAGS, `--max-semi-space-size=${SERVER_MAX_SEMI_SPACE_MIB},--expose-gc`);
  assert(SERVER_MAX_SEMI_SPACE_MIB >= 1 && SERVER_MAX_SEMI_SPACE_MIB < 32, "between V8's minimum and its default");
});

Deno.test("server V8 flags: the launcher, the compiled binary and the tests' servers all pass them", async () => {
  const launched = serverRunArgs(grantsFor(["--data", "/srv/x"]), ["serve", "--data", "/srv/x"]);
  assert(denoFlags(launched).includes(FLAG), launched.join(" "));
  const compiled = compileArgs("/tmp/denvex", ["DENVEX_PORT"]);
  assert(compiled.slice(0, compiled.indexOf("main.ts")).includes(FLAG), compiled.join(" "));
  const tests = await serveCommandArgs("/tmp/data", ["--port=0"]);
  assert(denoFlags(tests).includes(FLAG), tests.join(" "));
  // The container starts the server through the launcher (`main.ts start`), which adds them.
  const dockerfile = await Deno.readTextFile(new URL("../Dockerfile", import.meta.url));
  assertStringIncludes(/^ENTRYPOINT .*$/m.exec(dockerfile)?.[0] ?? "", " main.ts start ");
});

/** V8's heap limit (old space plus 3 semi-spaces) of a `deno` process given `v8Flags`, in MiB. */
async function heapLimitMib(v8Flags: string[]): Promise<number> {
  const output = await new Deno.Command(Deno.execPath(), {
    args: [
      "eval",
      ...v8Flags.map((flags) => `--v8-flags=${flags}`),
      `
      import { getHeapStatistics } from "node:v8";
      console.log(getHeapStatistics().heap_size_limit);`,
    ],
    stdout: "piped",
  }).output();
  return Number(new TextDecoder().decode(output.stdout)) / (1024 * 1024);
}

Deno.test("server V8 flags: V8 takes them, and a later --v8-flags (the benchmarks' knob) overrides them", async () => {
  const oldSpace = "--max-old-space-size=256";
  const capped = await heapLimitMib([`${oldSpace},${SERVER_V8_FLAGS}`]);
  const overridden = await heapLimitMib([`${oldSpace},${SERVER_V8_FLAGS}`, "--max-semi-space-size=16"]);
  // V8 reserves three semi-spaces (two for the young generation, one for its large objects) beside the old space.
  assertEquals(capped - 256, 3 * SERVER_MAX_SEMI_SPACE_MIB);
  assertEquals(overridden - 256, 3 * 16);
});

Deno.test("server V8 flags: a server started with them (and the knob after them) serves", async () => {
  const server = await spawnServer({ denoFlags: ["--v8-flags=--max-semi-space-size=4"] });
  try {
    const command = (await Deno.readTextFile(`/proc/${server.pid}/cmdline`)).split("\0");
    const flags = command.filter((arg) => arg.startsWith("--v8-flags="));
    assertEquals(flags, [FLAG, "--v8-flags=--max-semi-space-size=4"], "the benchmarks' knob comes last");
    assertEquals((await fetch(`${server.url}/version`)).status, 200);
  } finally {
    await server.close();
  }
});
