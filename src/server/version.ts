/** The denvex release this checkout builds. */
export const DENVEX_VERSION = "0.1.0";

/** The text `GET /version` answers and `--version` prints. */
export const VERSION_TEXT = `denvex ${DENVEX_VERSION}`;
