/**
 * `auth.config.js` checks at push time: every environment variable its evaluation read must be set (code
 * `AuthConfigMissingEnvironmentVariable`, which the CLI turns into `npx convex env set` advice, §5.2), and every
 * provider must be an OIDC provider `{domain, applicationID}` or a custom JWT provider.
 *
 * Private to `src/deploy`: other folders use its `mod.ts`.
 */
import type { JsonValue } from "../values/mod.ts";
import type { ModuleConfig } from "../runtime/mod.ts";
import { DeployError } from "./store.ts";

/** Most providers one auth config may list. */
const MAX_PROVIDERS = 64;

/** A provider as start_push reports it in `appAuth`. */
export type AuthProvider =
  | { applicationID: string; domain: string }
  | { type: "customJwt"; applicationID: string | null; issuer: string; jwks: string; algorithm: string };

/**
 * Validates the analyzed auth config; returns the providers (empty without an auth config). `missingEnv` lists the
 * variables the config read while the analysis evaluated it that were not set (a comment naming one reads nothing).
 */
export function checkAuthConfig(
  module: ModuleConfig | undefined,
  authConfig: JsonValue | null,
  missingEnv: readonly string[],
): AuthProvider[] {
  if (!module) return [];
  const name = missingEnv[0];
  if (name !== undefined) {
    throw new DeployError(
      "AuthConfigMissingEnvironmentVariable",
      `Environment variable ${name} is used in auth config file but its value was not set. Set it with ` +
        `\`npx convex env set ${name} <value>\`.`,
    );
  }
  const providers = (authConfig as { providers?: unknown } | null)?.providers ?? [];
  if (!Array.isArray(providers)) throw invalid("`providers` must be a list");
  if (providers.length > MAX_PROVIDERS) throw invalid(`at most ${MAX_PROVIDERS} providers are allowed`);
  return providers.map((provider, i) => parseProvider(provider, i));
}

function invalid(message: string): DeployError {
  return new DeployError("InvalidAuthConfig", `Invalid auth config (auth.config.ts): ${message}`);
}

function parseProvider(value: unknown, i: number): AuthProvider {
  if (value === null || typeof value !== "object") throw invalid(`provider ${i} is not an object`);
  const provider = value as Record<string, unknown>;
  if (provider.type === "customJwt") {
    for (const field of ["issuer", "jwks", "algorithm"]) {
      if (typeof provider[field] !== "string" || provider[field] === "") {
        throw invalid(`custom JWT provider ${i} needs a string \`${field}\``);
      }
    }
    if (provider.algorithm !== "RS256" && provider.algorithm !== "ES256") {
      throw invalid(`custom JWT provider ${i}: algorithm must be RS256 or ES256`);
    }
    const applicationID = provider.applicationID;
    if (applicationID !== undefined && applicationID !== null && typeof applicationID !== "string") {
      throw invalid(`custom JWT provider ${i}: applicationID must be a string`);
    }
    return {
      type: "customJwt",
      applicationID: (applicationID as string | undefined) ?? null,
      issuer: provider.issuer as string,
      jwks: provider.jwks as string,
      algorithm: provider.algorithm as string,
    };
  }
  if (typeof provider.domain !== "string" || provider.domain === "") {
    throw invalid(`provider ${i} needs a string \`domain\` (the issuer URL)`);
  }
  if (typeof provider.applicationID !== "string" || provider.applicationID === "") {
    throw invalid(`provider ${i} needs a string \`applicationID\``);
  }
  return { domain: provider.domain, applicationID: provider.applicationID };
}

/** How a provider is named in the auth diff. */
export function providerLabel(provider: AuthProvider): string {
  return "type" in provider ? `${provider.issuer} (${provider.applicationID ?? "any"})` : provider.domain;
}
