/**
 * WebSocket fuzz sessions of the sync protocol. A session is a broken handshake, a clean session (valid messages
 * whose answers are checked), or a fuzzed one: valid messages with mutated fields, out-of-order QuerySet and identity
 * versions, garbage tokens, bad mutation and action arguments, unknown types, malformed JSON, deep nesting, big
 * strings, and frame-level faults (binary, invalid UTF-8, unmasked, reserved bits and opcodes, stray continuations).
 * Session `i` of seed `s` is always the same script.
 */
import type { FuzzTarget } from "./fuzz_app.ts";
import { type FrameSpec, OPCODE } from "./fuzz_raw_ws.ts";
import { Rng } from "./fuzz_rng.ts";
import { deeplyNested, type Json, MAX_FUZZ_DEPTH, mutateBytes, mutateObject, randomValue } from "./fuzz_values.ts";

/** One session script. */
export interface WsCase {
  index: number;
  kind: "handshake" | "clean" | "fuzz";
  path: string;
  /** Replaces the upgrade headers (broken handshakes only). */
  handshake?: [string, string][];
  /** Frames, sent in batches (the session waits for quiet between batches). */
  batches: { note: string; frames: FrameSpec[] }[];
  /** A frame broke RFC 6455 itself: the server may drop the connection without a close frame. */
  frameViolation: boolean;
  /** Clean sessions: what must come back. */
  expect?: { mutationIds: number[]; actionIds: number[]; querySet: number; queryIds: number[] };
}

const encoder = new TextEncoder();

const text = (message: unknown): FrameSpec => ({
  opcode: OPCODE.text,
  payload: encoder.encode(typeof message === "string" ? message : JSON.stringify(message)),
});

/** The per-session protocol state the generator tracks to make valid messages. */
class Script {
  querySet = 0;
  identity = 0;
  nextRequestId = 0;
  nextQueryId = 0;
  readonly liveQueries: number[] = [];
  readonly rng: Rng;
  readonly target: FuzzTarget;

  constructor(rng: Rng, target: FuzzTarget) {
    this.rng = rng;
    this.target = target;
  }

  /** A Connect; `clean` ones carry no (possibly bad) `maxObservedTimestamp`. */
  connect(clean = false): Record<string, Json> {
    const rng = this.rng;
    const message: Record<string, Json> = {
      type: "Connect",
      sessionId: `fuzz-${rng.next().toString(16)}-${rng.next().toString(16)}`,
      connectionCount: rng.int(3),
      lastCloseReason: "InitialConnect",
      clientTs: 1_700_000_000_000 + rng.int(1_000_000),
    };
    if (!clean && rng.chance(0.2)) {
      message.maxObservedTimestamp = rng.pick([this.target.ts, "////////////", "AAAAAAAAAAA=", "x"]);
    }
    return message;
  }

  addQuery(): Record<string, Json> {
    const rng = this.rng;
    const modifications: Json[] = [];
    for (let n = rng.range(1, 3); n > 0; n--) {
      if (this.liveQueries.length > 0 && rng.chance(0.3)) {
        modifications.push({
          type: "Remove",
          queryId: this.liveQueries.splice(rng.int(this.liveQueries.length), 1)[0],
        });
        continue;
      }
      const queryId = this.nextQueryId++;
      this.liveQueries.push(queryId);
      const [udfPath, args] = rng.pick<[string, Json]>([
        ["messages:list", { channel: rng.pick(["a", "fuzz"]) }],
        ["messages:count", {}],
        ["messages:page", { channel: "a", paginationOpts: { numItems: 5, cursor: null } }],
        ["messages:echo", { value: randomValue(rng, 2) }],
        ["messages:whoami", {}],
      ]);
      modifications.push({ type: "Add", queryId, udfPath, args: [args] });
    }
    const message = {
      type: "ModifyQuerySet",
      baseVersion: this.querySet,
      newVersion: this.querySet + 1,
      modifications,
    };
    this.querySet++;
    return message;
  }

  mutation(): Record<string, Json> {
    return {
      type: "Mutation",
      requestId: this.nextRequestId++,
      udfPath: "messages:send",
      args: [{ channel: "fuzz", body: `ws${this.rng.int(1000)}` }],
    };
  }

  action(): Record<string, Json> {
    return { type: "Action", requestId: this.nextRequestId++, udfPath: "messages:shout", args: [{ text: "ws" }] };
  }

  authenticate(): Record<string, Json> {
    const rng = this.rng;
    const base = this.identity++;
    const part = () =>
      encoder.encode(JSON.stringify(randomValue(rng, 2))).toBase64({ alphabet: "base64url", omitPadding: true });
    switch (rng.int(4)) {
      case 0:
        return { type: "Authenticate", baseVersion: base, tokenType: "None" };
      case 1:
        return { type: "Authenticate", baseVersion: base, tokenType: "User", value: `${part()}.${part()}.${part()}` };
      case 2:
        return { type: "Authenticate", baseVersion: base, tokenType: "Admin", value: rng.pick(["nope|00", ""]) };
      default:
        return { type: "Authenticate", baseVersion: base, tokenType: "Admin", value: this.target.adminKey };
    }
  }

  /** A message that is wrong at the protocol level but well-formed JSON. */
  oddMessage(): Json {
    const rng = this.rng;
    const badNumber = () => rng.pick<Json>([-1, 1e300, 2 ** 53, 1.5, "1", null, this.querySet + 5]);
    switch (rng.int(9)) {
      case 0:
        return { type: "ModifyQuerySet", baseVersion: badNumber(), newVersion: badNumber(), modifications: [] };
      case 1:
        return { type: "ModifyQuerySet", baseVersion: this.querySet, newVersion: this.querySet, modifications: [] };
      case 2:
        return { type: "Authenticate", baseVersion: this.identity + rng.range(1, 3), tokenType: "None" };
      case 3:
        return { type: rng.pick<Json>(["Nope", 5, null, "connect", "Transition", ""]) };
      case 4:
        return rng.pick<Json>([[], "Connect", 42, null, true]);
      case 5:
        return {
          type: "Mutation",
          requestId: badNumber(),
          udfPath: rng.pick(["", "nope:x", "messages:secret"]),
          args: [],
        };
      case 6:
        return { type: "Action", requestId: this.nextRequestId++, udfPath: "messages:shout", args: [randomValue(rng)] };
      case 7:
        return { type: "Event", eventType: "fuzz", event: randomValue(rng, 3) };
      default:
        return { type: "Mutation", requestId: this.nextRequestId++, udfPath: "messages:fails", args: [{}] };
    }
  }
}

/** Frame-level faults; all but `fragmented` and `ping` break RFC 6455. */
function frameFault(rng: Rng, valid: Uint8Array): { note: string; frames: FrameSpec[]; violation: boolean } {
  switch (rng.int(9)) {
    case 0:
      return { note: "binary", frames: [{ opcode: OPCODE.binary, payload: valid }], violation: false };
    case 1: {
      const payload = new Uint8Array([...valid.subarray(0, 5), 0xff, 0xc0, 0x80, ...valid.subarray(5)]);
      return { note: "invalid-utf8", frames: [{ opcode: OPCODE.text, payload }], violation: true };
    }
    case 2:
      return { note: "unmasked", frames: [{ opcode: OPCODE.text, payload: valid, masked: false }], violation: true };
    case 3:
      return {
        note: "reserved-opcode",
        frames: [{ opcode: rng.pick([3, 7, 11, 15]), payload: valid }],
        violation: true,
      };
    case 4:
      return {
        note: "rsv-bits",
        frames: [{ opcode: OPCODE.text, payload: valid, rsv: rng.range(1, 7) }],
        violation: true,
      };
    case 5:
      return { note: "stray-continuation", frames: [{ opcode: OPCODE.continuation, payload: valid }], violation: true };
    case 6: {
      const half = valid.length >> 1;
      return {
        note: "fragmented",
        frames: [
          { opcode: OPCODE.text, payload: valid.subarray(0, half), fin: false },
          { opcode: OPCODE.ping, payload: new Uint8Array(4) },
          { opcode: OPCODE.continuation, payload: valid.subarray(half) },
        ],
        violation: false,
      };
    }
    case 7:
      return { note: "long-ping", frames: [{ opcode: OPCODE.ping, payload: new Uint8Array(200) }], violation: true };
    default: {
      const payload = rng.pick([new Uint8Array([3]), new Uint8Array([0x03, 0xe7]), new Uint8Array([0x0b, 0xb8, 0xff])]);
      return { note: "odd-close", frames: [{ opcode: OPCODE.close, payload }], violation: true };
    }
  }
}

const KEY = "dGhlIHNhbXBsZSBub25jZQ==";
/** Upgrade requests the server must refuse: no key, no `Connection: Upgrade`, another protocol. */
export const BROKEN_HANDSHAKES: readonly [string, string][][] = [
  [["Upgrade", "websocket"], ["Connection", "Upgrade"], ["Sec-WebSocket-Version", "13"]],
  [["Upgrade", "websocket"], ["Connection", "keep-alive"], ["Sec-WebSocket-Key", KEY], ["Sec-WebSocket-Version", "13"]],
  [["Upgrade", "h2c"], ["Connection", "Upgrade"], ["Sec-WebSocket-Key", KEY]],
];
/** Odd upgrade requests Deno accepts (it checks neither the version nor the key's format): 101 or a 4xx both do. */
const ODD_HANDSHAKES: readonly [string, string][][] = [
  [["Upgrade", "websocket"], ["Connection", "Upgrade"], ["Sec-WebSocket-Key", KEY], ["Sec-WebSocket-Version", "8"]],
  [["Upgrade", "websocket"], ["Connection", "Upgrade"], ["Sec-WebSocket-Key", "short"], [
    "Sec-WebSocket-Version",
    "13",
  ]],
  [["Upgrade", "WebSocket"], ["Connection", "keep-alive, Upgrade"], ["Sec-WebSocket-Key", KEY]],
];

function cleanSession(index: number, rng: Rng, script: Script): WsCase {
  const batches: WsCase["batches"] = [{ note: "Connect", frames: [text(script.connect(true))] }];
  const mutationIds: number[] = [];
  const actionIds: number[] = [];
  for (let n = rng.range(1, 4); n > 0; n--) {
    const choice = rng.int(3);
    const message = choice === 0 ? script.addQuery() : choice === 1 ? script.mutation() : script.action();
    if (message.type === "Mutation") mutationIds.push(message.requestId as number);
    if (message.type === "Action") actionIds.push(message.requestId as number);
    batches.push({ note: message.type as string, frames: [text(message)] });
  }
  return {
    index,
    kind: "clean",
    path: "/api/1.48.0/sync",
    batches,
    frameViolation: false,
    expect: { mutationIds, actionIds, querySet: script.querySet, queryIds: [...script.liveQueries] },
  };
}

/** Builds session `index` of `seed` against `target`. */
export function wsCase(seed: number, index: number, target: FuzzTarget): WsCase {
  // Streams above 2^20 keep sessions apart from the HTTP cases of the same seed.
  const rng = new Rng(seed, (1 << 20) + index);
  const path = rng.pick(["/api/1.48.0/sync", "/api/sync", "/api/0.0.0/sync"]);
  if (rng.chance(0.06)) {
    return {
      index,
      kind: "handshake",
      path,
      handshake: rng.pick([...BROKEN_HANDSHAKES, ...ODD_HANDSHAKES]),
      batches: [],
      frameViolation: false,
    };
  }
  const script = new Script(rng, target);
  if (rng.chance(0.2)) return cleanSession(index, rng, script);
  const batches: WsCase["batches"] = [];
  let frameViolation = false;
  if (rng.chance(0.9)) {
    const connect = script.connect();
    batches.push({ note: "Connect", frames: [text(rng.chance(0.1) ? mutateObject(rng, connect) : connect)] });
  }
  for (let n = rng.range(1, 8); n > 0; n--) {
    const valid = [
      () => script.addQuery(),
      () => script.mutation(),
      () => script.action(),
      () => script.authenticate(),
    ];
    let message: Json = rng.chance(0.6) ? rng.pick(valid)() : script.oddMessage();
    let note = typeof message === "object" && message !== null && !Array.isArray(message)
      ? String(message.type)
      : "non-object";
    if (rng.chance(0.25) && typeof message === "object" && message !== null && !Array.isArray(message)) {
      message = mutateObject(rng, message);
      note += "+field";
    }
    let payload: Uint8Array = encoder.encode(JSON.stringify(message));
    const roll = rng.int(20);
    if (roll === 0) {
      payload = mutateBytes(rng, payload);
      note += "+bytes";
      // The mutation may have made the text frame invalid UTF-8, which a server may answer by dropping the socket.
      frameViolation = true;
    } else if (roll === 1) {
      payload = encoder.encode(
        `{"type":"Mutation","requestId":1,"udfPath":"messages:send","args":[${
          deeplyNested(rng, rng.pick([100, MAX_FUZZ_DEPTH]))
        }]}`,
      );
      note = "deep";
    } else if (roll === 2 && rng.chance(0.3)) {
      payload = encoder.encode(
        JSON.stringify({ ...script.mutation(), args: [{ channel: "x".repeat(1024 * 1024), body: "b" }] }),
      );
      note = "1MiB-arg";
    } else if (roll === 3 || roll === 4) {
      const fault = frameFault(rng, payload);
      batches.push({ note: fault.note, frames: fault.frames });
      frameViolation ||= fault.violation;
      continue;
    } else if (roll === 5) {
      const burst = Array.from({ length: rng.pick([20, 200]) }, () => text(script.mutation()));
      batches.push({ note: `burst of ${burst.length} mutations`, frames: burst });
      continue;
    }
    batches.push({ note, frames: [{ opcode: OPCODE.text, payload }] });
  }
  return { index, kind: "fuzz", path, batches, frameViolation };
}
