/**
 * The network policy of user code (one place, used by every runner kind): which addresses an action may reach, as
 * `--deny-net` flags for the runner process and as a matcher for the worker's guard.
 *
 * @module
 */
export {
  formatIp,
  type IpAddress,
  isNonPublicAddress,
  parseIp,
  parseIpv4Cidr,
  rangeToCidrs,
  subtractRanges,
} from "./addresses.ts";
export {
  type ActionNetPolicy,
  type NetPolicyEnvironment,
  type NetPolicyInput,
  NetPolicyMatcher,
  resolveActionNetPolicy,
  SYSTEM_NET_ENVIRONMENT,
} from "./policy.ts";
export { decodePolicyArg, encodePolicyArg, POLICY_ARG_PREFIX } from "./runner_arg.ts";
export { HostChecker, type Resolver, systemResolver } from "./checker.ts";
