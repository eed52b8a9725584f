/**
 * Defaults the launcher needs too, kept apart from config.ts so the launcher loads none of the server's modules.
 *
 * Private to `src/server`: other folders use its `mod.ts`.
 */

/** Default data directory, relative to the working directory. */
export const DEFAULT_DATA_DIR = "./denvex-data";
