/**
 * Entry of a runner process (`denvex runner`): connects to the Unix socket the server named (runner_socket.ts) and
 * speaks the framed protocol there until the server closes it. Console output of the runner's own code goes to stderr;
 * the server drops whatever reaches the runner's stdout.
 */
import { FrameWriter, pumpFrames } from "./framing.ts";
import { connectToServer } from "./runner_socket.ts";
import { Runner } from "./runner.ts";
import { EXIT_PROTOCOL_ERROR, type FromRunnerMessage, type ToRunnerMessage } from "./runner_protocol.ts";
import type { TransactionSyscalls } from "../database/mod.ts";

/** Messages accepted between `init` and the end of start-up (the server sends none before `ready`). */
const MAX_EARLY_MESSAGES = 64;

/**
 * Runs the runner mode of the server's executable. Never returns: the process exits when the server goes away.
 * `syscalls`: the transaction syscalls of the layers above the runtime (the scheduler's, storage's), from the wiring.
 */
export async function runnerMain(syscalls: TransactionSyscalls = {}): Promise<never> {
  // Anything printed to stdout would corrupt the frames.
  console.log = console.error;
  console.info = console.error;
  console.debug = console.error;
  console.warn = console.error;
  const fail = (error: unknown): never => {
    // The server went away (killed, or exited): nothing left to answer, and nothing worth a stack trace.
    if (error instanceof Deno.errors.BrokenPipe || error instanceof Deno.errors.ConnectionReset) Deno.exit(0);
    console.error(`denvex runner: ${error instanceof Error ? error.stack : String(error)}`);
    Deno.exit(EXIT_PROTOCOL_ERROR);
  };
  // Raw reads and writes of the socket: no stream machinery on the path of every call.
  const connection = await connectToServer(Deno.args).catch(fail);
  const writer = new FrameWriter(connection);
  let runner: Runner | null = null;
  let initialized = false;
  const early: ToRunnerMessage[] = [];
  const start = async (init: ToRunnerMessage) => {
    if (init.type !== "init") throw new Error("the first message is not init");
    const started = new Runner(init, (message: FromRunnerMessage) => writer.send(message), syscalls);
    await started.start();
    await writer.send({ type: "ready" } satisfies FromRunnerMessage);
    runner = started;
    for (const message of early.splice(0)) started.handle(message);
  };
  try {
    await pumpFrames(connection, (raw) => {
      const message = raw as ToRunnerMessage;
      if (runner !== null) return runner.handle(message);
      if (!initialized) {
        initialized = true;
        start(message).catch(fail);
        return;
      }
      if (early.length >= MAX_EARLY_MESSAGES) throw new Error("too many messages before the runner is ready");
      early.push(message);
    });
  } catch (error) {
    fail(error);
  }
  // The socket closed: the server is gone or closed the pool.
  Deno.exit(0);
}
