/**
 * Stand-alone entry of runner mode, for tests and for deployments that start runners without `main.ts`.
 */
import { runnerMain } from "./runner_main.ts";

await runnerMain();
