/**
 * The runner's map from a deployment folder to the file URL its modules load from. Resolving a folder checks that it
 * is inside the modules folder, so a message naming another path cannot make the worker load code from it.
 * Private to the runner (runner.ts).
 */
import { pathToFileURL } from "node:url";
import { posix } from "node:path";

/** Deployment folder URLs remembered. */
const MAX_CACHED_DEPLOYMENT_URLS = 16;

/** See the module comment. */
export class DeploymentUrls {
  readonly #modulesDir: string;
  readonly #urls = new Map<string, string>();

  constructor(modulesDir: string) {
    this.#modulesDir = posix.resolve(modulesDir);
  }

  /** The URL (ending in `/`) of `deploymentDir`; throws when it lies outside the modules folder. */
  resolve(deploymentDir: string): string {
    let url = this.#urls.get(deploymentDir);
    if (url === undefined) {
      const resolved = posix.resolve(deploymentDir);
      if (!resolved.startsWith(this.#modulesDir + "/")) {
        throw new Error(`Deployment folder ${deploymentDir} is outside the modules folder`);
      }
      url = pathToFileURL(resolved).href + "/";
      if (this.#urls.size >= MAX_CACHED_DEPLOYMENT_URLS) this.#urls.clear();
      this.#urls.set(deploymentDir, url);
    }
    return url;
  }
}
