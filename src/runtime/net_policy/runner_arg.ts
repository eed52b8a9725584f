/**
 * The policy travels to an action runner's worker as one command-line argument of the runner process (a worker sees
 * its process's `Deno.args`), so no message protocol has to carry it and it is in place before any user code loads.
 * It holds no secret: addresses and ports only.
 */
import type { ActionNetPolicy } from "./policy.ts";

/** Prefix of the argument; the runner's own argument parsing ignores it. */
export const POLICY_ARG_PREFIX = "--action-net-policy=";

/** The argument for `policy`. */
export function encodePolicyArg(policy: ActionNetPolicy): string {
  return POLICY_ARG_PREFIX + JSON.stringify(policy);
}

/** The policy in `args`, or null when none was given (transaction runners, whose workers have no network). */
export function decodePolicyArg(args: readonly string[]): ActionNetPolicy | null {
  const arg = args.find((candidate) => candidate.startsWith(POLICY_ARG_PREFIX));
  if (arg === undefined) return null;
  const parsed = JSON.parse(arg.slice(POLICY_ARG_PREFIX.length)) as Partial<ActionNetPolicy>;
  if (!Array.isArray(parsed.denyNet) || !Array.isArray(parsed.allowedAddresses)) {
    throw new Error("Malformed action network policy argument");
  }
  return { denyNet: parsed.denyNet.map(String), allowedAddresses: parsed.allowedAddresses.map(String) };
}
