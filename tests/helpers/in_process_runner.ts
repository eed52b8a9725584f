/**
 * Test helper: a real transaction `Runner` (runner.ts, with its user-code worker and the app's SQLite file) driven in
 * this process, with every message it sends recorded, for tests of the server ⇄ runner protocol without a pool.
 */
import { APP_FILES, bundleApp, openDeployedApp, stopBundler, writeApp } from "./runtime_app.ts";
import { NO_REQUEST_METADATA } from "../../src/runtime/mod.ts";
import { modulesRoot } from "../../src/runtime/module_writer.ts";
import { Runner } from "../../src/runtime/runner.ts";
import type { Database } from "../../src/database/mod.ts";
import type { FromRunnerMessage, RunnerExecuteMessage } from "../../src/runtime/runner_protocol.ts";

/** A started in-process runner; see {@link withInProcessRunner}. */
export interface InProcessRunner {
  readonly runner: Runner;
  /** Every message the runner sent, in order. */
  readonly sent: FromRunnerMessage[];
  /** The deployment's database (commit a mutation's outcome with it). */
  readonly database: Database;
  /** An execute message for query `exportName` of `modulePath` with `args` at the latest snapshot. */
  query(executionId: string, modulePath: string, exportName: string, args: unknown): RunnerExecuteMessage;
  /** The same for a mutation. */
  mutation(executionId: string, modulePath: string, exportName: string, args: unknown): RunnerExecuteMessage;
  /** Waits until `done(sent)` holds, re-checking after each message the runner sends. */
  until(done: (sent: FromRunnerMessage[]) => boolean): Promise<void>;
}

/** Deploys `files` (besides the test app's), runs `body` with a started runner, then stops it and cleans up. */
export async function withInProcessRunner(
  files: Record<string, string>,
  body: (runner: InProcessRunner) => Promise<void>,
): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "denvex-in-process-runner-" });
  try {
    const modules = await bundleApp(await writeApp(dir, { ...APP_FILES, ...files }));
    await stopBundler();
    const { dataDir, persistence, database, deploymentDir } = await openDeployedApp(dir, modules);
    const executeMessage = (
      udfType: "query" | "mutation",
      executionId: string,
      modulePath: string,
      exportName: string,
      args: unknown,
    ): RunnerExecuteMessage => {
      const catalog = database.catalog;
      return {
        type: "execute",
        executionId,
        udfType,
        modulePath,
        exportName,
        argsJson: JSON.stringify([args]),
        snapshotTs: database.latestTs.toString(),
        catalog,
        catalogVersion: catalog.version,
        identityJson: null,
        journal: null,
        env: {},
        requestId: "test",
        deploymentDir,
        timeLimitMs: 1_000,
        metadata: { deploymentName: "test", request: NO_REQUEST_METADATA },
      };
    };
    const sent: FromRunnerMessage[] = [];
    let changed = Promise.withResolvers<void>();
    const runner = new Runner(
      {
        type: "init",
        kind: "transaction",
        location: persistence.location,
        modulesDir: modulesRoot(dataDir),
        allowNet: false,
      },
      (message: FromRunnerMessage) => {
        sent.push(message);
        changed.resolve();
        return Promise.resolve();
      },
    );
    await runner.start();
    try {
      await body({
        runner,
        sent,
        database,
        query: (executionId, modulePath, exportName, args) =>
          executeMessage("query", executionId, modulePath, exportName, args),
        mutation: (executionId, modulePath, exportName, args) =>
          executeMessage("mutation", executionId, modulePath, exportName, args),
        until: async (done) => {
          while (!done(sent)) {
            await changed.promise;
            changed = Promise.withResolvers<void>();
          }
        },
      });
    } finally {
      runner.stop();
      await persistence.close();
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Whether `message` says the runner is idle: `idle`, or an answer marked idle (RunnerResultMessage.idle). */
export function isIdle(message: FromRunnerMessage): boolean {
  return message.type === "idle" || (message.type === "result" && message.idle === true);
}
