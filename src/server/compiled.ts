/**
 * Whether this process is a `deno compile` executable (`denvex`) rather than `deno run` of a checkout.
 *
 * Private to `src/server`: other folders use its `mod.ts`.
 */
import { basename } from "node:path";

/** True when the executable is not the `deno` CLI: a compiled binary, whose permissions were fixed when it was built. */
export function isCompiledBinary(): boolean {
  const name = basename(Deno.execPath());
  return name !== "deno" && name !== "deno.exe";
}
