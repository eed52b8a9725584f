/**
 * Test helper: a throwaway PostgreSQL cluster of its own (initdb in a temp dir, its own port, loopback only), for
 * tests that stop and start the database. The shared cluster on 5432 is never touched. PostgreSQL refuses to run as
 * root, so the cluster belongs to the `postgres` OS user when the test runs as root.
 */
import { join } from "node:path";

/** A running throwaway cluster. */
export interface PgCluster {
  /** `postgres://postgres@127.0.0.1:<port>/postgres` (trust authentication). */
  url: string;
  port: number;
  /** Stops the server (`fast`: connections are terminated, as in a normal restart). */
  stop(mode?: "fast" | "immediate"): Promise<void>;
  /** Starts it again on the same port and waits until it accepts connections. */
  start(): Promise<void>;
  /** Stops it (if running) and deletes its files. */
  destroy(): Promise<void>;
}

/** The folder of PostgreSQL's server binaries (`/usr/lib/postgresql/<version>/bin`), newest version first. */
async function binDir(): Promise<string> {
  const versions: string[] = [];
  for await (const entry of Deno.readDir("/usr/lib/postgresql")) versions.push(entry.name);
  versions.sort((a, b) => Number(b) - Number(a));
  for (const version of versions) {
    const dir = `/usr/lib/postgresql/${version}/bin`;
    if (await Deno.stat(join(dir, "initdb")).then(() => true, () => false)) return dir;
  }
  throw new Error("no PostgreSQL server binaries under /usr/lib/postgresql (apt-get install postgresql)");
}

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = listener.addr.port;
  listener.close();
  return port;
}

/** Runs a PostgreSQL binary as the `postgres` user when we are root; throws with its output on failure. */
async function runAsPostgres(command: string, args: string[]): Promise<void> {
  const asRoot = Deno.uid() === 0;
  const output = await new Deno.Command(asRoot ? "runuser" : command, {
    args: asRoot ? ["-u", "postgres", "--", command, ...args] : args,
    stdout: "piped",
    stderr: "piped",
    cwd: "/tmp",
  }).output();
  if (!output.success) {
    const decoder = new TextDecoder();
    throw new Error(`${command} ${args.join(" ")}:\n${decoder.decode(output.stdout)}${decoder.decode(output.stderr)}`);
  }
}

/** Creates and starts a cluster (fsync off: it is for fault tests, not for durability across OS crashes). */
export async function startPgCluster(): Promise<PgCluster> {
  const bin = await binDir();
  const dir = await Deno.makeTempDir({ prefix: "denvex-pg-" });
  if (Deno.uid() === 0) await Deno.chown(dir, uidOf("postgres"), null);
  const dataDir = join(dir, "data");
  const port = freePort();
  await runAsPostgres(join(bin, "initdb"), ["-D", dataDir, "-A", "trust", "-U", "postgres", "--no-sync"]);
  const options = `-p ${port} -k ${dir} -c listen_addresses=127.0.0.1 -c fsync=off -c full_page_writes=off`;
  const pgCtl = join(bin, "pg_ctl");
  let running = false;
  const cluster: PgCluster = {
    url: `postgres://postgres@127.0.0.1:${port}/postgres`,
    port,
    async stop(mode = "fast") {
      await runAsPostgres(pgCtl, ["-D", dataDir, "-m", mode, "-w", "stop"]);
      running = false;
    },
    async start() {
      await runAsPostgres(pgCtl, ["-D", dataDir, "-o", options, "-l", join(dir, "log"), "-w", "start"]);
      running = true;
    },
    async destroy() {
      if (running) await cluster.stop("immediate").catch(() => {});
      await Deno.remove(dir, { recursive: true });
    },
  };
  await cluster.start();
  return cluster;
}

/** The uid of an OS user, from /etc/passwd. */
function uidOf(user: string): number {
  const line = Deno.readTextFileSync("/etc/passwd").split("\n").find((row) => row.startsWith(`${user}:`));
  if (!line) throw new Error(`no OS user ${user}`);
  return Number(line.split(":")[2]);
}
