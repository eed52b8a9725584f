/**
 * Secrets never reach the process list or the log: the server refuses an admin key or a database password on its
 * command line (where `ps` and `deno task`'s echo show them) and takes them from the environment or a file instead;
 * with them supplied that way, neither the server's nor any runner's command line, nor anything the server prints,
 * contains them.
 */
import { assert, assertEquals, assertOneLine } from "./helpers/assert.ts";
import { freshPostgres } from "./helpers/databases.ts";
import { commandLineOf, descendantPids, environmentOf, serverLines, spawnServerChild } from "./helpers/server_child.ts";

const ADMIN_SECRET = `denvex|${"5e".repeat(32)}`;
const DB_PASSWORD = "pw-never-shown-7f3a";

/** The server's one line of output (lines of Deno's own aside). */
function oneServerLine(text: string): string {
  return assertOneLine(serverLines(text).join("\n"));
}

Deno.test("secrets: --admin-key KEY on the command line is refused (exit 2) without echoing the key", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "denvex-secrets-" });
  try {
    const server = await spawnServerChild(dataDir, [`--admin-key=${ADMIN_SECRET}`]);
    assertEquals(await server.exited(), 2, server.output());
    const line = oneServerLine(server.output());
    assert(line.includes("DENVEX_ADMIN_KEY") && line.includes("--admin-key-file"), line);
    assert(!line.includes("5e5e5e"), `the error repeats the key: ${line}`);
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("secrets: a password inside --db is refused (exit 2) without echoing it", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "denvex-secrets-" });
  try {
    const server = await spawnServerChild(dataDir, [`--db=postgres://postgres:${DB_PASSWORD}@127.0.0.1:5432/test`]);
    assertEquals(await server.exited(), 2, server.output());
    const line = oneServerLine(server.output());
    assert(line.includes("PGPASSWORD") && line.includes("DENVEX_DB_URL"), line);
    assert(!line.includes(DB_PASSWORD), `the error repeats the password: ${line}`);
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("secrets: a bad --admin-key-file is a one-line usage error naming the file, not its content", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "denvex-secrets-" });
  try {
    const keyFile = `${dataDir}/key`;
    await Deno.writeTextFile(keyFile, "not a key but secret-ish text\n");
    const server = await spawnServerChild(dataDir, [`--admin-key-file=${keyFile}`]);
    assertEquals(await server.exited(), 2, server.output());
    const line = oneServerLine(server.output());
    assert(line.includes(keyFile) && !line.includes("secret-ish"), line);
    const outside = await spawnServerChild(dataDir, ["--admin-key-file=/etc/hostname"]);
    assertEquals(await outside.exited(), 2, outside.output());
    assert(oneServerLine(outside.output()).includes("--allow-read"), outside.output());
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test({
  name: "secrets: admin key and database password from env never appear in ps (server or runners) or the log",
  async fn() {
    const dataDir = await Deno.makeTempDir({ prefix: "denvex-secrets-" });
    const pg = await freshPostgres();
    // Trust authentication accepts any password, so the URL can carry one the test can look for.
    assert(pg.kind === "postgres");
    const dbUrl = new URL(pg.url);
    dbUrl.password = DB_PASSWORD;
    const server = await spawnServerChild(dataDir, [], {
      DENVEX_ADMIN_KEY: ADMIN_SECRET,
      DENVEX_DB_URL: dbUrl.href,
    });
    try {
      const apiUrl = await server.ready();
      assertEquals((await (await fetch(`${apiUrl}/version`)).text()).startsWith("denvex"), true);
      const pids = [server.pid, ...await descendantPids(server.pid)];
      assert(pids.length >= 2, "runner processes should be running");
      let runnersChecked = 0;
      for (const pid of pids) {
        const commandLine = await commandLineOf(pid); // "" for a child that exited since the listing
        assert(!commandLine.includes("5e5e5e"), `the admin key is on the command line of ${pid}: ${commandLine}`);
        assert(!commandLine.includes(DB_PASSWORD), `the password is on the command line of ${pid}: ${commandLine}`);
        if (pid === server.pid) continue;
        // A runner needs none of the server's secrets in its environment (its database URL comes in its init
        // message), so even code that escaped its worker's permissions would find none there.
        // A child may exit between the listing and the read (a runner retiring, a short-lived helper): skipped.
        const environment = await environmentOf(pid);
        if (environment === null) continue;
        assert(!environment.includes("5e5e5e"), `the admin key is in the environment of runner ${pid}`);
        assert(!environment.includes(DB_PASSWORD), `the database URL is in the environment of runner ${pid}`);
        runnersChecked++;
      }
      assert(runnersChecked >= 1, "at least one runner's environment was read");
      assert(server.output().includes("admin key:    from DENVEX_ADMIN_KEY"), server.output());
    } finally {
      assertEquals(await server.stop(), 0, server.output());
      await Deno.remove(dataDir, { recursive: true });
      await pg.cleanup();
    }
    const log = server.output();
    assert(!log.includes("5e5e5e"), `the admin key reached the log:\n${log}`);
    assert(!log.includes(DB_PASSWORD), `the database password reached the log:\n${log}`);
    assert(log.includes("PostgreSQL"), log);
  },
});
