/**
 * Messages between the server and a node runner process: one JSON object per line. Runner → server lines start with
 * a per-process nonce (sent in the first message, never on the command line) so that anything user code writes to
 * stdout itself (`process.stdout.write`) is told apart and kept as a log line instead of corrupting the stream.
 */
import type { NodeCall } from "./types.ts";

/** Server → runner, first message. */
export interface NodeInitMessage {
  type: "init";
  nonce: string;
  /** Absolute folder of the deployment's node modules (`<deployment>/modules`). */
  modulesDir: string;
  /** The per-runner temp directory, emptied after every call. */
  tmpDir: string;
}

/** Server → runner: run one action. */
export interface NodeCallMessage extends NodeCall {
  type: "call";
  callId: number;
}

/** Server → runner: import node modules (with the deployment's variables) and describe their functions. */
export interface NodeAnalyzeMessage {
  type: "analyze";
  callId: number;
  modulePaths: string[];
  env: Record<string, string>;
}

/** Server → runner: the answer to an async syscall. */
export type NodeSyscallResultMessage =
  | { type: "syscallResult"; syscallId: number; ok: true; resultJson: string }
  | { type: "syscallResult"; syscallId: number; ok: false; message: string; data?: unknown };

/** Messages the server sends. */
export type ToNodeRunnerMessage = NodeInitMessage | NodeCallMessage | NodeAnalyzeMessage | NodeSyscallResultMessage;

/** Messages the runner sends. */
export type FromNodeRunnerMessage =
  | { type: "ready" }
  /** Sent (synchronously) on receiving a call, before any of its code runs. */
  | { type: "started"; callId: number }
  | { type: "syscall"; callId: number; syscallId: number; op: string; argsJson: string }
  | {
    type: "result";
    callId: number;
    ok: boolean;
    resultJson?: string;
    errorMessage?: string;
    errorData?: unknown;
    /** Console lines of the call (`[LOG] …`, capped as in isolate functions). */
    logLines?: string[];
  };

/** Longest protocol line either side accepts (a result may carry up to Convex's 16 MiB return value, as JSON). */
export const MAX_LINE_CHARS = 64 * 1024 * 1024;

/** Encodes a runner → server line. */
export function encodeRunnerLine(nonce: string, message: FromNodeRunnerMessage): string {
  return `${nonce} ${JSON.stringify(message)}\n`;
}

/** Decodes a runner → server line; null when the line is not the runner's (user output). */
export function decodeRunnerLine(nonce: string, line: string): FromNodeRunnerMessage | null {
  if (!line.startsWith(nonce + " ")) return null;
  return JSON.parse(line.slice(nonce.length + 1)) as FromNodeRunnerMessage;
}

/** Calls `onLine` for every complete line of `stream` (UTF-8), then once more with a trailing partial line. */
export async function readLines(stream: ReadableStream<Uint8Array>, onLine: (line: string) => void): Promise<void> {
  const decoder = new TextDecoder();
  let pending = "";
  for await (const chunk of stream) {
    pending += decoder.decode(chunk, { stream: true });
    let newline = pending.indexOf("\n");
    while (newline !== -1) {
      onLine(pending.slice(0, newline));
      pending = pending.slice(newline + 1);
      newline = pending.indexOf("\n");
    }
    if (pending.length > MAX_LINE_CHARS) throw new Error(`Protocol line longer than ${MAX_LINE_CHARS} characters`);
  }
  if (pending.length > 0) onLine(pending);
}
