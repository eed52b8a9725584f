/**
 * The execution or analysis a runner process has in progress, and the clock behind its user-code time limit.
 * Private to the runner (runner.ts).
 */
import type { TransactionHost } from "../database/mod.ts";
import type { FromRunnerMessage } from "./runner_protocol.ts";
import type { WorkerAnalysisMessage, WorkerResultMessage } from "./worker/protocol.ts";

/** The execution or analysis in progress. */
export interface CurrentRun {
  executionId: string;
  host: TransactionHost | null;
  /** The caller's identity, which an action's `getUserIdentity` gets without asking the server. */
  identityJson: string | null;
  isAction: boolean;
  /** performance.now() when user code started. */
  startedAt: number;
  syscallMs: number;
  syscallStartedAt: number | null;
  timeLimitMs: number;
  /** CONVEX_CLOUD_URL of the execution (file URLs of `ctx.storage.getUrl`). */
  cloudUrl: string;
  /** Queries and mutations are limited on user-code time (syscalls excluded); actions and analysis on wall time. */
  excludesSyscalls: boolean;
  finish(message: WorkerResultMessage | WorkerAnalysisMessage): void;
  /** Builds the message that reports a breached limit. */
  timeoutMessage(): FromRunnerMessage;
}

/** What a run starts with: everything but its clock, which starts now. */
export type RunStart = Omit<CurrentRun, "startedAt" | "syscallMs" | "syscallStartedAt">;

/** A run whose clock starts now. */
export function startRun(start: RunStart): CurrentRun {
  return { ...start, startedAt: performance.now(), syscallMs: 0, syscallStartedAt: null };
}
