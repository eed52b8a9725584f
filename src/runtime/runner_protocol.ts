/**
 * Messages of the server ⇄ runner bridge (framed by framing.ts over the runner's stdin/stdout).
 *
 * Private to `src/runtime`: other folders use its `mod.ts`.
 */
import type { Catalog, TransactionOutcome } from "../database/mod.ts";
import type { PersistenceLocation } from "../persistence/mod.ts";
import type { JsonValue } from "../values/mod.ts";
import type { DeploymentAnalysis, ExecuteRequest, ExecutionMetadata, UdfType } from "./types.ts";
import type { ExecutionResultFields } from "./worker/protocol.ts";
import type {
  HttpBodyChunkMessage,
  HttpBodyPullMessage,
  HttpRequestHead,
  HttpResponseAckMessage,
  HttpResponseChunkMessage,
  HttpResponseHeadMessage,
} from "./http_action_protocol.ts";

/** Runner kinds: transaction runners read the database; action runners may use the network instead. */
export type RunnerKind = "transaction" | "action";

/**
 * Call op by which a mutation's first insert into a new table asks the server to create it. Args `{tableName,
 * componentPath}` (the namespace the table belongs to, `""` the app),
 * result: the new Catalog JSON. Answered by `RunnerPoolOptions.createTable`, else passed to `onCall`.
 */
export const CREATE_TABLE_OP = "denvex/createTable";

/** Server → runner, first message. */
export interface RunnerInitMessage {
  type: "init";
  kind: RunnerKind;
  /** Where the reader opens the database (transaction runners). */
  location: PersistenceLocation | null;
  /** The folder of all deployments; the worker may read it and nothing else. */
  modulesDir: string;
  /** Whether user code may use the network (actions). */
  allowNet: boolean;
}

/** The fields of an {@link ExecuteRequest} a runner receives as they are (documented there). */
type PassedRequestFields = Pick<
  ExecuteRequest,
  "identityJson" | "journal" | "env" | "requestId" | "deploymentDir" | "componentPath" | "componentEnvs"
>;

/** Server → runner: run one function. */
export interface RunnerExecuteMessage extends PassedRequestFields {
  type: "execute";
  executionId: string;
  udfType: UdfType;
  modulePath: string;
  exportName: string;
  argsJson: string;
  /** Decimal u64. */
  snapshotTs: string | null;
  /** Sent when the runner does not have `catalogVersion` cached. */
  catalog: Catalog | null;
  catalogVersion: number | null;
  /** User-code time (queries/mutations: excluding syscalls) after which the runner fails the call and exits. */
  timeLimitMs: number;
  /** Set for an HTTP action (udfType "action"): the request to route through `http.js`. */
  http?: HttpRequestHead;
  metadata: ExecutionMetadata;
}

/** Server → runner: analyze a deployment. */
export interface RunnerAnalyzeMessage {
  type: "analyze";
  executionId: string;
  deploymentDir: string;
  /** The component whose modules to analyze (absent: the app's). */
  componentPath?: string;
  modulePaths: string[];
  env: Record<string, string>;
  timeLimitMs: number;
}

/** Server → runner: the answer to a `RunnerCallMessage`. */
export interface RunnerCallResultMessage {
  type: "callResult";
  callId: number;
  ok: boolean;
  resultJson?: string;
  error?: { message: string; data?: JsonValue };
}

/**
 * Server → runner: give back the execution sent behind the running one (pipelined) if it has not started, because the
 * running one runs long (pool.ts, `#withdrawStuck`). The runner answers `withdrawn` when it gave it back, nothing when
 * it has already started it (its answer then comes as usual).
 */
export interface RunnerWithdrawMessage {
  type: "withdraw";
  executionId: string;
}

/** Everything the server sends. */
export type ToRunnerMessage =
  | RunnerInitMessage
  | RunnerExecuteMessage
  | RunnerAnalyzeMessage
  | RunnerWithdrawMessage
  | RunnerCallResultMessage
  | HttpBodyChunkMessage
  | HttpResponseAckMessage;

/** Runner → server: initialized and warm. */
export interface RunnerReadyMessage {
  type: "ready";
}

/** Runner → server: an execution finished (the worker's result, with the transaction's outcome and timing). */
export interface RunnerResultMessage extends ExecutionResultFields {
  outcome?: TransactionOutcome | undefined;
  executionTimeMs: number;
  /** Set when the runner exits right after this answer (time limit): the server must not send it another call. */
  retiring?: boolean;
  /**
   * Set when the runner is idle as of this answer (its worker settled before the answer left): the answer then stands
   * for the `idle` message too, which saves a frame, a write and a wake-up of the server per call (issue 14).
   */
  idle?: true;
}

/** Runner → server: an analysis finished. */
export interface RunnerAnalysisMessage {
  type: "analysis";
  executionId: string;
  ok: boolean;
  analysis?: DeploymentAnalysis;
  errorMessage?: string;
  /** See `RunnerResultMessage.retiring`. */
  retiring?: boolean;
}

/**
 * Runner → server, after each result or analysis: the worker answered its probe (nothing the call left behind keeps
 * it busy) and its globals are restored, so the runner may take another call. A runner that cannot say this exits.
 */
export interface RunnerIdleMessage {
  type: "idle";
}

/** Runner → server: the execution sent behind was given back unstarted (`RunnerWithdrawMessage`); none of it ran. */
export interface RunnerWithdrawnMessage {
  type: "withdrawn";
  executionId: string;
}

/** Runner → server: run `op` for the execution (action syscalls, table creation). */
export interface RunnerCallMessage {
  type: "call";
  executionId: string;
  callId: number;
  op: string;
  argsJson: string;
}

/** Everything a runner sends. */
export type FromRunnerMessage =
  | RunnerReadyMessage
  | RunnerIdleMessage
  | RunnerWithdrawnMessage
  | RunnerResultMessage
  | RunnerAnalysisMessage
  | RunnerCallMessage
  | HttpBodyPullMessage
  | HttpResponseHeadMessage
  | HttpResponseChunkMessage;

/**
 * Executions a transaction runner holds behind its running one, in the order sent (pool.ts): it starts each itself
 * once idle. More than one lets the runner take several calls per wake-up of its threads under load (issue 14,
 * `call_path_ab` against one: 8 gave 1.18x the queries/s and 1.33x the inserts/s, 4 gave 1.16x and 1.25x; a relay
 * with nothing of denvex in it, `relay_floor`, went from 0.28x to 0.43x of the bare handler's queries from 2 to 8).
 */
export const MAX_CALLS_BEHIND = 8;

/** Exit code of a runner that stopped itself because user code exceeded its time limit. */
export const EXIT_TIME_LIMIT = 75;
/** Exit code of a runner whose bridge failed (corrupted stream, unexpected message). */
export const EXIT_PROTOCOL_ERROR = 76;
/** Exit code of a runner whose worker did not answer its probe after a call (work left behind keeps it busy). */
export const EXIT_LEFTOVER_WORK = 77;
/** Exit code of V8's fatal out-of-memory abort (SIGTRAP), see platform-notes.md. */
export const EXIT_OUT_OF_MEMORY = 133;
