/**
 * Deploying code: the store of deployed modules, schemas and environment variables (`DeploymentStore`), the push
 * protocol behind the CLI's admin routes (`PushCoordinator`; the routes themselves live in `src/http`), the function
 * log shape the CLI streams, and the `_system` functions the CLI and dashboard call.
 *
 * @module
 */
export { PushCoordinator } from "./push.ts";
export { functionExecution, functionLogEntries, MAX_LOG_ENTRIES, MAX_LOG_POLL_MS } from "./function_logs.ts";
export {
  type ComponentRecord,
  DeployError,
  DeploymentStore,
  MAX_ENVIRONMENT_NAME_LENGTH,
  MAX_ENVIRONMENT_VALUE_BYTES,
  MAX_ENVIRONMENT_VARIABLES,
  type ModuleRecord,
  moduleSha256,
  type PreparedDeployment,
} from "./store.ts";
export { systemFunctions } from "./system_functions.ts";
export type { DeployBackend, DeploymentUrls } from "./types.ts";
