/**
 * The active deployment as the executor sees it: where its modules are, which functions exist with which kind,
 * visibility and validators, and the environment variables functions get.
 */
import type { ValidatorJson } from "../values/mod.ts";
import type { AnalyzedFunction, DeploymentAnalysis } from "../runtime/mod.ts";

/** One callable function of the deployment. */
export interface FunctionInfo {
  key: string;
  udfType: "query" | "mutation" | "action";
  visibility: "public" | "internal";
  /** null = accepts any args. */
  argsValidator: ValidatorJson | null;
  /** null = no returns validator. */
  returnsValidator: ValidatorJson | null;
  /** The analysis entry as reported to the CLI. */
  analyzed: AnalyzedFunction;
  /** Where it runs: `"node"` for an action of a `"use node"` module (a node runner), else an isolate worker. */
  environment: "isolate" | "node";
}

/** One component instance of a deployment (the app is the instance at path `""`). */
export interface ComponentDeployment {
  /** `""` the app, `aggregate`, `emailWorkpool/batchWorker` (components/types.ts ComponentPath). */
  path: string;
  /** Absolute directory of the instance's modules (`dir` + components/layout.ts `componentModulesSubdir`). */
  modulesDir: string;
  analysis: DeploymentAnalysis;
  functions: Map<string, FunctionInfo>;
  /** The env its parent bound in `use(…, {env})`; empty for the app, whose env is the deployment's. */
  env: Record<string, string>;
  /** Its children: name → path. */
  children: ReadonlyMap<string, string>;
  /** Its HTTP mounts: normalized prefix (`/foo/`) → child name (absent: none). */
  httpMounts?: ReadonlyMap<string, string>;
}

/** A deployment that can serve calls. */
export interface ActiveDeployment {
  /** Absolute directory of the written modules (the app's; instances' are below it). */
  dir: string;
  /** The node deployment folder of the app's `"use node"` modules, or null when it has none. */
  nodeDir: string | null;
  /** The app's analysis and functions. */
  analysis: DeploymentAnalysis;
  functions: Map<string, FunctionInfo>;
  /** Every instance by path, the app at `""` too. */
  components: ReadonlyMap<string, ComponentDeployment>;
}

function parseValidator(json: string | null): ValidatorJson | null {
  if (json === null || json === "null") return null;
  const parsed = JSON.parse(json) as ValidatorJson | null;
  if (parsed === null || parsed.type === "any") return null;
  return parsed;
}

const UDF_TYPES = { Query: "query", Mutation: "mutation", Action: "action" } as const;

/** Indexes an analysis by function key (`"dir/file.js:name"`). */
export function indexFunctions(analysis: DeploymentAnalysis): Map<string, FunctionInfo> {
  const functions = new Map<string, FunctionInfo>();
  for (const module of analysis.modules) {
    for (const fn of module.functions) {
      if (fn.udfType === "HttpAction") continue;
      const key = `${module.path}:${fn.name}`;
      functions.set(key, {
        key,
        udfType: UDF_TYPES[fn.udfType],
        visibility: fn.visibility?.kind === "internal" ? "internal" : "public",
        argsValidator: parseValidator(fn.args),
        returnsValidator: parseValidator(fn.returns),
        analyzed: fn,
        environment: module.environment === "node" ? "node" : "isolate",
      });
    }
  }
  return functions;
}
