/**
 * The server side of an HTTP action's body streams: turns a runner's pull, head and chunk messages into calls on the
 * execution's `HttpExchange`, and answers pulls and chunks (the acknowledgement that bounds the response window).
 *
 * Private to `src/runtime`: other folders use its `mod.ts`.
 */
import type {
  HttpBodyChunkMessage,
  HttpBodyPullMessage,
  HttpExchange,
  HttpResponseAckMessage,
  HttpResponseChunkMessage,
  HttpResponseHeadMessage,
} from "./http_action_protocol.ts";

/** Handles one HTTP stream message of a runner; `reply` sends the answer back to it. */
export function relayHttpMessage(
  http: HttpExchange,
  message: HttpBodyPullMessage | HttpResponseHeadMessage | HttpResponseChunkMessage,
  reply: (message: HttpBodyChunkMessage | HttpResponseAckMessage) => void,
): void {
  const { executionId } = message;
  switch (message.type) {
    case "httpBodyPull":
      http.pullBody().then(
        (data) => reply({ type: "httpBodyChunk", executionId, dataBase64: data === null ? null : data.toBase64() }),
        (error) =>
          reply({ type: "httpBodyChunk", executionId, dataBase64: null, error: String(error?.message ?? error) }),
      );
      return;
    case "httpResponseHead":
      http.onHead({ status: message.status, statusText: message.statusText, headers: message.headers });
      return;
    case "httpResponseChunk":
      http.onChunk(Uint8Array.fromBase64(message.dataBase64)).then(
        () => reply({ type: "httpResponseAck", executionId }),
        () => reply({ type: "httpResponseAck", executionId }),
      );
      return;
  }
}
