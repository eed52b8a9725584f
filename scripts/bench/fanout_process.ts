/**
 * Watchers of one query held by a separate process, so that a fan-out benchmark measures the server, not its own
 * client side (issue 14): raw sync-protocol sockets all subscribed to `messages:count`, each noting the wall-clock time
 * at which every new value reached it. Once a value has reached every socket, the process prints one line
 * `value <v> <t1,t2,…>` (times in ms since the epoch, from `performance.timeOrigin`, which processes of one machine
 * share). Used by sync_bench.ts.
 *
 *   deno run -A scripts/bench/fanout_process.ts <url> <sockets>   (prints `ready` once every socket has its first value)
 */

/** The current wall-clock time in ms, finer than Date.now(). */
export function wallMs(): number {
  return performance.timeOrigin + performance.now();
}

/** A process of watchers, started by `spawnFanOut`. */
export interface FanOut {
  /** Resolves with the arrival time of `value` at each socket (ms since the epoch), once it reached them all. */
  arrivals(value: number): Promise<number[]>;
  /** Closes the sockets and waits for the process to end. */
  leave(): Promise<void>;
}

/** Starts a process of `sockets` watchers and resolves once each has received the query's first value. */
export async function spawnFanOut(url: string, sockets: number): Promise<FanOut> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL(import.meta.url).pathname, url, String(sockets)],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).pipeThrough(splitLines()).getReader();
  const first = await lines.read();
  if (first.value !== "ready") throw new Error(`the fan-out process did not start: ${first.value ?? "(exited)"}`);
  const waiting = new Map<number, (times: number[]) => void>();
  const seen = new Map<number, number[]>();
  const reading = (async () => {
    for (;;) {
      const { value: line, done } = await lines.read();
      if (done) return;
      const [, value, times] = line.split(" ");
      const arrived = times.split(",").map(Number);
      const resolve = waiting.get(Number(value));
      if (resolve) resolve(arrived);
      else seen.set(Number(value), arrived);
    }
  })();
  return {
    arrivals: (value) => {
      const known = seen.get(value);
      if (known) return Promise.resolve(known);
      return new Promise((resolve) => waiting.set(value, resolve));
    },
    leave: async () => {
      await child.stdin.close();
      await reading;
      await child.status;
    },
  };
}

function splitLines(): TransformStream<string, string> {
  let rest = "";
  return new TransformStream({
    transform(chunk, controller) {
      const parts = (rest + chunk).split("\n");
      rest = parts.pop()!;
      for (const part of parts) controller.enqueue(part);
    },
  });
}

/** The process's body: opens the sockets, reports arrivals, and exits when stdin closes. */
async function watch(url: string, count: number): Promise<void> {
  const arrivals = new Map<number, number[]>();
  const arrived = (value: number, atMs: number) => {
    const times = arrivals.get(value) ?? [];
    times.push(atMs);
    arrivals.set(value, times);
    if (times.length === count) console.log(`value ${value} ${times.map((t) => t.toFixed(3)).join(",")}`);
  };
  let firstValues = 0;
  const allFirst = Promise.withResolvers<void>();
  const sockets = await Promise.all(Array.from({ length: count }, async () => {
    const socket = new WebSocket(url.replace("http", "ws") + "/api/1.48.0/sync");
    await new Promise<void>((resolve, reject) => {
      socket.onopen = () => resolve();
      socket.onerror = () => reject(new Error("the sync socket failed"));
    });
    let hasFirst = false;
    socket.onmessage = (event) => {
      const atMs = wallMs();
      const message = JSON.parse(String(event.data));
      if (message.type !== "Transition") return;
      for (const modification of message.modifications) {
        if (modification.type !== "QueryUpdated") continue;
        if (!hasFirst) {
          hasFirst = true;
          if (++firstValues === count) allFirst.resolve();
        } else arrived(modification.value as number, atMs);
      }
    };
    socket.send(JSON.stringify({ type: "Connect", sessionId: crypto.randomUUID(), connectionCount: 0, clientTs: 0 }));
    socket.send(JSON.stringify({
      type: "ModifyQuerySet",
      baseVersion: 0,
      newVersion: 1,
      modifications: [{ type: "Add", queryId: 0, udfPath: "messages:count", args: [{}] }],
    }));
    return socket;
  }));
  await allFirst.promise;
  console.log("ready");
  for await (const _ of Deno.stdin.readable) {
    // Held until the parent closes stdin.
  }
  for (const socket of sockets) socket.close();
}

if (import.meta.main) {
  // `deno task bench` runs every file here without arguments: this one is a helper of sync_bench.ts.
  if (Deno.args.length < 2) console.log("fanout_process: a helper process of sync_bench.ts, nothing to measure alone");
  else await watch(Deno.args[0], Number(Deno.args[1]));
}
