/**
 * One server per data directory: a second server started on a directory in use exits with 1 and a clear message
 * (rather than serving data that diverges from the first), while the first keeps serving; a server killed with -9
 * leaves its lock file behind, and that stale file does not block a restart.
 */
import { assert, assertEquals } from "./helpers/assert.ts";
import { serverLines, spawnServerChild } from "./helpers/server_child.ts";

const ADMIN_KEY = `denvex-test|${"ab".repeat(16)}`;

Deno.test({
  name: "data dir lock: a second server on the same data directory exits 1; a crashed server's lock does not block",
  async fn() {
    const dataDir = await Deno.makeTempDir({ prefix: "denvex-lock-" });
    const env = { DENVEX_ADMIN_KEY: ADMIN_KEY };
    const first = await spawnServerChild(dataDir, [], env);
    try {
      const apiUrl = await first.ready();
      const second = await spawnServerChild(dataDir, [], env);
      // Without the lock the second server starts and serves: that is the failure this test guards against.
      const started = await Promise.race([
        second.exited().then(() => false),
        second.ready().then(() => true, () => false),
      ]);
      if (started) await second.stop("SIGKILL");
      assert(!started, `a second server started on the same data directory:\n${second.output()}`);
      assertEquals(await second.exited(), 1, second.output());
      const lines = serverLines(second.output());
      assertEquals(lines.length, 1, second.output());
      assert(lines[0].includes(dataDir) && lines[0].includes("in use"), lines[0]);
      assert(lines[0].includes(`pid ${first.pid}`), lines[0]);
      // The first server is untouched.
      assertEquals((await fetch(`${apiUrl}/version`)).status, 200);

      // kill -9: no cleanup at all; the lock file stays, its lock dies with the process.
      await first.stop("SIGKILL");
      const restarted = await spawnServerChild(dataDir, [], env);
      try {
        await restarted.ready();
      } finally {
        assertEquals(await restarted.stop(), 0, restarted.output());
      }
    } finally {
      await first.stop("SIGKILL");
      await Deno.remove(dataDir, { recursive: true });
    }
  },
});
