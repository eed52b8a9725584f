/**
 * MySQL / MariaDB specifics that the shared suites do not cover: `--db mysql://` parsing (no password on the command
 * line, the default port spelled out), error text that never carries the password, and durability across a crash of
 * the database itself (SIGKILL of a throwaway MariaDB during a commit load: every acknowledged commit is there after
 * the restart, and the writer recovers by itself).
 */
import { assert, assertEquals, assertRejects } from "./helpers/assert.ts";
import { startMysqlServer } from "./helpers/mysql_server.ts";
import { MYSQL_URL } from "./helpers/databases.ts";
import { parseCommandLine, UsageError } from "../src/server/config.ts";
import { describeLocation } from "../src/server/storage.ts";
import { DatabaseUnavailableError, openMysqlPersistence } from "../src/persistence/mod.ts";

const noEnv = () => undefined;

function databaseOf(args: string[], env: Record<string, string> = {}) {
  const command = parseCommandLine(["serve", ...args], (name) => env[name]) as { config: { database: unknown } };
  return command.config.database;
}

Deno.test("mysql config: --db mysql:// is a MySQL database, with the default port spelled out", () => {
  assertEquals(databaseOf(["--db=mysql://app@db.internal:3307/denvex"]), {
    kind: "mysql",
    url: "mysql://app@db.internal:3307/denvex",
  });
  assertEquals(databaseOf(["--db=mysql://app@db.internal/denvex"]), {
    kind: "mysql",
    url: "mysql://app@db.internal:3306/denvex",
  });
  assertEquals(databaseOf([], { DENVEX_DB_URL: "mysql://app:pw@db.internal:3306/denvex" }), {
    kind: "mysql",
    url: "mysql://app:pw@db.internal:3306/denvex",
  });
});

Deno.test("mysql config: a password in --db is refused without being repeated; bad URLs are usage errors", () => {
  let message = "";
  try {
    databaseOf(["--db=mysql://app:secret-pw-9@db.internal:3306/denvex"]);
  } catch (error) {
    assert(error instanceof UsageError, String(error));
    message = error.message;
  }
  assert(message.includes("MYSQL_PWD") && message.includes("DENVEX_DB_URL"), message);
  assert(!message.includes("secret-pw-9"), message);
  for (const bad of ["mysql://db.internal", "mysql:///denvex", "mysql://db.internal/a/b"]) {
    let thrown: unknown = null;
    try {
      parseCommandLine(["serve", `--db=${bad}`], noEnv);
    } catch (error) {
      thrown = error;
    }
    assert(thrown instanceof UsageError, `${bad}: ${thrown}`);
  }
});

Deno.test("mysql: the log's description of the location hides the password", () => {
  const text = describeLocation({ kind: "mysql", url: "mysql://app:secret-pw-9@db.internal:3306/denvex" });
  assertEquals(text, "MySQL mysql://app:***@db.internal:3306/denvex");
});

Deno.test("mysql: an unreachable server is DatabaseUnavailable, and a refused login never shows the password", async () => {
  const closed = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = closed.addr.port;
  closed.close();
  await assertRejects(
    () => openMysqlPersistence(`mysql://root@127.0.0.1:${port}/denvex`),
    DatabaseUnavailableError,
  );
  const url = new URL(MYSQL_URL);
  url.username = "denvex_no_such_user";
  url.password = "secret-pw-9";
  const error = await openMysqlPersistence(url.href).then(() => null, (error) => error);
  assert(error !== null, "login with an unknown user should fail");
  const text = `${error} ${error?.stack ?? ""} ${JSON.stringify(error)}`;
  assert(!text.includes("secret-pw-9"), text);
});

const WRITERS = 4;
const LOAD_BEFORE_CRASH_MS = 600;
const RECOVERY_DEADLINE_MS = 20_000;

Deno.test({
  name: "mysql: SIGKILL of the database under commit load loses no acknowledged commit, and commits resume",
  async fn() {
    const server = await startMysqlServer();
    try {
      const persistence = await openMysqlPersistence(server.url);
      try {
        const acknowledged: bigint[] = [];
        let nextTs = (await persistence.maxTs()) + 1n;
        let running = true;
        const writer = async () => {
          while (running) {
            const ts = nextTs++;
            const id = `doc${ts}`;
            try {
              await persistence.commit([{
                ts,
                documents: [{ id, tableNumber: 1, ts, json: JSON.stringify({ ts: String(ts) }), prevTs: null }],
                indexEntries: [{ indexId: 1, key: new TextEncoder().encode(id), documentId: id, deleted: false }],
              }]);
              acknowledged.push(ts);
            } catch (error) {
              // Only "unavailable" is expected while the database is down; its commit was not acknowledged.
              if (!(error instanceof DatabaseUnavailableError)) throw error;
              await new Promise((resolve) => setTimeout(resolve, 20));
            }
          }
        };
        const writers = Array.from({ length: WRITERS }, writer);
        await new Promise((resolve) => setTimeout(resolve, LOAD_BEFORE_CRASH_MS));
        await server.stop("immediate");
        const acknowledgedBeforeRestart = acknowledged.length;
        await server.start();
        const deadline = Date.now() + RECOVERY_DEADLINE_MS;
        while (acknowledged.length <= acknowledgedBeforeRestart + 10 && Date.now() < deadline) {
          await new Promise((resolve) => setTimeout(resolve, 50));
        }
        running = false;
        await Promise.all(writers);
        assert(acknowledgedBeforeRestart > 0, "some commits should have been acknowledged before the crash");
        assert(acknowledged.length > acknowledgedBeforeRestart + 10, "commits did not resume after the restart");
        const maxTs = await persistence.maxTs();
        for (const ts of acknowledged) {
          const document = await persistence.getDocument(`doc${ts}`, maxTs);
          assert(document !== null && document.ts === ts, `acknowledged commit at ts ${ts} is missing`);
        }
      } finally {
        await persistence.close();
      }
    } finally {
      await server.destroy();
    }
  },
});

Deno.test("mysql: action runners are denied the MySQL database even when its host is allowed", async () => {
  const { actionNetPolicy } = await import("../src/runtime/runner_command.ts");
  const policy = await actionNetPolicy({ kind: "mysql", url: "mysql://root@127.0.0.1/test" }, {
    allowHosts: ["127.0.0.1"],
    serverPorts: [],
  });
  assert(policy.denyNet.includes("127.0.0.1:3306"), `deny list: ${policy.denyNet.join(" ")}`);
});
