/**
 * One sync socket: the per-socket state machine of convex-compat.md §2.4. The socket's version
 * `(querySet, identity, ts)` starts at `(0, 0, 0)`; every Transition starts exactly where the previous one ended.
 *
 * Three lanes keep ordering without head-of-line blocking: query-set and auth changes run one at a time in arrival
 * order (the control lane), mutations run one at a time in arrival order (the mutation lane, after any earlier
 * `Authenticate`), actions run concurrently. Each lane is bounded, by count and by bytes: a received message holds its
 * size against this socket's {@link MAX_PENDING_INBOUND_BYTES_PER_SOCKET} and against the hub-wide inbound budget
 * until it is done, the args of live queries hold theirs against {@link MAX_QUERY_SET_BYTES_PER_SOCKET}, and bytes
 * queued towards the client are capped by {@link MAX_BUFFERED_BYTES}.
 */
import { ANONYMOUS, AuthenticationError, type Caller } from "../auth/mod.ts";
import { idempotencyOwner } from "../functions/mod.ts";
import type { QueryEntry, QuerySpec } from "../subscriptions/mod.ts";
import { timestampFromBase64, timestampToBase64 } from "../values/mod.ts";
import type { JsonValue } from "../values/mod.ts";
import type { ByteBudget } from "./byte_budget.ts";
import type { MutationLog, MutationReply } from "./mutation_log.ts";
import { type ClientMessage, parseClientMessage, ProtocolError, type QuerySetModification } from "./protocol.ts";
import { componentCallRefused, type FunctionServices, type QuerySubscriber } from "./services.ts";
import type { SyncBackend } from "./types.ts";
import type { RequestMetadata } from "../runtime/mod.ts";
import { framedFunctionError, newRequestId } from "../errors/mod.ts";

/** Largest client message accepted (Convex's argument limit plus framing). */
export const MAX_MESSAGE_BYTES = 16 * 1024 * 1024 + 64 * 1024;
/** Control messages (query-set and auth changes) waiting per socket. */
export const MAX_PENDING_CONTROL = 1_000;
/** Mutations queued per socket (`OPERATION_QUEUE_BUFFER_SIZE` of the official server). */
export const MAX_PENDING_MUTATIONS = 1_000;
/** Actions running at once per socket. */
export const MAX_PENDING_ACTIONS = 1_000;
/** Live queries per socket. */
export const MAX_QUERIES_PER_SOCKET = 10_000;
/** Bytes queued towards a client that stopped reading, beyond which the socket is dropped. */
export const MAX_BUFFERED_BYTES = 64 * 1024 * 1024;
/** Bytes of received messages not yet done (queued or running) per socket; beyond it the socket is dropped. */
export const MAX_PENDING_INBOUND_BYTES_PER_SOCKET = 3 * MAX_MESSAGE_BYTES;
/**
 * Bytes of the args of one socket's live queries. A query past it fails (QueryFailed) and keeps nothing: one
 * connection cannot take the whole query cache budget.
 */
export const MAX_QUERY_SET_BYTES_PER_SOCKET = 64 * 1024 * 1024;

/** What a session needs from the hub. */
export interface SessionDeps {
  /** The client's address and `User-Agent` (`ctx.meta.getRequestMetadata()` of its mutations and actions). */
  client: { ip: string | null; userAgent: string | null };
  backend: SyncBackend;
  services: FunctionServices;
  mutationLog: MutationLog<MutationReply>;
  /** Bytes of received messages not yet done, across all sockets of the hub. */
  inboundBudget: ByteBudget;
  /** The session has query results to send at the next advance. */
  onDirty(session: SyncSession): void;
  /** The session waits for the watermark to reach a mutation's commit (flush it on advances), or no longer does. */
  onWaiting(session: SyncSession, waiting: boolean): void;
  /** The socket closed; `releasedQueries` of its subscriptions were let go. */
  onClosed(session: SyncSession, releasedQueries: number): void;
}

/** A client's `Mutation` or `Action` message. */
type FunctionRequest = Extract<ClientMessage, { type: "Mutation" | "Action" }>;

/** One query the client subscribed to. */
class LiveQuery implements QuerySubscriber {
  readonly queryId: number;
  readonly session: SyncSession;
  spec: QuerySpec;
  entry: QueryEntry<QuerySubscriber> | null = null;
  /** Why subscribing failed (sent as QueryFailed). */
  failure: string | null = null;
  /** Size of the args, held against the socket's query-set budget while the query is live (0 once released). */
  argsBytes = 0;
  /** Hash of the last result sent; null = nothing sent yet. */
  sentHash: string | null = null;
  removed = false;

  constructor(session: SyncSession, queryId: number, spec: QuerySpec) {
    this.session = session;
    this.queryId = queryId;
    this.spec = spec;
  }

  markChanged(): void {
    this.session.markChanged(this.queryId);
  }
}

function versionJson(querySet: number, identity: number, ts: bigint): string {
  return `{"querySet":${querySet},"identity":${identity},"ts":"${timestampToBase64(ts)}"}`;
}

/** See the module comment. */
export class SyncSession {
  readonly #socket: WebSocket;
  readonly #deps: SessionDeps;
  #sessionId: string | null = null;
  /**
   * Whether the client said this is not its session's first connection: only then may its mutations be re-sends of
   * ones an earlier connection sent (`idempotencyKeyIsFresh` otherwise).
   */
  #reconnected = true;
  #closed = false;
  #caller: Caller = ANONYMOUS;
  /** The user token `#caller` was authenticated with (null: anonymous or admin), for `getRequestMetadata`. */
  #userToken: string | null = null;
  /** Versions received from the client (validated on arrival) and applied (reflected in the next Transition). */
  #receivedQuerySet = 0;
  #appliedQuerySet = 0;
  #receivedIdentity = 0;
  #appliedIdentity = 0;
  /** The endVersion of the last Transition sent. */
  #sentQuerySet = 0;
  #sentIdentity = 0;
  #sentTs = 0n;
  #clockSkewMs: number | null = null;
  readonly #queries = new Map<number, LiveQuery>();
  readonly #dirty = new Set<number>();
  #removals: number[] = [];
  /** A Transition at or past this ts is owed (a mutation committed at it). */
  #waitTs: bigint | null = null;
  #control: Promise<void> = Promise.resolve();
  #pendingControl = 0;
  #authDone: Promise<void> = Promise.resolve();
  #mutations: Promise<void> = Promise.resolve();
  #pendingMutations = 0;
  #pendingActions = 0;
  /** Bytes of received messages not yet done (also held in the hub's inbound budget). */
  #pendingInboundBytes = 0;
  /** Σ argsBytes of the live queries. */
  #querySetBytes = 0;
  /** When the server last sent anything (ms), for the 15 s Ping. */
  lastSentMs = Date.now();

  constructor(socket: WebSocket, deps: SessionDeps) {
    this.#socket = socket;
    this.#deps = deps;
    socket.onmessage = (event) => this.#onMessage(event);
    socket.onclose = () => this.#teardown();
    socket.onerror = () => this.#teardown();
  }

  /** When the accepted user token expires (ms since epoch), if one does. */
  get tokenExpiresAtMs(): number | null {
    return this.#caller.expiresAtMs;
  }

  /** Live queries on this socket. */
  get queryCount(): number {
    return this.#queries.size;
  }

  /** A query's cached result changed (called during an advance). */
  markChanged(queryId: number): void {
    if (this.#dirty.size === 0) this.#deps.onDirty(this);
    this.#dirty.add(queryId);
  }

  /** Sends `{"type":"Ping"}` (keeps the client's 60 s inactivity timer from firing). */
  ping(): void {
    this.#send('{"type":"Ping"}');
  }

  /** The accepted token expired: tell the client (it refreshes and re-authenticates). */
  tokenExpired(): void {
    this.#send(JSON.stringify({
      type: "AuthError",
      error: "Token expired",
      baseVersion: this.#appliedIdentity,
      authUpdateAttempted: false,
    }));
    this.close(1011, "AuthError: Token expired");
  }

  /** Closes the socket (server shutdown or an error). */
  close(code = 1000, reason = ""): void {
    if (this.#closed) return;
    try {
      this.#socket.close(code, reason.slice(0, 120));
    } catch {
      // Already closing.
    }
    this.#teardown();
  }

  #teardown(): void {
    if (this.#closed) return;
    this.#closed = true;
    const released = this.#queries.size;
    for (const query of this.#queries.values()) this.#release(query);
    this.#queries.clear();
    this.#deps.onWaiting(this, false);
    this.#deps.onClosed(this, released);
  }

  #release(query: LiveQuery): void {
    query.removed = true;
    this.#querySetBytes -= query.argsBytes;
    query.argsBytes = 0;
    if (query.entry) this.#deps.services.subscriptions.unsubscribe(query.entry, query);
  }

  /** Holds `bytes` of a received message until `done` settles; false (socket closed) when a budget is spent. */
  #holdInbound(bytes: number, done: Promise<unknown>): boolean {
    if (this.#pendingInboundBytes + bytes > MAX_PENDING_INBOUND_BYTES_PER_SOCKET) {
      this.close(1011, "TooManyConcurrentRequests: too many bytes of messages are waiting on this connection");
      return false;
    }
    if (!this.#deps.inboundBudget.tryTake(bytes)) {
      this.close(1011, "TooManyConcurrentRequests: the server has too many messages waiting; reconnect later");
      return false;
    }
    this.#pendingInboundBytes += bytes;
    const give = () => {
      this.#pendingInboundBytes -= bytes;
      this.#deps.inboundBudget.give(bytes);
    };
    done.then(give, give);
    return true;
  }

  #send(text: string): void {
    if (this.#closed || this.#socket.readyState !== WebSocket.OPEN) return;
    if (this.#socket.bufferedAmount > MAX_BUFFERED_BYTES) {
      this.close(1011, "InternalServerError: the client is not reading messages");
      return;
    }
    try {
      this.#socket.send(text);
      this.lastSentMs = Date.now();
    } catch {
      this.#teardown();
    }
  }

  /** A client bug: FatalError (the client stops for good) and close. */
  #fatal(message: string): void {
    this.#send(JSON.stringify({ type: "FatalError", error: message }));
    this.close(1011, `BadRequest: ${message}`);
  }

  #onMessage(event: MessageEvent): void {
    if (this.#closed) return;
    if (typeof event.data !== "string") return this.#fatal("Binary messages are not part of the sync protocol");
    if (event.data.length > MAX_MESSAGE_BYTES) {
      return this.#fatal(`Message of ${event.data.length} bytes is larger than the limit of ${MAX_MESSAGE_BYTES}`);
    }
    let message: ClientMessage;
    try {
      message = parseClientMessage(event.data);
    } catch (error) {
      return this.#fatal(error instanceof ProtocolError ? error.message : "Malformed message");
    }
    try {
      this.#dispatch(message, event.data.length);
    } catch (error) {
      if (error instanceof ProtocolError) this.#fatal(error.message);
      else {
        console.error("denvex: sync message failed:", error);
        this.close(1011, "InternalServerError: the server failed to process a message");
      }
    }
  }

  /** Acts on one message of `sizeBytes` (held against the inbound budgets until its work is done). */
  #dispatch(message: ClientMessage, sizeBytes: number): void {
    if (message.type === "Connect") return this.#connect(message);
    if (this.#sessionId === null) throw new ProtocolError("The first message must be Connect");
    switch (message.type) {
      case "ModifyQuerySet":
        return this.#modifyQuerySet(message.baseVersion, message.newVersion, message.modifications, sizeBytes);
      case "Authenticate":
        return this.#authenticate(message);
      case "Mutation":
        return this.#mutation(message, sizeBytes);
      case "Action":
        return this.#action(message, sizeBytes);
      case "Event":
        return;
    }
  }

  #connect(message: Extract<ClientMessage, { type: "Connect" }>): void {
    if (this.#sessionId !== null) throw new ProtocolError("Connect was sent twice");
    this.#sessionId = message.sessionId;
    this.#reconnected = message.connectionCount > 0;
    if (message.clientTs !== null) this.#clockSkewMs = message.clientTs - Date.now();
    if (message.maxObservedTimestamp !== null) {
      let observed: bigint;
      try {
        observed = timestampFromBase64(message.maxObservedTimestamp);
      } catch {
        throw new ProtocolError("Connect.maxObservedTimestamp is not a base64 timestamp");
      }
      const latest = this.#deps.backend.database.latestTs;
      if (observed > latest) {
        // The client saw a state newer than ours (a restored backup?): serving it older data would break
        // linearizability, so refuse and let it retry.
        this.close(
          1011,
          `InternalServerError: client has observed timestamp ${observed}, ahead of the server's ${latest}`,
        );
      }
    }
  }

  /** Runs `work` in the control lane. */
  #enqueueControl(work: () => Promise<void>): Promise<void> {
    if (this.#pendingControl >= MAX_PENDING_CONTROL) {
      this.close(1011, "TooManyConcurrentRequests: too many query set changes are waiting");
      return Promise.resolve();
    }
    this.#pendingControl++;
    const run = this.#control.then(() => this.#closed ? undefined : work()).catch((error) => {
      if (error instanceof ProtocolError) this.#fatal(error.message);
      else {
        console.error("denvex: sync session failed:", error);
        this.close(1011, "InternalServerError: the server failed to process a message");
      }
    }).finally(() => this.#pendingControl--);
    this.#control = run;
    return run;
  }

  #spec(udfPath: string, componentPath: string, args: JsonValue, journal: string | null): QuerySpec {
    return {
      path: udfPath,
      ...(componentPath === "" ? {} : { componentPath }),
      args,
      identityJson: this.#caller.identityJson,
      allowInternal: this.#caller.isAdmin,
      journal,
    };
  }

  #modifyQuerySet(
    baseVersion: number,
    newVersion: number,
    modifications: QuerySetModification[],
    sizeBytes: number,
  ): void {
    if (baseVersion !== this.#receivedQuerySet) {
      throw new ProtocolError(
        `BaseVersionMismatch: query set base version ${baseVersion}, expected ${this.#receivedQuerySet}`,
      );
    }
    if (newVersion <= baseVersion) throw new ProtocolError("ModifyQuerySet.newVersion must exceed baseVersion");
    this.#receivedQuerySet = newVersion;
    const { promise: done, resolve: markDone } = Promise.withResolvers<void>();
    if (!this.#holdInbound(sizeBytes, done)) return;
    void this.#enqueueControl(async () => {
      const added: LiveQuery[] = [];
      const removed: number[] = [];
      for (const modification of modifications) {
        const previous = this.#queries.get(modification.queryId);
        if (previous) {
          this.#queries.delete(modification.queryId);
          this.#release(previous);
        }
        if (modification.type === "Remove") {
          removed.push(modification.queryId);
          continue;
        }
        if (this.#queries.size >= MAX_QUERIES_PER_SOCKET) {
          throw new ProtocolError(`More than ${MAX_QUERIES_PER_SOCKET} queries on one connection`);
        }
        const query = new LiveQuery(
          this,
          modification.queryId,
          this.#spec(modification.udfPath, modification.componentPath, modification.args, modification.journal),
        );
        this.#queries.set(query.queryId, query);
        added.push(query);
        // One modification: its args are about the message's size (no need to serialize them again to know).
        this.#admit(query, modifications.length === 1 ? sizeBytes : null);
      }
      await Promise.all(added.map((query) => this.#subscribe(query)));
      this.#appliedQuerySet = newVersion;
      for (const queryId of removed) if (!this.#queries.has(queryId)) this.#removals.push(queryId);
      for (const query of added) if (!query.removed) this.#dirty.add(query.queryId);
      this.flush();
    }).finally(markDone);
  }

  /** Holds a new query's args against the socket's query-set budget, or fails it (keeping nothing) past it. */
  #admit(query: LiveQuery, knownBytes: number | null): void {
    const argsBytes = knownBytes ?? JSON.stringify(query.spec.args).length;
    if (this.#querySetBytes + argsBytes > MAX_QUERY_SET_BYTES_PER_SOCKET) {
      this.#refuse(
        query,
        `TooManyConcurrentRequests: the live queries of this connection would hold more than ` +
          `${MAX_QUERY_SET_BYTES_PER_SOCKET / (1024 * 1024)} MiB of arguments`,
      );
      return;
    }
    query.argsBytes = argsBytes;
    this.#querySetBytes += argsBytes;
  }

  /** Fails `query` for good and lets go of its args (a refused query must not keep what the budget refused). */
  #refuse(query: LiveQuery, message: string): void {
    query.failure = message;
    query.spec = { ...query.spec, args: {} };
    this.#querySetBytes -= query.argsBytes;
    query.argsBytes = 0;
  }

  /** Subscribes `query` with its current spec; on failure the query reports the error. */
  async #subscribe(query: LiveQuery): Promise<void> {
    if (query.failure !== null && query.entry === null) return;
    try {
      const entry = await this.#deps.services.subscriptions.subscribe(query.spec, query);
      if (query.removed || this.#closed) this.#deps.services.subscriptions.unsubscribe(entry, query);
      else {
        query.entry = entry;
        query.failure = null;
        // The entry's spec has the same cache key: share it, so the args are kept once however many sockets watch.
        query.spec = entry.spec;
      }
    } catch (error) {
      this.#refuse(query, error instanceof Error ? error.message : String(error));
    }
  }

  #authenticate(message: Extract<ClientMessage, { type: "Authenticate" }>): void {
    if (message.baseVersion !== this.#receivedIdentity) {
      throw new ProtocolError(
        `BaseVersionMismatch: identity base version ${message.baseVersion}, expected ${this.#receivedIdentity}`,
      );
    }
    this.#receivedIdentity++;
    const newIdentity = this.#receivedIdentity;
    this.#authDone = this.#enqueueControl(async () => {
      let caller: Caller;
      try {
        const authenticator = this.#deps.services.authenticator;
        if (message.tokenType === "None") caller = ANONYMOUS;
        else if (message.tokenType === "Admin") {
          caller = authenticator.fromAdminKey(message.value!, message.impersonating);
        } else caller = await authenticator.fromUserToken(message.value!);
      } catch (error) {
        const text = error instanceof AuthenticationError ? error.message : "Could not verify the token";
        this.#send(JSON.stringify({
          type: "AuthError",
          error: text,
          baseVersion: message.baseVersion,
          authUpdateAttempted: true,
        }));
        this.close(1011, `AuthError: ${text}`);
        return;
      }
      const identityChanged = caller.identityJson !== this.#caller.identityJson ||
        caller.isAdmin !== this.#caller.isAdmin;
      this.#caller = caller;
      this.#userToken = message.tokenType === "User" ? message.value! : null;
      if (identityChanged) {
        // Every query re-runs under the new identity (its cache key changes).
        const queries = [...this.#queries.values()];
        const old = queries.map((query) => query.entry);
        for (const query of queries) {
          query.spec = { ...query.spec, identityJson: caller.identityJson, allowInternal: caller.isAdmin };
        }
        await Promise.all(queries.map((query) => this.#subscribe(query)));
        queries.forEach((query, i) => {
          if (old[i] && old[i] !== query.entry) this.#deps.services.subscriptions.unsubscribe(old[i]!, query);
          if (!query.removed) this.#dirty.add(query.queryId);
        });
      }
      this.#appliedIdentity = newIdentity;
      this.flush();
    });
  }

  /**
   * Admits one more mutation or action: closes the socket (1011 `TooManyConcurrentRequests: <refusal>`) when `full`,
   * else holds the message's `sizeBytes` until the returned `markDone` is called. Null when refused.
   */
  #admitRequest(full: boolean, refusal: string, sizeBytes: number): (() => void) | null {
    if (full) {
      this.close(1011, `TooManyConcurrentRequests: ${refusal}`);
      return null;
    }
    const { promise: done, resolve: markDone } = Promise.withResolvers<void>();
    return this.#holdInbound(sizeBytes, done) ? markDone : null;
  }

  #mutation(message: FunctionRequest, sizeBytes: number): void {
    const { requestId, udfPath, args, componentPath } = message;
    const full = this.#pendingMutations >= MAX_PENDING_MUTATIONS;
    const markDone = this.#admitRequest(full, `more than ${MAX_PENDING_MUTATIONS} mutations are queued`, sizeBytes);
    if (!markDone) return;
    this.#pendingMutations++;
    const authDone = this.#authDone;
    const sessionId = this.#sessionId!;
    this.#mutations = this.#mutations.then(async () => {
      await authDone;
      if (this.#closed) return;
      const caller = this.#caller;
      // Replies are remembered per identity too: another client reusing this sessionId never gets this one's reply.
      const replayScope = `${idempotencyOwner(caller.identityJson, caller.isAdmin)}\u0000${sessionId}`;
      const response = await this.#deps.mutationLog.run(replayScope, requestId, async () => {
        const executionId = newRequestId(); // the `[Request ID: …]` of its error and of its log line
        const result = componentPath !== "" && !caller.isAdmin
          ? componentCallRefused(componentPath)
          : await this.#deps.backend.executor.call({
            path: udfPath,
            componentPath,
            args,
            expectedType: "mutation",
            identityJson: caller.identityJson,
            allowInternal: caller.isAdmin,
            // Recorded in the mutation's own commit, so a re-send after a reconnect or a restart is not run twice.
            idempotencyKey: `${sessionId}\u0000${requestId}`,
            idempotencyKeyIsFresh: !this.#reconnected,
            requestId: executionId,
            requestMetadata: this.#requestMetadata(),
          });
        if (result.ok) {
          return {
            text: `{"type":"MutationResponse","requestId":${requestId},"success":true,"result":${result.valueJson},` +
              `"ts":"${timestampToBase64(result.ts)}","logLines":${JSON.stringify(result.logLines)}}`,
            commitTs: result.ts,
          };
        }
        return {
          text: JSON.stringify({
            type: "MutationResponse",
            requestId,
            success: false,
            result: framedFunctionError(result.errorMessage, executionId),
            ts: null,
            logLines: result.logLines,
            ...(result.errorData === undefined ? {} : { errorData: result.errorData }),
          }),
          commitTs: null,
        };
      });
      this.#send(response.text);
      if (response.commitTs !== null) {
        if (this.#waitTs === null || response.commitTs > this.#waitTs) this.#waitTs = response.commitTs;
        this.flush();
      }
    }).catch((error) => {
      console.error("denvex: mutation failed:", error);
      this.close(1011, "InternalServerError: the server failed to run a mutation");
    }).finally(() => {
      this.#pendingMutations--;
      markDone();
    });
  }

  /** What `ctx.meta.getRequestMetadata()` reports for this client's calls now. */
  #requestMetadata(): RequestMetadata {
    const { ip, userAgent } = this.#deps.client;
    return { ip, userAgent, scheduledFunctionId: null, authToken: this.#userToken };
  }

  #action(message: FunctionRequest, sizeBytes: number): void {
    const { requestId, udfPath, args, componentPath } = message;
    const full = this.#pendingActions >= MAX_PENDING_ACTIONS;
    const markDone = this.#admitRequest(full, `more than ${MAX_PENDING_ACTIONS} actions are running`, sizeBytes);
    if (!markDone) return;
    this.#pendingActions++;
    const authDone = this.#authDone;
    void (async () => {
      await authDone;
      if (this.#closed) return;
      const executionId = newRequestId(); // the `[Request ID: …]` of its error and of its log line
      const result = componentPath !== "" && !this.#caller.isAdmin
        ? componentCallRefused(componentPath)
        : await this.#deps.backend.executor.call({
          path: udfPath,
          componentPath,
          args,
          expectedType: "action",
          identityJson: this.#caller.identityJson,
          allowInternal: this.#caller.isAdmin,
          requestId: executionId,
          requestMetadata: this.#requestMetadata(),
        });
      if (result.ok) {
        this.#send(
          `{"type":"ActionResponse","requestId":${requestId},"success":true,"result":${result.valueJson},` +
            `"logLines":${JSON.stringify(result.logLines)}}`,
        );
      } else {
        this.#send(JSON.stringify({
          type: "ActionResponse",
          requestId,
          success: false,
          result: framedFunctionError(result.errorMessage, executionId),
          logLines: result.logLines,
          ...(result.errorData === undefined ? {} : { errorData: result.errorData }),
        }));
      }
    })().catch((error) => {
      console.error("denvex: action failed:", error);
      this.close(1011, "InternalServerError: the server failed to run an action");
    }).finally(() => {
      this.#pendingActions--;
      markDone();
    });
  }

  /**
   * Sends a Transition if anything is owed: changed results, applied query-set or identity versions, or a mutation
   * waiting for a Transition at or past its commit. All results in it are valid at the subscription watermark.
   */
  flush(): void {
    if (this.#closed) return;
    const watermark = this.#deps.services.subscriptions.watermark;
    const endTs = watermark > this.#sentTs ? watermark : this.#sentTs;
    const modifications: string[] = [];
    for (const queryId of this.#removals) modifications.push(`{"type":"QueryRemoved","queryId":${queryId}}`);
    this.#removals = [];
    for (const queryId of this.#dirty) {
      const query = this.#queries.get(queryId);
      if (!query) continue;
      const modification = this.#modificationOf(query);
      if (modification !== null) modifications.push(modification);
    }
    this.#dirty.clear();
    const waitMet = this.#waitTs !== null && this.#waitTs <= endTs;
    if (waitMet) this.#waitTs = null;
    this.#deps.onWaiting(this, this.#waitTs !== null);
    if (
      modifications.length === 0 && !waitMet && this.#appliedQuerySet === this.#sentQuerySet &&
      this.#appliedIdentity === this.#sentIdentity
    ) return;
    const start = versionJson(this.#sentQuerySet, this.#sentIdentity, this.#sentTs);
    const end = versionJson(this.#appliedQuerySet, this.#appliedIdentity, endTs);
    this.#sentQuerySet = this.#appliedQuerySet;
    this.#sentIdentity = this.#appliedIdentity;
    this.#sentTs = endTs;
    const skew = this.#clockSkewMs === null ? "" : `,"clientClockSkew":${this.#clockSkewMs}`;
    this.#send(
      `{"type":"Transition","startVersion":${start},"endVersion":${end},"modifications":[${
        modifications.join(",")
      }]${skew},"serverTs":${Date.now() * 1_000_000}}`,
    );
  }

  /** The modification for one query, or null if the client already has its current result. */
  #modificationOf(query: LiveQuery): string | null {
    if (query.entry === null) {
      if (query.failure === null) return null;
      const hash = `failure:${query.failure}`;
      if (query.sentHash === hash) return null;
      query.sentHash = hash;
      return JSON.stringify({
        type: "QueryFailed",
        queryId: query.queryId,
        errorMessage: query.failure,
        logLines: [],
        journal: null,
      });
    }
    const entry = query.entry;
    if (query.sentHash === entry.hash) return null;
    query.sentHash = entry.hash;
    const run = entry.result;
    const logLines = JSON.stringify(run.logLines);
    if (run.ok) {
      return `{"type":"QueryUpdated","queryId":${query.queryId},"value":${run.valueJson},"logLines":${logLines},` +
        `"journal":${JSON.stringify(run.journal ?? query.spec.journal ?? null)}}`;
    }
    return JSON.stringify({
      type: "QueryFailed",
      queryId: query.queryId,
      errorMessage: framedFunctionError(run.errorMessage ?? "", run.requestId),
      logLines: run.logLines,
      journal: null,
      ...(run.errorData === undefined ? {} : { errorData: run.errorData }),
    });
  }
}
