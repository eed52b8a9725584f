/**
 * Test helper: `main.ts restore <zip> --data <dir>` as a child process with only the grants a restore needs (read
 * and write of the data directory, read of the ZIP), its exit code and output collected.
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const REPO = fileURLToPath(new URL("../../", import.meta.url));

/** Runs the restore; resolves with its exit code and its stdout and stderr together. */
export async function runRestore(zip: string, dataDir: string): Promise<{ code: number; output: string }> {
  const result = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--cached-only",
      "--no-prompt",
      `--allow-read=${dataDir},${zip}`,
      `--allow-write=${dataDir}`,
      "--allow-env",
      join(REPO, "main.ts"),
      "restore",
      zip,
      `--data=${dataDir}`,
    ],
    cwd: REPO,
    clearEnv: true,
    env: { PATH: Deno.env.get("PATH") ?? "/usr/bin:/bin" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  return { code: result.code, output: decoder.decode(result.stdout) + decoder.decode(result.stderr) };
}
