/**
 * What a runner process writes to its standard error, passed on to the server's. The runner's own messages belong in
 * the server's log (a worker that failed to start, V8 out of memory), but user code can write there too: the standard
 * streams need no permission (`node:process`, `node:fs` on fd 2), and the worker's `Deno.stderr` is only hidden, not
 * all of them. So each line is cut to {@link RUNNER_OUTPUT_LINE_CHARS}, stripped of control characters, prefixed
 * with the runner it came from (no line can pass for the server's own), and a runner's output stops being passed on
 * after {@link RUNNER_OUTPUT_BUDGET_CHARS}: the rest is read and dropped, so the runner never blocks on a full pipe.
 * `readBoundedLines`, the line reader underneath, also reads node runners' stderr (node/runner.ts).
 *
 * Private to `src/runtime`: other folders use its `mod.ts`.
 */

/** Characters of one runner's output passed on over its life; a runner that writes more is cut off with a notice. */
export const RUNNER_OUTPUT_BUDGET_CHARS = 64 * 1024;
/** Characters kept of one line. */
export const RUNNER_OUTPUT_LINE_CHARS = 2_048;

/** C0 controls but tab, and DEL: a carriage return or an escape sequence could redraw a terminal's log line. */
// deno-lint-ignore no-control-regex -- matching control characters is the point
const CONTROL_CHARACTERS = /[\u0000-\u0008\u000a-\u001f\u007f]/g;

/**
 * Reads `stream` to its end and writes each of its lines, as `<label>: <line>`, with `write`, within the budgets of the
 * module comment. Never rejects.
 */
export async function forwardRunnerOutput(
  stream: ReadableStream<Uint8Array>,
  label: string,
  write: (line: string) => void,
  budgetChars = RUNNER_OUTPUT_BUDGET_CHARS,
): Promise<void> {
  let left = budgetChars;
  let dropping = false;
  await readBoundedLines(stream, RUNNER_OUTPUT_LINE_CHARS, (line, cut) => {
    if (dropping) return;
    const text = `${label}: ${line.replace(CONTROL_CHARACTERS, "?")}${cut ? " [line cut]" : ""}`;
    if (text.length > left) {
      dropping = true;
      write(`${label}: further output dropped (over ${budgetChars} characters)`);
      return;
    }
    left -= text.length;
    write(text);
  });
}

/**
 * Reads `stream` to its end and calls `onLine` with each of its lines (without the newline), cut to `maxLineChars`
 * (`cut` tells): however long a line, no more than that is held. Never rejects: a stream that breaks (its process
 * died) ends the lines, the last one included if it had started.
 */
export async function readBoundedLines(
  stream: ReadableStream<Uint8Array>,
  maxLineChars: number,
  onLine: (line: string, cut: boolean) => void,
): Promise<void> {
  const decoder = new TextDecoder();
  let line = "";
  let cut = false;
  const append = (text: string) => {
    const room = maxLineChars - line.length;
    if (text.length > room) cut = true;
    if (room > 0) line += text.slice(0, room);
  };
  const end = () => {
    const [ended, wasCut] = [line, cut];
    line = "";
    cut = false;
    onLine(ended, wasCut);
  };
  try {
    for await (const chunk of stream) {
      const text = decoder.decode(chunk, { stream: true });
      let start = 0;
      for (let newline = text.indexOf("\n"); newline !== -1; newline = text.indexOf("\n", start)) {
        append(text.slice(start, newline));
        end();
        start = newline + 1;
      }
      append(text.slice(start));
    }
    append(decoder.decode());
  } catch {
    // The pipe broke with the process: what came before was passed on.
  }
  if (line.length > 0 || cut) end();
}
