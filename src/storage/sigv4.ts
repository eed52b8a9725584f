/**
 * AWS Signature Version 4 for S3 requests (the `Authorization` header form), on WebCrypto HMAC-SHA256. The canonical
 * request follows S3's rules: the path is URI-encoded once (S3 does not double-encode), query parameters are sorted by
 * encoded name then value, and every header passed in is signed along with `host`, `x-amz-date` and
 * `x-amz-content-sha256`.
 */

/** An access key pair. */
export interface SigV4Credentials {
  accessKeyId: string;
  secretAccessKey: string;
}

/** One request to sign. */
export interface SigV4Request {
  method: string;
  /** The full URL; its `host` (with a non-default port) is signed as the `host` header, which fetch sends as is. */
  url: URL;
  /** Extra headers to sign and send (e.g. `range`, `content-type`); names in any case. */
  headers?: Record<string, string> | undefined;
  /** Hex SHA-256 of the body, or `UNSIGNED-PAYLOAD`. */
  payloadSha256Hex: string;
  region: string;
  /** `s3` unless told otherwise. */
  service?: string;
  /** The signing time (the current time unless a test fixes it). */
  now?: Date;
}

/** SHA-256 of the empty body, in hex. */
export const EMPTY_PAYLOAD_SHA256_HEX = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
/** The payload hash for a body that is not hashed into the signature. */
export const UNSIGNED_PAYLOAD = "UNSIGNED-PAYLOAD";

const ALGORITHM = "AWS4-HMAC-SHA256";
const encoder = new TextEncoder();

/**
 * Caches the derived signing key per (secret, date, region, service): it changes once a day, and deriving it costs
 * four HMACs.
 */
const signingKeys = new Map<string, Promise<CryptoKey>>();
const SIGNING_KEY_CACHE_LIMIT = 16;

/**
 * The headers that sign `request`: `authorization`, `x-amz-date`, `x-amz-content-sha256` and the extra headers given
 * (lowercased). `host` is signed but not returned: fetch derives the same value from the URL.
 */
export async function signRequest(
  request: SigV4Request,
  credentials: SigV4Credentials,
): Promise<Record<string, string>> {
  const service = request.service ?? "s3";
  const amzDate = amzDateOf(request.now ?? new Date());
  const date = amzDate.slice(0, 8);
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(request.headers ?? {})) headers[name.toLowerCase()] = value;
  headers["x-amz-date"] = amzDate;
  headers["x-amz-content-sha256"] = request.payloadSha256Hex;
  const signed: Record<string, string> = { ...headers, host: request.url.host };
  const names = Object.keys(signed).sort();
  const canonicalRequest = [
    request.method.toUpperCase(),
    canonicalPath(request.url.pathname),
    canonicalQuery(request.url.search),
    names.map((name) => `${name}:${canonicalHeaderValue(signed[name])}\n`).join(""),
    names.join(";"),
    request.payloadSha256Hex,
  ].join("\n");
  const scope = `${date}/${request.region}/${service}/aws4_request`;
  const stringToSign = [ALGORITHM, amzDate, scope, await sha256Hex(canonicalRequest)].join("\n");
  const key = await signingKey(credentials.secretAccessKey, date, request.region, service);
  const signature = toHex(await crypto.subtle.sign("HMAC", key, encoder.encode(stringToSign)));
  const credential = `${credentials.accessKeyId}/${scope}`;
  headers["authorization"] = `${ALGORITHM} Credential=${credential},SignedHeaders=${
    names.join(";")
  },Signature=${signature}`;
  return headers;
}

/** `YYYYMMDDTHHMMSSZ` in UTC. */
export function amzDateOf(time: Date): string {
  return time.toISOString().replace(/[-:]/g, "").replace(/\.\d{3}/, "");
}

/** RFC 3986 percent-encoding: everything but `A-Z a-z 0-9 - _ . ~` (and `/` when `keepSlash`). */
export function uriEncode(text: string, keepSlash = false): string {
  const encoded = encodeURIComponent(text).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return keepSlash ? encoded.replaceAll("%2F", "/") : encoded;
}

function canonicalPath(pathname: string): string {
  if (pathname === "") return "/";
  return pathname.split("/").map((segment) => uriEncode(decodeURIComponent(segment))).join("/");
}

function canonicalQuery(search: string): string {
  const query = search.startsWith("?") ? search.slice(1) : search;
  if (query === "") return "";
  const pairs = query.split("&").filter((part) => part !== "").map((part) => {
    const equals = part.indexOf("=");
    const name = equals === -1 ? part : part.slice(0, equals);
    const value = equals === -1 ? "" : part.slice(equals + 1);
    return [uriEncode(decodeURIComponent(name)), uriEncode(decodeURIComponent(value))];
  });
  pairs.sort(([a, x], [b, y]) => a < b ? -1 : a > b ? 1 : x < y ? -1 : x > y ? 1 : 0);
  return pairs.map(([name, value]) => `${name}=${value}`).join("&");
}

function canonicalHeaderValue(value: string): string {
  return value.trim().replace(/\s+/g, " ");
}

function signingKey(secret: string, date: string, region: string, service: string): Promise<CryptoKey> {
  const cacheKey = [secret, date, region, service].join("\n");
  let key = signingKeys.get(cacheKey);
  if (key === undefined) {
    key = (async () => {
      let raw: ArrayBuffer = encoder.encode(`AWS4${secret}`).buffer as ArrayBuffer;
      for (const part of [date, region, service, "aws4_request"]) raw = await hmac(raw, part);
      return await crypto.subtle.importKey("raw", raw, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
    })();
    if (signingKeys.size >= SIGNING_KEY_CACHE_LIMIT) signingKeys.clear();
    signingKeys.set(cacheKey, key);
    // A failed derivation is not cached.
    key.catch(() => signingKeys.delete(cacheKey));
  }
  return key;
}

async function hmac(key: ArrayBuffer, data: string): Promise<ArrayBuffer> {
  const imported = await crypto.subtle.importKey("raw", key, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  return await crypto.subtle.sign("HMAC", imported, encoder.encode(data));
}

async function sha256Hex(text: string): Promise<string> {
  return toHex(await crypto.subtle.digest("SHA-256", encoder.encode(text)));
}

function toHex(buffer: ArrayBuffer): string {
  return new Uint8Array(buffer).toHex();
}
