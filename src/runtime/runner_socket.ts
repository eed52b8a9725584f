/**
 * The channel between the server and one runner process: a Unix socket the server listens on for exactly that runner.
 *
 * Not the runner's stdin/stdout: a permission-less worker may still write to its process's standard streams
 * (`Deno.stdout`, `node:fs` on fd 1), so over stdout user code could write whole frames — a forged result, a forged
 * mutation outcome — that the server would take as the runner's own. Connecting to a Unix socket needs net, read and
 * write permission on its path, which only the runner's main thread has; the socket's name is random, its listener
 * accepts one connection and is removed at once, and its folder is private to the server's user.
 *
 * Private to `src/runtime`: other folders use its `mod.ts`.
 */
import { isAbsolute, join, resolve } from "node:path";

/** Prefix of the runner's argument naming its socket (the runner's other arguments ignore it). */
export const RUNNER_SOCKET_ARG_PREFIX = "--runner-socket=";
/** Linux's `sun_path` holds 108 bytes, the terminating NUL included. */
const MAX_SOCKET_PATH_BYTES = 107;
/**
 * A socket's file name: 12 random hex digits and `.sock`. Short, so that data directories of up to 81 bytes fit in
 * `sun_path`; the name only keeps other processes of the server's user from guessing it (nothing inside a runner may
 * connect to any socket), and a listener lives only until its runner connects, milliseconds.
 */
const SOCKET_NAME_HEX_DIGITS = 12;
const SOCKET_NAME_BYTES = SOCKET_NAME_HEX_DIGITS + ".sock".length;

/** The folder of the runners' sockets under `dataDir`, created private to the server's user. */
export function prepareRunnerSocketDir(dataDir: string): string {
  const dir = isAbsolute(dataDir) ? join(dataDir, "runners") : resolve(dataDir, "runners");
  const bytes = new TextEncoder().encode(dir).length;
  if (bytes + 1 + SOCKET_NAME_BYTES > MAX_SOCKET_PATH_BYTES) {
    throw new Error(
      `The data directory's path is too long for the runners' Unix sockets (${dir} is ${bytes} bytes; at most ` +
        `${MAX_SOCKET_PATH_BYTES - 1 - SOCKET_NAME_BYTES}): choose a shorter --data path`,
    );
  }
  Deno.mkdirSync(dir, { recursive: true, mode: 0o700 });
  // mkdir leaves an existing folder's mode alone, and the umask may have widened a new one.
  Deno.chmodSync(dir, 0o700);
  // Sockets a killed server left behind (one server per data directory, data_dir_lock: none is in use).
  for (const entry of Deno.readDirSync(dir)) {
    if (entry.name.endsWith(".sock")) removeIfPresent(join(dir, entry.name));
  }
  return dir;
}

/** A listener waiting for one runner's connection. */
export interface RunnerSocketListener {
  /** The socket's path, for the runner's argument. */
  readonly path: string;
  /** Resolves with the first connection (the listener is then closed and its file removed); rejects once closed. */
  readonly connection: Promise<Deno.UnixConn>;
  /** Stops waiting (the runner died before connecting); the file is removed. */
  close(): void;
}

/** Listens at a new random path in `dir` for one runner. */
export function listenForRunner(dir: string): RunnerSocketListener {
  const name = crypto.getRandomValues(new Uint8Array(SOCKET_NAME_HEX_DIGITS / 2)).toHex();
  const path = join(dir, `${name}.sock`);
  removeIfPresent(path);
  const listener = Deno.listen({ transport: "unix", path });
  let open = true;
  const close = () => {
    if (!open) return;
    open = false;
    listener.close();
    removeIfPresent(path);
  };
  const connection = listener.accept().finally(close);
  connection.catch(() => {}); // observed by whoever awaits it
  return { path, connection, close };
}

/** The runner's side: connects to the socket named in `args`. */
export async function connectToServer(args: readonly string[]): Promise<Deno.UnixConn> {
  const arg = args.find((candidate) => candidate.startsWith(RUNNER_SOCKET_ARG_PREFIX));
  if (arg === undefined) throw new Error(`A runner needs ${RUNNER_SOCKET_ARG_PREFIX}<path>`);
  return await Deno.connect({ transport: "unix", path: arg.slice(RUNNER_SOCKET_ARG_PREFIX.length) });
}

function removeIfPresent(path: string): void {
  try {
    Deno.removeSync(path);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
}
