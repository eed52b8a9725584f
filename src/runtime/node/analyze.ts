/**
 * Push-time analysis of node modules, run inside a node runner (their imports only resolve there): the functions
 * each module exports, with Convex's rule that a `"use node"` module defines actions only.
 */

/** One exported function, in the shape the isolate analysis (src/runtime) reports. */
export interface NodeAnalyzedFunction {
  name: string;
  udfType: "Query" | "Mutation" | "Action" | "HttpAction";
  visibility: { kind: "public" | "internal" } | null;
  /** The args validator JSON (`exportArgs()`), `{"type":"any"}` when none. */
  args: string;
  /** The returns validator JSON (`exportReturns()`), `null` when none. */
  returns: string;
}

/** The functions of one node module. */
export interface NodeModuleAnalysis {
  path: string;
  functions: NodeAnalyzedFunction[];
}

interface Registered {
  isQuery?: boolean;
  isMutation?: boolean;
  isAction?: boolean;
  isHttp?: boolean;
  isInternal?: boolean;
  exportArgs?: () => string;
  exportReturns?: () => string;
}

function kindOf(fn: Registered): NodeAnalyzedFunction["udfType"] | null {
  if (fn.isQuery === true) return "Query";
  if (fn.isMutation === true) return "Mutation";
  if (fn.isAction === true) return "Action";
  if (fn.isHttp === true) return "HttpAction";
  return null;
}

/** Describes `module`; throws Convex's message for a query, mutation or HTTP action in a node module. */
export function analyzeNodeModule(path: string, module: Record<string, unknown>): NodeModuleAnalysis {
  const functions: NodeAnalyzedFunction[] = [];
  for (const [name, value] of Object.entries(module)) {
    if (typeof value !== "function") continue;
    const fn = value as Registered;
    const udfType = kindOf(fn);
    if (udfType === null) continue;
    if (udfType !== "Action") {
      throw new Error(
        `\`${name}\` defined in \`${path}\` is a ${udfType} function. Only actions can be defined in Node.js. ` +
          "See https://docs.convex.dev/functions/actions for more details.",
      );
    }
    functions.push({
      name,
      udfType,
      visibility: { kind: fn.isInternal === true ? "internal" : "public" },
      args: fn.exportArgs?.() ?? '{"type":"any"}',
      returns: fn.exportReturns?.() ?? "null",
    });
  }
  return { path, functions };
}
