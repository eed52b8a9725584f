/**
 * Live subscriptions held by a separate process, so the client side is not what a benchmark measures (issue 14):
 * raw sync-protocol sockets, each adding its share of the subscriptions in `ModifyQuerySet` messages of
 * {@link ADDS_PER_MESSAGE}, held until the process's stdin closes. Used by footprint_bench.ts and
 * subscriptions_insert_bench.ts.
 *
 *   deno run -A scripts/bench/subscriber_process.ts <url> <json SubscriberPlan>   (prints `held N failed F`)
 */

/** Subscriptions added per ModifyQuerySet message. */
const ADDS_PER_MESSAGE = 100;
/** Time for the close frames to leave before the process exits. */
const CLOSE_GRACE_MS = 200;

/**
 * What to subscribe to: `count` distinct subscriptions of `udfPath` over `sockets` sockets; subscription `i` has the
 * args `{ k: keyPrefix + (i % keyModulo), nonce: nonceBase + i }`.
 */
export interface SubscriberPlan {
  udfPath: string;
  count: number;
  sockets: number;
  keyPrefix: string;
  keyModulo: number;
  nonceBase: number;
}

/** What the subscriber process reports while it holds its subscriptions. */
export interface Subscriber {
  /** Subscriptions the server answered with anything but `QueryUpdated`. */
  failed: number;
  /** `QueryUpdated` modifications received after every subscription was added (updates pushed by commits). */
  updates(): Promise<number>;
  /** Closes every socket and waits for the process to end. */
  leave(): Promise<void>;
}

/** Opens one socket and adds subscriptions `[first, last)` of `plan`; counts the non-`QueryUpdated` answers. */
async function subscribeRange(
  url: string,
  plan: SubscriberPlan,
  first: number,
  last: number,
  counters: { failed: number; updates: number },
): Promise<WebSocket> {
  const socket = new WebSocket(url.replace("http", "ws") + "/api/1.48.0/sync");
  await new Promise<void>((resolve, reject) => {
    socket.onopen = () => resolve();
    socket.onerror = () => reject(new Error("the sync socket failed"));
  });
  socket.send(JSON.stringify({ type: "Connect", sessionId: crypto.randomUUID(), connectionCount: 0 }));
  let version = 0;
  for (let from = first; from < last; from += ADDS_PER_MESSAGE) {
    const ids = Array.from({ length: Math.min(ADDS_PER_MESSAGE, last - from) }, (_, j) => from + j);
    await new Promise<void>((resolve) => {
      socket.onmessage = (event) => {
        const message = JSON.parse(String(event.data));
        if (message.type !== "Transition" || message.endVersion.querySet < version) return;
        counters.failed += (message.modifications as { type: string }[]).filter((m) => m.type !== "QueryUpdated")
          .length;
        resolve();
      };
      socket.send(JSON.stringify({
        type: "ModifyQuerySet",
        baseVersion: version,
        newVersion: ++version,
        modifications: ids.map((queryId) => ({
          type: "Add",
          queryId,
          udfPath: plan.udfPath,
          args: [{ k: `${plan.keyPrefix}${queryId % plan.keyModulo}`, nonce: plan.nonceBase + queryId }],
        })),
      }));
    });
  }
  // From now on: count the results commits push.
  socket.onmessage = (event) => {
    const message = JSON.parse(String(event.data));
    if (message.type !== "Transition") return;
    counters.updates += (message.modifications as { type: string }[]).filter((m) => m.type === "QueryUpdated").length;
  };
  return socket;
}

/** The subscriber process's body: holds `plan`'s subscriptions until stdin closes; answers `updates?` lines. */
async function holdSubscriptions(url: string, plan: SubscriberPlan): Promise<void> {
  const perSocket = Math.ceil(plan.count / plan.sockets);
  const counters = { failed: 0, updates: 0 };
  const ranges = Array.from(
    { length: plan.sockets },
    (_, s) => [s * perSocket, Math.min(plan.count, (s + 1) * perSocket)],
  )
    .filter(([first, last]) => first < last);
  const opened = await Promise.all(ranges.map(([first, last]) => subscribeRange(url, plan, first, last, counters)));
  console.log(`held ${plan.count} failed ${counters.failed}`);
  for await (const text of Deno.stdin.readable.pipeThrough(new TextDecoderStream())) {
    for (const _ of text.matchAll(/updates\?/g)) console.log(`updates ${counters.updates}`);
  }
  for (const socket of opened) socket.close();
  await new Promise((resolve) => setTimeout(resolve, CLOSE_GRACE_MS));
}

/** Starts the subscriber process and resolves once every subscription of `plan` is live. */
export async function spawnSubscriber(url: string, plan: SubscriberPlan): Promise<Subscriber> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL(import.meta.url).pathname, url, JSON.stringify(plan)],
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const writer = child.stdin.getWriter();
  let text = "";
  const readUntil = async (pattern: RegExp): Promise<RegExpExecArray> => {
    for (;;) {
      const match = pattern.exec(text);
      if (match) {
        text = text.slice(match.index + match[0].length);
        return match;
      }
      const { value, done } = await reader.read();
      if (done) throw new Error("the subscriber process ended early");
      text += value;
    }
  };
  const held = await readUntil(/held \d+ failed (\d+)\n/);
  return {
    failed: Number(held[1]),
    async updates() {
      await writer.write(new TextEncoder().encode("updates?\n"));
      return Number((await readUntil(/updates (\d+)\n/))[1]);
    },
    async leave() {
      await writer.close();
      await child.status;
      reader.cancel().catch(() => {});
    },
  };
}

if (import.meta.main) {
  // `deno task bench` runs every file here without arguments: this one is a helper of other benchmarks.
  if (Deno.args.length < 2) console.log("subscriber_process: a helper process of other benchmarks, nothing to measure");
  else await holdSubscriptions(Deno.args[0], JSON.parse(Deno.args[1]) as SubscriberPlan);
}
