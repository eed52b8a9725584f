/**
 * Function paths (convex-compat.md §1.9): split on the last `:`, a missing function name means `default`, the module
 * gets `.js` when it has no extension. `messages`, `messages:default` and `messages.js:default` are one function.
 */

/** A resolved function address. */
export interface FunctionAddress {
  /** `"dir/file.js"`. */
  modulePath: string;
  /** `"list"` or `"default"`. */
  exportName: string;
  /** `"dir/file:list"`, without `.js` and with `:default` dropped: how logs and metadata name it. */
  displayName: string;
  /** `"dir/file.js:list"`: the key of the function in a deployment. */
  key: string;
}

const MAX_PATH_LENGTH = 1024;
const COMPONENT_PATTERN = /^[A-Za-z0-9_.\-]{1,64}$/;

/** Parses a user-given path; throws a readable error for malformed ones. */
export function parseFunctionPath(path: unknown): FunctionAddress {
  if (typeof path !== "string" || path.length === 0) throw new Error("The function path must be a non-empty string");
  if (path.length > MAX_PATH_LENGTH) throw new Error(`The function path is longer than ${MAX_PATH_LENGTH} characters`);
  const colon = path.lastIndexOf(":");
  let modulePart = colon === -1 ? path : path.slice(0, colon);
  const exportName = colon === -1 ? "default" : path.slice(colon + 1) || "default";
  if (modulePart.startsWith("/")) modulePart = modulePart.slice(1);
  for (const component of modulePart.split("/")) {
    if (!COMPONENT_PATTERN.test(component) || component === "." || component === "..") {
      throw new Error(`Invalid function path "${path}"`);
    }
  }
  if (!/^[A-Za-z_$][A-Za-z0-9_$]*$/.test(exportName)) throw new Error(`Invalid function name in path "${path}"`);
  const modulePath = /\.[cm]?js$/.test(modulePart) ? modulePart : `${modulePart}.js`;
  const baseName = modulePath.replace(/\.js$/, "");
  return {
    modulePath,
    exportName,
    displayName: exportName === "default" ? baseName : `${baseName}:${exportName}`,
    key: `${modulePath}:${exportName}`,
  };
}
