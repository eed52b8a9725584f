/**
 * Test helper: a throwaway MariaDB server of its own (mariadb-install-db in a temp dir, its own port, loopback only,
 * no grant tables so root needs no password), for tests that stop and start the database. The shared server on
 * 3306 is never touched. InnoDB keeps its default durability (`innodb_flush_log_at_trx_commit=1`).
 */
import { join } from "node:path";

/** A running throwaway server. */
export interface MysqlServer {
  /** `mysql://root@127.0.0.1:<port>/denvex`. */
  url: string;
  port: number;
  /** Stops the server: `fast` is a clean shutdown (SIGTERM), `immediate` a crash (SIGKILL). */
  stop(mode?: "fast" | "immediate"): Promise<void>;
  /** Starts it again on the same port and waits until it accepts connections. */
  start(): Promise<void>;
  /** Stops it (if running) and deletes its files. */
  destroy(): Promise<void>;
}

const MARIADBD = "/usr/sbin/mariadbd";
const START_TIMEOUT_MS = 30_000;
const DATABASE = "denvex";

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close();
  return port;
}

async function run(command: string, args: string[]): Promise<void> {
  const output = await new Deno.Command(command, { args, stdout: "piped", stderr: "piped", cwd: "/tmp" }).output();
  if (!output.success) {
    const decoder = new TextDecoder();
    throw new Error(`${command} ${args.join(" ")}:\n${decoder.decode(output.stdout)}${decoder.decode(output.stderr)}`);
  }
}

async function accepts(port: number): Promise<boolean> {
  try {
    const connection = await Deno.connect({ hostname: "127.0.0.1", port });
    connection.close();
    return true;
  } catch {
    return false;
  }
}

/** Creates and starts a server with an empty database `denvex`. */
export async function startMysqlServer(): Promise<MysqlServer> {
  const dir = await Deno.makeTempDir({ prefix: "denvex-mariadb-" });
  const dataDir = join(dir, "data");
  const port = freePort();
  const user = Deno.uid() === 0 ? ["--user=root"] : [];
  await run("mariadb-install-db", [
    "--no-defaults",
    `--datadir=${dataDir}`,
    ...user,
    "--auth-root-authentication-method=normal",
    "--skip-test-db",
  ]);
  await Deno.mkdir(join(dataDir, DATABASE));
  let child: Deno.ChildProcess | null = null;
  const server: MysqlServer = {
    url: `mysql://root@127.0.0.1:${port}/${DATABASE}`,
    port,
    async stop(mode = "fast") {
      if (child === null) return;
      child.kill(mode === "fast" ? "SIGTERM" : "SIGKILL");
      await child.status;
      child = null;
    },
    async start() {
      child = new Deno.Command(MARIADBD, {
        args: [
          "--no-defaults",
          `--datadir=${dataDir}`,
          `--port=${port}`,
          "--bind-address=127.0.0.1",
          `--socket=${join(dir, "sock")}`,
          `--pid-file=${join(dir, "pid")}`,
          `--log-error=${join(dir, "error.log")}`,
          "--skip-grant-tables",
          "--innodb-buffer-pool-size=32M",
          ...user,
        ],
        stdout: "null",
        stderr: "null",
      }).spawn();
      const deadline = Date.now() + START_TIMEOUT_MS;
      while (!await accepts(port)) {
        if (Date.now() > deadline) throw new Error(`MariaDB did not start on port ${port}; see ${dir}/error.log`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    },
    async destroy() {
      await server.stop("immediate").catch(() => {});
      await Deno.remove(dir, { recursive: true });
    },
  };
  await server.start();
  return server;
}
