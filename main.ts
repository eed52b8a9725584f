/**
 * denvex's entry point: parses the command line and hands over to the subsystem it names. Heavy modules are
 * imported per command so a runner process never loads the HTTP server, and the server never loads the runner.
 *
 * Exit codes: 0 success, 1 runtime failure, 2 bad flags or configuration (one line on stderr, nothing opened).
 */
import { type Command, parseCommandLine, USAGE, UsageError } from "./src/server/config.ts";
import { VERSION_TEXT } from "./src/server/version.ts";

const EXIT_FAILURE = 1;
const EXIT_USAGE = 2;

async function main(args: readonly string[]): Promise<number> {
  const command: Command = parseCommandLine(args, (name) => Deno.env.get(name));
  switch (command.kind) {
    case "help":
      console.log(USAGE);
      return 0;
    case "version":
      console.log(VERSION_TEXT);
      return 0;
    case "serve": {
      const { runServer } = await import("./src/server/mod.ts");
      return await runServer(command.config);
    }
    case "admin-key": {
      const { printStoredAdminKey } = await import("./src/server/mod.ts");
      return await printStoredAdminKey(command.dataDir);
    }
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
  if (error instanceof UsageError) {
    console.error(`denvex: ${error.message}`);
    Deno.exit(EXIT_USAGE);
  }
  console.error(`denvex: ${error instanceof Error ? error.message : String(error)}`);
  Deno.exit(EXIT_FAILURE);
}
