/**
 * Request bodies that end badly. When a client sends fewer bytes than its `Content-Length` (or a broken chunked
 * body) and stops, reading the body fails with Deno's `BadResource`, which would otherwise surface as a 500. The
 * failure is the client's: {@link clientBody} turns it into a 400 `BadRequestBody` wherever a body is streamed.
 *
 * Private to `src/http`: other folders use its `mod.ts`.
 */
import { HttpError } from "./errors.ts";

/** The 400 for a body that could not be read to its end. */
export function badRequestBody(): HttpError {
  return new HttpError(400, "BadRequestBody", "The request body ended early or could not be read");
}

/**
 * `body`, except that a failure to read it becomes {@link badRequestBody}. Errors the consumer raises itself (a size
 * limit, a full disk) are untouched, since they do not come from reading.
 */
export function clientBody(body: ReadableStream<Uint8Array>): ReadableStream<Uint8Array> {
  const reader = body.getReader();
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      let result: ReadableStreamReadResult<Uint8Array>;
      try {
        result = await reader.read();
      } catch {
        controller.error(badRequestBody());
        return;
      }
      if (result.done) controller.close();
      else controller.enqueue(result.value);
    },
    cancel(reason) {
      return reader.cancel(reason);
    },
  });
}
