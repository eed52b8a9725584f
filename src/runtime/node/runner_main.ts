/**
 * Entry of a node runner process (`deno run … src/runtime/node/runner_main.ts`). Runs one action at a time with Node
 * semantics: `node:` builtins, `Buffer`, `process.env` = the call's variables, a global `require` (esbuild's ESM
 * bundles call it for CommonJS `require`s of builtins), Node's timers, `fetch`, and a temp directory emptied after
 * every call. The process's permissions are the sandbox (see command.ts); this file only shapes the globals.
 *
 * Imports stay relative or `node:`: the runner runs under the deployment's deno.json, which has no import map.
 */
import { createRequire } from "node:module";
import process from "node:process";
import * as nodeTimers from "node:timers";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { analyzeNodeModule } from "./analyze.ts";
import {
  encodeRunnerLine,
  type FromNodeRunnerMessage,
  type NodeAnalyzeMessage,
  type NodeCallMessage,
  type NodeInitMessage,
  readLines,
  type ToNodeRunnerMessage,
} from "./protocol.ts";
import { isStorageJsOp, storageJsSyscall } from "../worker/storage_js.ts";
import { installConsole, LogSink, setLogSink } from "../worker/console_capture.ts";
import { formatUncaught } from "../worker/error_format.ts";

const stdout = Deno.stdout;
const encoder = new TextEncoder();
let nonce = "";
let init: NodeInitMessage | null = null;
let currentCallId = 0;
let nextSyscallId = 1;
const pendingSyscalls = new Map<number, { resolve: (json: string) => void; reject: (error: Error) => void }>();
const loadedModules = new Map<string, Promise<Record<string, unknown>>>();

function send(message: FromNodeRunnerMessage): void {
  // writeSync: a result must be out before the next call can start, and lines must never interleave.
  const bytes = encoder.encode(encodeRunnerLine(nonce, message));
  let written = 0;
  while (written < bytes.length) written += stdout.writeSync(bytes.subarray(written));
}

/** Node's globals where Deno's web ones differ (timers with `unref`), and the capturing console. */
function installGlobals(modulesDir: string): void {
  const globals = globalThis as Record<string, unknown>;
  globals.setTimeout = nodeTimers.setTimeout;
  globals.setInterval = nodeTimers.setInterval;
  globals.clearTimeout = nodeTimers.clearTimeout;
  globals.clearInterval = nodeTimers.clearInterval;
  globals.setImmediate = nodeTimers.setImmediate;
  globals.clearImmediate = nodeTimers.clearImmediate;
  globals.require = createRequire(pathToFileURL(join(modulesDir, "/")));
  // A nested worker would run outside the call's supervision: Convex's Node runtime has none to offer either.
  delete globals.Worker;
  // The isolate worker's console: the same `[LOG] 'text' 1` lines and 256-line cap, returned with the result.
  installConsole();
  const asyncSyscall = (op: string, argsJson: string) =>
    new Promise<string>((resolve, reject) => {
      const syscallId = nextSyscallId++;
      pendingSyscalls.set(syscallId, { resolve, reject });
      send({ type: "syscall", callId: currentCallId, syscallId, op, argsJson });
    });
  globals.Convex = {
    syscall: (op: string) => {
      throw new Error(`Synchronous syscall ${op} is not available in node actions`);
    },
    asyncSyscall,
    // `ctx.storage.store(blob)` / `get(id)`: the same base64 crossing as in isolate actions.
    jsSyscall: (op: string, args: Record<string, unknown>) => {
      if (isStorageJsOp(op)) return storageJsSyscall(op, args, asyncSyscall);
      throw new Error(`jsSyscall ${op} is not available in node actions`);
    },
  };
}

/** Makes `process.env` exactly `env` (plus `TMPDIR`, which `os.tmpdir()` reads). */
function setEnvironment(env: Record<string, string>, tmpDir: string): void {
  for (const name of Object.keys(process.env)) delete process.env[name];
  for (const [name, value] of Object.entries(env)) process.env[name] = value;
  process.env.TMPDIR = tmpDir;
}

async function emptyFolder(dir: string): Promise<void> {
  for await (const entry of Deno.readDir(dir)) await Deno.remove(join(dir, entry.name), { recursive: true });
}

function loadModule(modulesDir: string, modulePath: string): Promise<Record<string, unknown>> {
  let loading = loadedModules.get(modulePath);
  if (loading === undefined) {
    loading = import(pathToFileURL(join(modulesDir, modulePath)).href) as Promise<Record<string, unknown>>;
    loadedModules.set(modulePath, loading);
  }
  return loading;
}

/** The modules folder as a file URL: stack frames in it are mapped through the pushed source maps and shortened. */
function modulesUrl(modulesDir: string): string {
  return pathToFileURL(join(modulesDir, "/")).href;
}

/**
 * Deno itself applies the pushed source maps to stack frames of user modules, so they point at
 * `<dir>/convex/x.ts`, outside the modules folder. Re-root those frames under the modules URL
 * (`<dir>/modules/../convex/x.ts`) so the shared formatter keeps them and prints `../convex/x.ts:12:5` as for
 * isolate functions. Frames into the installed packages (`<dir>/node_modules/`) stay outside and are dropped.
 */
function withDeveloperFrames(error: unknown, modulesDir: string): unknown {
  if (!(error instanceof Error) || typeof error.stack !== "string") return error;
  const dirUrl = pathToFileURL(join(modulesDir, "..", "/")).href;
  const escaped = dirUrl.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  error.stack = error.stack.replace(
    new RegExp(escaped + "(?!modules/|node_modules/)", "g"),
    modulesUrl(modulesDir) + "../",
  );
  return error;
}

async function runCall(call: NodeCallMessage): Promise<void> {
  const { modulesDir, tmpDir } = init!;
  currentCallId = call.callId;
  const sink = new LogSink();
  setLogSink(sink);
  let result: FromNodeRunnerMessage;
  try {
    setEnvironment(call.env, tmpDir);
    const module = await loadModule(modulesDir, call.modulePath);
    const fn = module[call.exportName] as { isAction?: boolean; invokeAction?: (id: string, args: string) => unknown };
    if (fn?.isAction !== true || typeof fn.invokeAction !== "function") {
      throw new Error(`${call.modulePath}:${call.exportName} is not an action`);
    }
    const resultJson = await fn.invokeAction(call.requestId, call.argsJson);
    result = { type: "result", callId: call.callId, ok: true, resultJson: String(resultJson) };
  } catch (error) {
    const formatted = formatUncaught(withDeveloperFrames(error, modulesDir), modulesUrl(modulesDir));
    result = { type: "result", callId: call.callId, ok: false, ...formatted };
  }
  setLogSink(null);
  result.logLines = sink.lines;
  currentCallId = 0;
  await emptyFolder(tmpDir).catch(() => {});
  send(result);
}

/** Analysis answers like a call: `resultJson` is the JSON of a NodeModuleAnalysis[]. */
async function runAnalyze(message: NodeAnalyzeMessage): Promise<void> {
  const { modulesDir, tmpDir } = init!;
  currentCallId = message.callId;
  let result: FromNodeRunnerMessage;
  try {
    setEnvironment(message.env, tmpDir);
    const analyses = [];
    for (const path of message.modulePaths) {
      let module: Record<string, unknown>;
      try {
        module = await loadModule(modulesDir, path);
      } catch (error) {
        throw new Error(`Failed to load ${path}: ${error instanceof Error ? error.message : String(error)}`);
      }
      analyses.push(analyzeNodeModule(path, module));
    }
    result = { type: "result", callId: message.callId, ok: true, resultJson: JSON.stringify(analyses) };
  } catch (error) {
    const errorMessage = error instanceof Error ? error.message : String(error);
    result = { type: "result", callId: message.callId, ok: false, errorMessage };
  }
  currentCallId = 0;
  await emptyFolder(tmpDir).catch(() => {});
  send(result);
}

function onMessage(message: ToNodeRunnerMessage): void {
  switch (message.type) {
    case "init":
      init = message;
      nonce = message.nonce;
      installGlobals(message.modulesDir);
      send({ type: "ready" });
      return;
    case "call":
      // Before any user code: a runner that dies without having said this never ran the call (it may be retried).
      send({ type: "started", callId: message.callId });
      void runCall(message);
      return;
    case "analyze":
      void runAnalyze(message);
      return;
    case "syscallResult": {
      const pending = pendingSyscalls.get(message.syscallId);
      if (pending === undefined) return;
      pendingSyscalls.delete(message.syscallId);
      if (message.ok) pending.resolve(message.resultJson);
      else {pending.reject(
          Object.assign(new Error(message.message), message.data === undefined ? {} : { data: message.data }),
        );}
      return;
    }
  }
}

await readLines(Deno.stdin.readable, (line) => {
  if (line.length > 0) onMessage(JSON.parse(line) as ToNodeRunnerMessage);
});
Deno.exit(0);
