/// <reference lib="dom" />
/**
 * The dashboard's calls to its server (`/dashboard/api/*`). The session cookie rides along by itself (HttpOnly, so
 * this code never sees it); a 401 means the session ended, and the app goes back to the sign-in form.
 */

/** A refused call: the server's `{code, message}`. */
export class ApiError extends Error {
  constructor(readonly status: number, readonly code: string, message: string) {
    super(message);
  }
}

let onSignedOut: () => void = () => {};

/** Registers what happens when a call finds the session gone. */
export function whenSignedOut(callback: () => void): void {
  onSignedOut = callback;
}

/** GETs `path` (relative to /dashboard/api) with `query`. */
export function get<T>(path: string, query: Record<string, string | null | undefined> = {}, signal?: AbortSignal) {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(query)) if (value !== null && value !== undefined) params.set(name, value);
  const search = params.size > 0 ? `?${params}` : "";
  return request<T>("GET", path + search, undefined, signal);
}

/** POSTs `body` as JSON to `path` (relative to /dashboard/api). */
export function post<T>(path: string, body: unknown = {}) {
  return request<T>("POST", path, body);
}

async function request<T>(method: string, path: string, body: unknown, signal?: AbortSignal): Promise<T> {
  const init: RequestInit = { method, credentials: "same-origin", ...(signal ? { signal } : {}) };
  if (body !== undefined) {
    init.headers = { "Content-Type": "application/json" };
    init.body = JSON.stringify(body);
  }
  const response = await fetch(`/dashboard/api/${path}`, init);
  const text = await response.text();
  let parsed: unknown = null;
  try {
    parsed = text === "" ? null : JSON.parse(text);
  } catch {
    throw new ApiError(response.status, "BadResponse", `The server answered ${response.status}: ${text.slice(0, 200)}`);
  }
  if (!response.ok) {
    const error = (parsed ?? {}) as { code?: string; message?: string };
    if (response.status === 401 && path !== "login") onSignedOut();
    throw new ApiError(response.status, error.code ?? "Error", error.message ?? `HTTP ${response.status}`);
  }
  return parsed as T;
}

/** The message of anything thrown. */
export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
