/**
 * Entry of a runner process (`denvex runner`): speaks the framed protocol on stdin/stdout until the server closes
 * stdin. stdout carries only frames, so console output of the runner's own code is sent to stderr.
 */
import { FrameWriter, readFrames } from "./framing.ts";
import { Runner } from "./runner.ts";
import { EXIT_PROTOCOL_ERROR, type FromRunnerMessage, type ToRunnerMessage } from "./runner_protocol.ts";

/** Runs the runner mode of the server's executable. Never returns: the process exits when the server goes away. */
export async function runnerMain(): Promise<never> {
  // Anything printed to stdout would corrupt the frames.
  console.log = console.error;
  console.info = console.error;
  console.debug = console.error;
  console.warn = console.error;
  const writer = new FrameWriter(Deno.stdout.writable);
  const frames = readFrames(Deno.stdin.readable);
  try {
    const first = await frames.next();
    const init = first.value as ToRunnerMessage | undefined;
    if (first.done || init?.type !== "init") throw new Error("the first message is not init");
    const runner = new Runner(init, (message: FromRunnerMessage) => writer.send(message));
    await runner.start();
    await writer.send({ type: "ready" } satisfies FromRunnerMessage);
    for await (const message of frames) runner.handle(message as ToRunnerMessage);
  } catch (error) {
    console.error(`denvex runner: ${error instanceof Error ? error.stack : String(error)}`);
    Deno.exit(EXIT_PROTOCOL_ERROR);
  }
  // stdin closed: the server is gone or closed the pool.
  Deno.exit(0);
}
