/**
 * The pure component model (src/components) fed by what the official CLI pushed for tests/fixtures/components_app:
 * evaluation order, definition checks, the instance tree and its errors, references and function handles.
 */
import { assertEquals, assertThrows } from "./helpers/assert.ts";
import {
  buildComponentTree,
  checkedComponentTree,
  ComponentDefinitionError,
  componentDepsDefinitionPath,
  componentDepsModuleSource,
  componentInstances,
  definitionEvaluationOrder,
  type DefinitionMetadata,
  findComponent,
  functionHandle,
  parseChildReference,
  parseDefinitionMetadata,
  parseFunctionHandle,
} from "../src/components/mod.ts";

interface Sample {
  appDefinition: { dependencies: string[] };
  componentDefinitions: { definitionPath: string; dependencies: string[] }[];
  evaluatedDefinitions: Record<string, unknown>;
  acceptedApp: unknown;
}

const sample: Sample = JSON.parse(
  await Deno.readTextFile(new URL("./components_samples/push_of_components_app.json", import.meta.url)),
);

function definitions(): Map<string, DefinitionMetadata> {
  return new Map(
    Object.entries(sample.evaluatedDefinitions).map(([path, value]) => [
      path,
      parseDefinitionMetadata(value, path, path === ""),
    ]),
  );
}

/** A tiny app: `children` as `[name, definitionPath]`, each definition a leaf component unless given in `more`. */
function tinyDefinitions(
  children: [string, string][],
  more: Record<string, [string, string][]> = {},
): Map<string, DefinitionMetadata> {
  const metadata = (path: string, uses: [string, string][]): DefinitionMetadata => ({
    path,
    definitionType: path === "" ? { type: "app" } : { type: "childComponent", name: "c", args: [] },
    childComponents: uses.map(([name, childPath]) => ({ name, path: childPath, args: [], env: [] })),
    httpMounts: {},
    exports: { type: "branch", branch: [] },
  });
  const all = new Map([["", metadata("", children)]]);
  for (const [, path] of children) if (path !== "") all.set(path, metadata(path, more[path] ?? []));
  for (const [path, uses] of Object.entries(more)) all.set(path, metadata(path, uses));
  return all;
}

function codeOf(fn: () => unknown): string {
  const error = assertThrows(fn, ComponentDefinitionError);
  return error.code;
}

Deno.test("evaluation order: leaves first, the app last, each definition once", () => {
  const order = definitionEvaluationOrder(sample.appDefinition.dependencies, sample.componentDefinitions);
  assertEquals(order.length, sample.componentDefinitions.length + 1);
  assertEquals(order.at(-1), "");
  for (const definition of sample.componentDefinitions) {
    for (const dependency of definition.dependencies) {
      assertEquals(order.indexOf(dependency) < order.indexOf(definition.definitionPath), true);
    }
  }
});

Deno.test("evaluation order: cycles, unknown dependencies and duplicates are refused", () => {
  assertEquals(
    codeOf(() =>
      definitionEvaluationOrder(["a"], [{ definitionPath: "a", dependencies: ["b"] }, {
        definitionPath: "b",
        dependencies: ["a"],
      }])
    ),
    "CyclicImport",
  );
  assertEquals(codeOf(() => definitionEvaluationOrder(["a"], [])), "MissingComponentDefinition");
  assertEquals(
    codeOf(() =>
      definitionEvaluationOrder([], [{ definitionPath: "a", dependencies: [] }, {
        definitionPath: "a",
        dependencies: [],
      }])
    ),
    "InvalidDefinition",
  );
});

Deno.test("the tree of the components app: ten instances, nested batch workers, env bindings", () => {
  const root = buildComponentTree(definitions());
  const paths = componentInstances(root).map((instance) => instance.path);
  assertEquals(paths, [
    "",
    "emailWorkpool",
    "emailWorkpool/batchWorker",
    "rateLimiter",
    "rateLimiter/batchWorker",
    "aggregate",
    "aggregate/batchWorker",
    "shardedCounter",
    "migrations",
    "actionRetrier",
    "crons",
  ]);
  assertEquals(findComponent(root, "emailWorkpool/batchWorker")?.env, [["LOG_LEVEL", {
    type: "value",
    value: "REPORT",
  }]]);
  assertEquals(findComponent(root, "aggregate/nope"), null);
  // Three versions of batch-worker: the same name, three definitions.
  const workers = componentInstances(root).filter((instance) => instance.name === "batchWorker");
  assertEquals(new Set(workers.map((instance) => instance.definitionPath)).size, 3);
});

Deno.test("the checked tree has the shape the CLI accepted", () => {
  const all = definitions();
  assertEquals(checkedComponentTree(buildComponentTree(all), all), sample.acceptedApp);
});

Deno.test("tree errors: name clash, missing child, bad name, app used as a component, too deep", () => {
  assertEquals(codeOf(() => buildComponentTree(tinyDefinitions([["a", "x"], ["a", "y"]]))), "DuplicateComponentName");
  const missing = tinyDefinitions([["a", "x"]]);
  missing.delete("x");
  assertEquals(codeOf(() => buildComponentTree(missing)), "MissingComponentDefinition");
  assertEquals(codeOf(() => buildComponentTree(tinyDefinitions([["a-b", "x"]]))), "InvalidComponentName");
  assertEquals(codeOf(() => buildComponentTree(tinyDefinitions([["a", ""]]))), "MissingComponentDefinition");
  const chain: Record<string, [string, string][]> = {};
  for (let i = 0; i < 11; i++) chain[`d${i}`] = [[`c${i + 1}`, `d${i + 1}`]];
  chain["d11"] = [];
  assertEquals(codeOf(() => buildComponentTree(tinyDefinitions([["c0", "d0"]], chain))), "ComponentTreeTooDeep");
  // The same definition twice under distinct names is fine.
  assertEquals(componentInstances(buildComponentTree(tinyDefinitions([["a", "x"], ["b", "x"]]))).length, 3);
});

Deno.test("definition checks: defineApp vs defineComponent, malformed exports", () => {
  const app = sample.evaluatedDefinitions[""];
  const component = Object.entries(sample.evaluatedDefinitions).find(([path]) => path !== "")![1];
  assertEquals(codeOf(() => parseDefinitionMetadata(app, "x", false)), "InvalidDefinition");
  assertEquals(codeOf(() => parseDefinitionMetadata(component, "", true)), "InvalidDefinition");
  assertEquals(codeOf(() => parseDefinitionMetadata(null, "x", false)), "InvalidDefinition");
  assertEquals(
    codeOf(() => parseDefinitionMetadata({ ...(app as object), childComponents: {} }, "", true)),
    "InvalidDefinition",
  );
  assertEquals(
    codeOf(() =>
      parseDefinitionMetadata(
        { ...(app as object), childComponents: [{ name: "a", path: "x", env: [["K", 1]] }] },
        "",
        true,
      )
    ),
    "InvalidDefinition",
  );
});

Deno.test("_componentDeps specifiers and the synthetic module that answers them", async () => {
  const path = "../node_modules/@convex-dev/aggregate/dist/component";
  const encoded = btoa(path).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "");
  assertEquals(componentDepsDefinitionPath(`_componentDeps/${encoded}`), path);
  assertEquals(componentDepsDefinitionPath("convex.config.js"), null);
  const metadata = definitions().get(
    sample.componentDefinitions.find((d) => d.definitionPath.endsWith("/aggregate/dist/component"))!.definitionPath,
  )!;
  const source = componentDepsModuleSource(metadata);
  const module = await import(`data:text/javascript,${encodeURIComponent(source)}`);
  assertEquals(module.default.componentDefinitionPath, metadata.path);
  assertEquals(module.default.defaultName, "aggregate");
  assertEquals(module.default.export(), metadata);
});

Deno.test("child references and function handles", () => {
  assertEquals(parseChildReference("_reference/childComponent/aggregate/btree/count"), {
    child: "aggregate",
    udfPath: "btree.js:count",
  });
  assertEquals(parseChildReference("_reference/childComponent/a/dir/mod/fn"), { child: "a", udfPath: "dir/mod.js:fn" });
  assertEquals(parseChildReference("_reference/childComponent/aggregate"), null);
  assertEquals(parseChildReference("_reference/currentSystemUdfInComponent/x"), null);
  const address = { componentPath: "emailWorkpool/batchWorker", udfPath: "lib.js:run" };
  assertEquals(parseFunctionHandle(functionHandle(address)), address);
  assertEquals(parseFunctionHandle(functionHandle({ componentPath: "", udfPath: "emails.js:emailSent" })), {
    componentPath: "",
    udfPath: "emails.js:emailSent",
  });
  assertEquals(parseFunctionHandle("function://emails.js:emailSent"), {
    componentPath: "",
    udfPath: "emails.js:emailSent",
  });
  assertEquals(parseFunctionHandle("emails:send"), null);
});
