/**
 * A CPU profile of the server process during one benchmark phase, taken through its inspector (the server started
 * with `--inspect=127.0.0.1:<port>`): `Profiler.start`/`Profiler.stop` over the DevTools protocol. Writes the
 * `.cpuprofile` (opens in Chrome DevTools) and summarizes self time by function and by source file. Used by
 * subscriptions_insert_bench.ts (env PROFILE_DIR).
 */

/** Sampling interval: fine enough for sub-millisecond functions, coarse enough to cost the server little. */
const SAMPLING_INTERVAL_US = 200;
/** Functions and files listed in a summary. */
const TOP = 12;

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}

/** The protocol's `Profiler.Profile`, the fields used here. */
interface CpuProfile {
  nodes: ProfileNode[];
  samples?: number[];
  startTime: number;
  endTime: number;
}

/** A profiling session on one inspector. */
export interface ServerProfiler {
  start(): Promise<void>;
  /** Stops, writes `<dir>/<name>.cpuprofile` and returns a summary (self time by function and by file). */
  stop(dir: string, name: string): Promise<string>;
  close(): void;
}

/** Connects to the inspector on `port` (the first target). */
export async function connectProfiler(port: number): Promise<ServerProfiler> {
  const targets = await (await fetch(`http://127.0.0.1:${port}/json/list`)).json() as {
    webSocketDebuggerUrl: string;
  }[];
  const socket = new WebSocket(targets[0].webSocketDebuggerUrl);
  await new Promise<void>((resolve, reject) => {
    socket.onopen = () => resolve();
    socket.onerror = () => reject(new Error("the inspector socket failed"));
  });
  const waiting = new Map<number, (result: unknown) => void>();
  socket.onmessage = (event) => {
    const message = JSON.parse(String(event.data)) as { id?: number; result?: unknown };
    if (message.id !== undefined) waiting.get(message.id)?.(message.result);
  };
  let nextId = 1;
  const send = (method: string, params: Record<string, unknown> = {}) =>
    new Promise<unknown>((resolve) => {
      const id = nextId++;
      waiting.set(id, resolve);
      socket.send(JSON.stringify({ id, method, params }));
    });
  await send("Profiler.enable");
  await send("Profiler.setSamplingInterval", { interval: SAMPLING_INTERVAL_US });
  return {
    start: async () => void await send("Profiler.start"),
    async stop(dir, name) {
      const { profile } = await send("Profiler.stop") as { profile: CpuProfile };
      await Deno.mkdir(dir, { recursive: true });
      await Deno.writeTextFile(`${dir}/${name}.cpuprofile`, JSON.stringify(profile));
      return summarize(profile);
    },
    close: () => socket.close(),
  };
}

/** Self time per function and per file, as shares of the samples (idle included, shown separately). */
export function summarize(profile: CpuProfile): string {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const counts = new Map<number, number>();
  for (const id of profile.samples ?? []) counts.set(id, (counts.get(id) ?? 0) + 1);
  const total = profile.samples?.length ?? 0;
  const byFunction = new Map<string, number>();
  const byFile = new Map<string, number>();
  for (const [id, count] of counts) {
    const frame = byId.get(id)!.callFrame;
    const file = frame.url.replace(/^.*\/(src|node_modules|ext|deno)\//, "$1/") || "(native)";
    const fn = `${frame.functionName || "(anonymous)"} ${file}:${frame.lineNumber + 1}`;
    byFunction.set(fn, (byFunction.get(fn) ?? 0) + count);
    byFile.set(file, (byFile.get(file) ?? 0) + count);
  }
  const top = (map: Map<string, number>) =>
    [...map].sort((a, b) => b[1] - a[1]).slice(0, TOP).map(([what, n]) =>
      `    ${(100 * n / total).toFixed(1).padStart(5)} %  ${what}`
    ).join("\n");
  const seconds = (profile.endTime - profile.startTime) / 1e6;
  return `  ${total} samples over ${seconds.toFixed(1)} s; self time by function:\n${top(byFunction)}\n` +
    `  by file:\n${top(byFile)}`;
}
