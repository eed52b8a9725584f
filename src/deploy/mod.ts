/**
 * Deploying code: the admin and push routes the official CLI talks to (`deployRoutes`), the store of deployed modules,
 * schemas and environment variables (`DeploymentStore`), and the `_system` functions the CLI and dashboard call.
 *
 * @module
 */
export { deployRoutes } from "./routes.ts";
export {
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
