/**
 * A runner started while the database is down opens its reader then: the failure must be the retryable
 * "unavailable" error clients are allowed to see, never the driver's text naming the database's address (found by
 * tests/faults_test.ts once runners started on demand).
 */
import { assert, assertRejects } from "./helpers/assert.ts";
import { DatabaseUnavailableError, openMysqlReader, openPostgresReader } from "../src/persistence/mod.ts";

/** A loopback port nothing listens on (bound, then released). */
function closedPort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

for (
  const [name, open] of [
    ["PostgreSQL", (port: number) => openPostgresReader(`postgres://postgres@127.0.0.1:${port}/test`)],
    ["MySQL", (port: number) => openMysqlReader(`mysql://root@127.0.0.1:${port}/test`)],
  ] as const
) {
  Deno.test(`${name} reader on a database that is down: DatabaseUnavailableError without the address`, async () => {
    const port = closedPort();
    const error = await assertRejects(() => open(port), DatabaseUnavailableError);
    assert(!error.message.includes(String(port)), error.message);
  });
}
