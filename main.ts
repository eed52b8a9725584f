/**
 * denvex's entry point: parses the command line and hands over to the subsystem it names. Heavy modules are
 * imported per command so a runner process never loads the HTTP server, and the server never loads the runner.
 *
 * Exit codes: 0 success, 1 runtime failure, 2 bad flags or configuration (one line on stderr, nothing opened).
 */
import { VERSION_TEXT } from "./src/server/version.ts";
import { isCompiledBinary } from "./src/server/compiled.ts";

const EXIT_FAILURE = 1;
const EXIT_USAGE = 2;

async function main(args: readonly string[]): Promise<number> {
  // `deno task start`/`dev`: the launcher, before the command-line parser's module graph loads (it only reads the
  // flags that name paths, and starts the server). A compiled binary cannot start `deno run` with other grants: it
  // runs the command itself, with its own.
  if ((args[0] === "start" || args[0] === "dev") && !isCompiledBinary()) {
    const { launch } = await import("./src/server/launcher.ts");
    return await launch(args.slice(1), args[0] === "dev");
  }
  // Hidden: the dashboard's short-lived bundling process, started by the server (src/dashboard/build_child.ts).
  if (args[0] === "dashboard-build" && args.length === 1) {
    const { dashboardBuildMain } = await import("./src/dashboard/build_child.ts");
    return await dashboardBuildMain();
  }
  const { parseCommandLine, USAGE } = await import("./src/server/config.ts");
  const command = parseCommandLine(args, (name: string) => Deno.env.get(name));
  switch (command.kind) {
    case "help":
      console.log(USAGE);
      return 0;
    case "version":
      console.log(VERSION_TEXT);
      return 0;
    case "serve": {
      const { runServer } = await import("./src/server/mod.ts");
      if (command.config.logFormat === "text") return await runServer(command.config);
      // --log-format json: a failed start is one JSON line too (on stdout, with the rest of the log).
      try {
        return await runServer(command.config);
      } catch (error) {
        const { jsonLine } = await import("./src/server/log.ts");
        console.log(jsonLine("error", `${error instanceof Error ? error.message : String(error)}`, {}));
        return error instanceof Error && error.name === "UsageError" ? EXIT_USAGE : EXIT_FAILURE;
      }
    }
    case "admin-key": {
      const { printStoredAdminKey } = await import("./src/server/mod.ts");
      return await printStoredAdminKey(command.dataDir);
    }
    case "restore": {
      const { runRestore } = await import("./src/server/restore.ts");
      return await runRestore(command.zipPath, command.config);
    }
    case "launch":
      return await main(command.args); // a compiled binary (above)
    case "runner": {
      const { runnerMain } = await import("./src/runtime/mod.ts");
      const { TRANSACTION_SYSCALLS } = await import("./src/server/transaction_syscalls.ts");
      await runnerMain(TRANSACTION_SYSCALLS);
      return 0;
    }
  }
}

try {
  Deno.exit(await main(Deno.args));
} catch (error) {
  // config.ts's UsageError (and the launcher's), by name: main.ts loads config.ts only for the commands that need it.
  if (error instanceof Error && error.name === "UsageError") {
    console.error(`denvex: ${error.message}`);
    Deno.exit(EXIT_USAGE);
  }
  console.error(`denvex: ${error instanceof Error ? error.message : String(error)}`);
  Deno.exit(EXIT_FAILURE);
}
