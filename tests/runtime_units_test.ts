/**
 * Unit tests of the runtime's building blocks: the syscall channel, message framing, import specifier checks,
 * console formatting and function path resolution.
 */
import { assert, assertEquals, assertMatch, assertRejects } from "./helpers/assert.ts";
import { createChannelBuffer, decodeRequest, SyncChannelServer } from "../src/runtime/sync_channel.ts";
import { encodeFrame, FrameWriter, readFrames } from "../src/runtime/framing.ts";
import { checkSpecifier, scanSpecifiers } from "../src/runtime/specifiers.ts";
import { validateModules } from "../src/runtime/module_writer.ts";
import { ModuleLoadError } from "../src/runtime/errors.ts";
import { inspect } from "../src/runtime/worker/inspect.ts";
import { resolveFunctionPath } from "../src/runtime/worker/functions.ts";
import { QueryStreams } from "../src/runtime/worker/query_streams.ts";
import { forwardRunnerOutput, RUNNER_OUTPUT_LINE_CHARS } from "../src/runtime/runner_output.ts";

Deno.test("sync channel: round trips, and chunks messages larger than its buffer both ways", async () => {
  const buffer = createChannelBuffer(64); // tiny, so most messages span many chunks
  const server = new SyncChannelServer(buffer, { spinUs: 0 });
  const served: string[] = [];
  const serving = server.serve((request) => {
    const { op, argsJson } = decodeRequest(request);
    served.push(op);
    return op === "echo" ? "O" + argsJson : op === "grow" ? "O" + "y".repeat(Number(argsJson)) : 'E{"message":"no"}';
  });
  const clientUrl = new URL("../src/runtime/sync_channel.ts", import.meta.url).href;
  const source = `
    import { SyncChannelClient, decodeResponse, encodeRequest } from "${clientUrl}";
    self.onmessage = (event) => {
      const client = new SyncChannelClient(event.data);
      const big = "x".repeat(10_000) + "é✓";
      const echoed = decodeResponse(client.call(encodeRequest("echo", big)));
      const grown = decodeResponse(client.call(encodeRequest("grow", "5000")));
      const failed = decodeResponse(client.call(encodeRequest("other", "{}")));
      const small = decodeResponse(client.call(encodeRequest("echo", "1")));
      self.postMessage({
        echoed: echoed.ok && echoed.resultJson === big,
        grown: grown.ok && grown.resultJson.length === 5000,
        failed,
        small,
      });
    };
  `;
  const worker = new Worker(URL.createObjectURL(new Blob([source], { type: "text/javascript" })), { type: "module" });
  const answer = await new Promise<Record<string, unknown>>((resolve, reject) => {
    worker.onmessage = (event) => resolve(event.data);
    worker.onerror = (event) => reject(new Error(event.message));
    worker.postMessage(buffer);
  });
  worker.terminate();
  server.close();
  await serving;
  assertEquals(answer, {
    echoed: true,
    grown: true,
    failed: { ok: false, message: "no" },
    small: { ok: true, resultJson: "1" },
  });
  assertEquals(served, ["echo", "grow", "other", "echo"]);
});

Deno.test("sync channel: one-way messages need no answer, in any size, between calls", async () => {
  const buffer = createChannelBuffer(64);
  const server = new SyncChannelServer(buffer, { spinUs: 0 });
  const served: string[] = [];
  const sentByWorker = Promise.withResolvers<void>();
  const serving = server.serve(async (request) => {
    const { op, argsJson } = decodeRequest(request);
    served.push(`${op}:${argsJson.length}`);
    // The worker says it went on past `send` while this handler still holds its message: send did not wait for it.
    if (op === "note") await sentByWorker.promise;
    return "O" + argsJson;
  });
  const clientUrl = new URL("../src/runtime/sync_channel.ts", import.meta.url).href;
  const source = `
    import { SyncChannelClient, decodeResponse, encodeRequest } from "${clientUrl}";
    self.onmessage = (event) => {
      const client = new SyncChannelClient(event.data);
      client.send(encodeRequest("note", "n".repeat(1_000)));
      self.postMessage("sent");
      const after = decodeResponse(client.call(encodeRequest("echo", "abc")));
      client.send(encodeRequest("tail", "t"));
      client.send(encodeRequest("tail", "tt"));
      const last = decodeResponse(client.call(encodeRequest("echo", "z".repeat(300))));
      self.postMessage({ after, last: last.ok && last.resultJson.length });
    };
  `;
  const worker = new Worker(URL.createObjectURL(new Blob([source], { type: "text/javascript" })), { type: "module" });
  const answer = await new Promise<Record<string, unknown>>((resolve, reject) => {
    worker.onmessage = (event) => event.data === "sent" ? sentByWorker.resolve() : resolve(event.data);
    worker.onerror = (event) => reject(new Error(event.message));
    worker.postMessage(buffer);
  });
  worker.terminate();
  server.close();
  await serving;
  assertEquals(answer, { after: { ok: true, resultJson: "abc" }, last: 300 });
  assertEquals(served, ["note:1000", "echo:3", "tail:1", "tail:2", "echo:300"]);
});

Deno.test("sync channel: a staged message rides with the next call, or is taken alone by a parent that looks first", async () => {
  const clientUrl = new URL("../src/runtime/sync_channel.ts", import.meta.url).href;
  // The worker stages "result", waits `pauseMs`, then calls "idle"; a message too big to stage is sent as usual.
  const source = `
    import { SyncChannelClient, decodeResponse, encodeRequest } from "${clientUrl}";
    self.onmessage = ({ data: { buffer, pauseMs } }) => {
      const client = new SyncChannelClient(buffer);
      const staged = client.stage(encodeRequest("result", "r"));
      if (pauseMs > 0) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, pauseMs);
      const answer = decodeResponse(client.call(encodeRequest("idle", "i")));
      const big = client.stage(encodeRequest("big", "b".repeat(4000)));
      if (!big) client.send(encodeRequest("big", "b".repeat(4000)));
      const after = decodeResponse(client.call(encodeRequest("idle", "j")));
      self.postMessage({ staged, answer, big, after });
    };
  `;
  const run = async (pauseMs: number) => {
    const buffer = createChannelBuffer(4096);
    const server = new SyncChannelServer(buffer, { blockUs: 0 });
    // A call is in progress, as when a runner hands its worker an execution (parked waits use the short slice).
    server.expectRequests();
    const served: string[] = [];
    const serving = server.serve((request) => {
      const { op, argsJson } = decodeRequest(request);
      served.push(`${op}:${argsJson.length}`);
      return "O" + argsJson;
    });
    const url = URL.createObjectURL(new Blob([source], { type: "text/javascript" }));
    const worker = new Worker(url, { type: "module" });
    const answer = await new Promise<Record<string, unknown>>((resolve, reject) => {
      worker.onmessage = (event) => resolve(event.data);
      worker.onerror = (event) => reject(new Error(event.message));
      worker.postMessage({ buffer, pauseMs });
    });
    worker.terminate();
    server.close();
    await serving;
    assertEquals(answer, {
      staged: true,
      answer: { ok: true, resultJson: "i" },
      big: false,
      after: { ok: true, resultJson: "j" },
    });
    assertEquals(served, ["result:1", "idle:1", "big:4000", "idle:1"], "each message once, in the order sent");
    return server.stagedCarried;
  };
  // Called at once: the staged message travels with the call (one message, one wake-up of the parent). Up to three
  // tries: the parent's 50 ms slice of parked waiting could end in the microseconds between the stage and the call.
  let carried = 0;
  for (let attempt = 0; attempt < 3 && carried === 0; attempt++) carried = await run(0);
  assertEquals(carried, 1);
  // A pause longer than the parent's slice of parked waiting (50 ms): the parent finds it and takes it alone.
  assertEquals(await run(300), 0);
});

Deno.test("framing: messages survive arbitrary stream chunking", async () => {
  const messages = [{ a: 1 }, { text: "x".repeat(200_000) }, { unicode: "é✓" }, []];
  const bytes = new Uint8Array(messages.flatMap((m) => [...encodeFrame(m)]));
  // Split into odd-sized pieces, including splits inside length prefixes.
  const pieces: Uint8Array[] = [];
  for (let offset = 0, size = 1; offset < bytes.length; offset += size, size = (size * 7) % 65_537 + 1) {
    pieces.push(bytes.subarray(offset, offset + size));
  }
  const stream = ReadableStream.from(pieces);
  const received: unknown[] = [];
  for await (const message of readFrames(stream)) received.push(message);
  assertEquals(received, messages);

  const chunks: Uint8Array[] = [];
  const writer = new FrameWriter(new WritableStream({ write: (chunk) => void chunks.push(chunk) }));
  await Promise.all([writer.send({ n: 1 }), writer.send({ n: 2 })]);
  await writer.close();
  const again: unknown[] = [];
  for await (const message of readFrames(ReadableStream.from(chunks))) again.push(message);
  assertEquals(again, [{ n: 1 }, { n: 2 }]);
});

Deno.test("framing: a corrupted length ends the stream with an error", async () => {
  const bogus = new Uint8Array([0xff, 0xff, 0xff, 0xff, 1, 2, 3]);
  await assertRejects(async () => {
    for await (const _ of readFrames(ReadableStream.from([bogus]))) {
      // unreachable
    }
  });
});

Deno.test("specifiers: finds every esbuild import form and checks them", () => {
  const source = [
    'import {a as n} from "./_deps/ABC.js";',
    "import {",
    "  b,",
    "  c",
    '} from "../_deps/DEF.js";',
    'export * from "./other.js";',
    'import "./side.js";',
    'const lazy = await import("./lazy.js");',
    'const text = "import nothing here";',
  ].join("\n");
  assertEquals(scanSpecifiers(source).map((s) => s.specifier).sort(), [
    "../_deps/DEF.js",
    "./_deps/ABC.js",
    "./lazy.js",
    "./other.js",
    "./side.js",
  ]);
  const known = new Set(["dir/a.js", "_deps/DEF.js", "b.js"]);
  assertEquals(checkSpecifier("dir/a.js", "../_deps/DEF.js", known), null);
  assertEquals(checkSpecifier("dir/a.js", "../b.js", known), null);
  assertMatch(checkSpecifier("dir/a.js", "../../x.js", known)!, /outside the module tree/);
  assertMatch(checkSpecifier("dir/a.js", "./missing.js", known)!, /not part of the push/);
  assertMatch(checkSpecifier("a.js", "jsr:@std/path", known)!, /jsr: imports are not allowed/);
  assertMatch(checkSpecifier("a.js", "blob:abc", known)!, /blob: imports are not allowed/);
  assertMatch(checkSpecifier("a.js", "/etc/x.js", known)!, /absolute paths/);
  assertMatch(checkSpecifier("a.js", "convex/server", known)!, /bare specifiers/);
});

Deno.test("module writer: rejects bad paths, duplicates and node modules", async () => {
  const module = (path: string, environment: "isolate" | "node" = "isolate") => ({ path, source: "", environment });
  const failure = (modules: ReturnType<typeof module>[]): Promise<unknown> =>
    validateModules(modules).then(() => null, (error) => error);
  for (const path of ["../x.js", "/abs.js", "a/./b.js", "noext", "a b.js"]) {
    assert(await failure([module(path)]) instanceof ModuleLoadError, `expected ${path} to be rejected`);
  }
  assert(await failure([module("a.js"), module("a.js")]) instanceof ModuleLoadError);
  assertMatch((await failure([module("n.js", "node")]) as Error).message, /use node/);
  await validateModules([module("a.js"), module("_deps/X1.js"), module("dir/b-c.js")]);
});

Deno.test("inspect: renders console arguments like the official runtime", () => {
  assertEquals(inspect("hi"), "'hi'");
  assertEquals(inspect("it's\n"), "'it\\'s\\n'");
  assertEquals(inspect(1), "1");
  assertEquals(inspect(-0), "-0");
  assertEquals(inspect(3n), "3n");
  assertEquals(inspect(null), "null");
  assertEquals(inspect(undefined), "undefined");
  assertEquals(inspect([]), "[]");
  assertEquals(inspect({}), "{}");
  assertEquals(inspect([1, "a", [2]]), "[ 1, 'a', [ 2 ] ]");
  assertEquals(inspect({ a: 1, "b-c": { d: [true] } }), "{\n  a: 1,\n  'b-c': {\n    d: [ true ]\n  }\n}");
  assertEquals(inspect([{ a: 1 }]), "[\n  {\n    a: 1\n  }\n]");
  assertEquals(inspect(new Error("boom")), "[Error: boom]");
  assertEquals(inspect(function named() {}), "[Function: named]");
  assertEquals(inspect(new Map([["k", 1]])), "Map (1) {'k' => 1}");
  const circular: Record<string, unknown> = {};
  circular.self = circular;
  assertEquals(inspect(circular), "{\n  self: [Circular]\n}");
  assertEquals(inspect({ a: { b: { c: { d: { e: { f: 1 } } } } } }).includes("[Object]"), true);
});

Deno.test("function paths: last colon, default export, .js appended", () => {
  assertEquals(resolveFunctionPath("messages:list"), { modulePath: "messages.js", exportName: "list" });
  assertEquals(resolveFunctionPath("dir/file"), { modulePath: "dir/file.js", exportName: "default" });
  assertEquals(resolveFunctionPath("dir/file.js:default"), { modulePath: "dir/file.js", exportName: "default" });
  assertEquals(resolveFunctionPath("a:b:c"), { modulePath: "a:b.js", exportName: "c" });
});

Deno.test("query streams: growing read-ahead batches served one document at a time", () => {
  const streams = new QueryStreams();
  const documents = Array.from({ length: 50 }, (_, i) => ({ i }));
  const batches: number[] = [];
  let position = 0;
  const fetch = (_queryId: number, batchSize: number) => {
    batches.push(batchSize);
    const values = documents.slice(position, position + batchSize);
    position += values.length;
    return { documentsJson: values.map((value) => JSON.stringify(value)), done: position >= documents.length };
  };
  const seen: unknown[] = [];
  for (;;) {
    const next = JSON.parse(streams.next(7, fetch));
    if (next.done) break;
    seen.push(next.value);
  }
  assertEquals(seen, documents);
  assertEquals(batches, [8, 32, 128]);
  streams.cleanup(7);
});

Deno.test("runner output: lines marked as the runner's, cut, without control characters, within a budget", async () => {
  const chunks = [
    "first\r\x1b[31mred",
    " line\n" + "x".repeat(RUNNER_OUTPUT_LINE_CHARS + 500),
    "\nunfinished",
  ];
  const encoder = new TextEncoder();
  const stream = (parts: string[]) =>
    new ReadableStream<Uint8Array>({
      start(controller) {
        for (const part of parts) controller.enqueue(encoder.encode(part));
        controller.close();
      },
    });
  const lines: string[] = [];
  await forwardRunnerOutput(stream(chunks), "denvex runner 7", (line) => lines.push(line));
  assertEquals(lines.length, 3);
  assertEquals(lines[0], "denvex runner 7: first??[31mred line");
  assertEquals(lines[1], `denvex runner 7: ${"x".repeat(RUNNER_OUTPUT_LINE_CHARS)} [line cut]`);
  assertEquals(lines[2], "denvex runner 7: unfinished");

  // Past the budget: one notice, then nothing, and the stream is still read to its end (a full pipe would block).
  const many = Array.from({ length: 1_000 }, (_, i) => `line ${i}\n`);
  let pulled = 0;
  const counted = stream(many).pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        pulled++;
        controller.enqueue(chunk);
      },
    }),
  );
  const budgeted: string[] = [];
  await forwardRunnerOutput(counted, "r", (line) => budgeted.push(line), 100);
  assertEquals(pulled, 1_000);
  assertEquals(budgeted.at(-1), "r: further output dropped (over 100 characters)");
  // "r: line 0" to "r: line 9" (9 characters each) and "r: line 10" fill the 100 exactly; then the notice.
  assertEquals(budgeted.length, 12);
  assert(budgeted.slice(0, -1).every((line, i) => line === `r: line ${i}`));
});
