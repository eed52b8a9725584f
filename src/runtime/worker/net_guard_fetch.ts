/**
 * `fetch` for actions under the network policy: the target, every redirect hop and the client's proxy are checked
 * before a request leaves (Deno's `--deny-net` also checks each hop's resolved address; this adds the IPv6 ranges the
 * flag cannot express). Redirects are therefore followed here, by the Fetch standard's rules, not inside fetch.
 */
import type { HostChecker } from "../net_policy/checker.ts";

/** The Fetch standard's redirect limit. */
const MAX_REDIRECTS = 20;
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);
/** Request headers dropped when a redirect turns the request into a body-less GET. */
const BODY_HEADERS = ["content-type", "content-length", "content-encoding", "content-language", "content-location"];
const DEFAULT_PORTS: Record<string, number> = { "http:": 80, "https:": 443, "ws:": 80, "wss:": 443 };

/** `fetch`'s `init` with Deno's `client` option. */
type DenoRequestInit = RequestInit & { client?: Deno.HttpClient };

/** Checks the host of a network URL (http, https, ws, wss); other schemes (data:, blob:) open no connection. */
export async function checkUrl(checker: HostChecker, url: URL): Promise<void> {
  const port = url.port === "" ? DEFAULT_PORTS[url.protocol] : Number(url.port);
  if (port === undefined) return;
  await checker.check(url.hostname, port);
}

/** Same as {@link checkUrl} for IP literals only; returns false when the host is a name (check it asynchronously). */
export function checkUrlLiteral(checker: HostChecker, url: URL): boolean {
  const port = url.port === "" ? DEFAULT_PORTS[url.protocol] : Number(url.port);
  if (port === undefined) return true;
  return checker.checkLiteral(url.hostname, port);
}

/** Builds the guarded fetch over `realFetch`; `proxyOf` gives the proxy URL of a `Deno.HttpClient`, if any. */
export function guardedFetch(
  checker: HostChecker,
  realFetch: typeof fetch,
  proxyOf: (client: Deno.HttpClient) => URL | undefined,
): typeof fetch {
  return async function fetch(input: RequestInfo | URL, init?: DenoRequestInit): Promise<Response> {
    let request = new Request(input, init);
    const client = init?.client;
    const proxy = client === undefined ? undefined : proxyOf(client);
    if (proxy !== undefined) await checkUrl(checker, proxy);
    await checkUrl(checker, new URL(request.url));
    if (request.redirect !== "follow") return await realFetch(request, withClient({}, client));
    // A body given as a stream (or inside a Request) cannot be sent twice; others can be rebuilt for 307/308.
    const hadBody = request.body !== null;
    const replayableBody = init?.body instanceof ReadableStream ? null : init?.body ?? null;
    for (let hops = 0;; hops++) {
      const response = await realFetch(request, withClient({ redirect: "manual" }, client));
      const location = response.headers.get("location");
      if (!REDIRECT_STATUSES.has(response.status) || location === null) {
        if (hops > 0) Object.defineProperty(response, "redirected", { value: true });
        return response;
      }
      await response.body?.cancel();
      if (hops + 1 > MAX_REDIRECTS) throw new TypeError(`fetch failed: more than ${MAX_REDIRECTS} redirects`);
      const target = new URL(location, request.url);
      await checkUrl(checker, target);
      request = redirectedRequest(request, response.status, target, replayableBody, hadBody);
    }
  };
}

function withClient(init: RequestInit, client: Deno.HttpClient | undefined): DenoRequestInit {
  return client === undefined ? init : { ...init, client };
}

/** The next request of a redirect chain (Fetch standard, "HTTP-redirect fetch"). */
function redirectedRequest(
  previous: Request,
  status: number,
  target: URL,
  replayableBody: BodyInit | null,
  hadBody: boolean,
): Request {
  const headers = new Headers(previous.headers);
  if (target.origin !== new URL(previous.url).origin) headers.delete("authorization");
  const toGet = status === 303 ? previous.method !== "HEAD" : (status === 301 || status === 302) &&
    previous.method === "POST";
  const init: RequestInit = { method: previous.method, headers, signal: previous.signal, redirect: "follow" };
  if (toGet) {
    init.method = "GET";
    for (const name of BODY_HEADERS) headers.delete(name);
  } else if (hadBody) {
    if (replayableBody === null) throw new TypeError("fetch failed: cannot follow a redirect with a streamed body");
    init.body = replayableBody;
  }
  return new Request(target, init);
}
