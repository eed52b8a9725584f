/**
 * Push-time node folders (src/deploy/node_packages.ts): content-addressed over modules and external packages (the
 * same push reuses its folder, another gets a new one), a bad module path or package leaves no half-written folder,
 * and the push's `nodeDependencies` are checked (push_request.ts).
 */
import { assert, assertEquals, assertNotEquals, assertRejects, assertThrows } from "./helpers/assert.ts";
import { join } from "node:path";
import { NodeInstallError, nodeRoot, prepareNodeDir } from "../src/deploy/node_packages.ts";
import { parseNodeDependencies } from "../src/deploy/push_request.ts";
import { DeployError } from "../src/deploy/mod.ts";
import type { ModuleConfig } from "../src/runtime/mod.ts";

const MODULE: ModuleConfig = { path: "a.js", source: "export const x = 1;\n", environment: "node" };

Deno.test("node packages: folders are content-addressed and reused", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "denvex-node-packages-" });
  try {
    const first = await prepareNodeDir(dataDir, [MODULE], []);
    const again = await prepareNodeDir(dataDir, [MODULE], []);
    assertEquals(again, first);
    assertEquals(await Deno.readTextFile(join(first.dir, "modules/a.js")), MODULE.source);
    const changed = await prepareNodeDir(dataDir, [{ ...MODULE, source: "export const x = 2;\n" }], []);
    assertNotEquals(changed.dir, first.dir);
    const withPackage = await prepareNodeDir(dataDir, [MODULE], [{ name: "semver", version: "7.8.6" }], {
      denoDir: undefined, // the checkout's cache holds semver (deno.json pins it)
      cachedOnly: true,
    });
    assertNotEquals(withPackage.dir, first.dir);
    assert((await Deno.stat(join(withPackage.dir, "node_modules/semver/package.json"))).isFile);
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("node packages: a bad path or package leaves no folder behind", async () => {
  const dataDir = await Deno.makeTempDir({ prefix: "denvex-node-packages-" });
  try {
    await assertRejects(
      () => prepareNodeDir(dataDir, [{ ...MODULE, path: "../escape.js" }], []),
      NodeInstallError,
      "Invalid module path",
    );
    await assertRejects(
      () =>
        prepareNodeDir(dataDir, [MODULE], [{ name: "denvex-no-such-package-xyz", version: "1.0.0" }], {
          cachedOnly: true,
        }),
      NodeInstallError,
      "denvex-no-such-package-xyz@1.0.0",
    );
    const left = [];
    for await (const entry of Deno.readDir(nodeRoot(dataDir))) if (/^[0-9a-f]{32}$/.test(entry.name)) left.push(entry);
    assertEquals(left, []);
  } finally {
    await Deno.remove(dataDir, { recursive: true });
  }
});

Deno.test("node packages: the push's nodeDependencies are checked", () => {
  assertEquals(parseNodeDependencies(undefined), []);
  assertEquals(parseNodeDependencies([{ name: "semver", version: "7.8.6" }]), [{ name: "semver", version: "7.8.6" }]);
  assertThrows(() => parseNodeDependencies("semver"), DeployError);
  assertThrows(() => parseNodeDependencies([{ name: "semver" }]), DeployError);
});
