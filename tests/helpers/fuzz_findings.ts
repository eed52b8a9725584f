/**
 * What the fuzz test holds the server to, and how it reports what broke: findings grouped by kind and endpoint, each
 * group with a few reproducible examples (seed, case index, request, response).
 */

/** One broken expectation. */
export interface Finding {
  /** The rule broken, e.g. `status >= 500`, `error body is not {code, message}`, `hung`. */
  rule: string;
  /** Groups findings: the rule, the endpoint template, the status. */
  group: string;
  /** A self-contained description of the request and what came back. */
  example: string;
}

/** Examples kept per group (the rest are only counted). */
const EXAMPLES_PER_GROUP = 2;

/** Collects findings of one run. */
export class Findings {
  readonly #groups = new Map<string, { count: number; examples: string[] }>();

  add(finding: Finding): void {
    const group = this.#groups.get(finding.group) ?? { count: 0, examples: [] };
    group.count++;
    if (group.examples.length < EXAMPLES_PER_GROUP) group.examples.push(finding.example);
    this.#groups.set(finding.group, group);
  }

  get count(): number {
    let total = 0;
    for (const group of this.#groups.values()) total += group.count;
    return total;
  }

  /** A report of every group, largest first. */
  report(): string {
    const groups = [...this.#groups.entries()].sort((a, b) => b[1].count - a[1].count);
    return groups.map(([name, group]) =>
      `${group.count}× ${name}\n` +
      group.examples.map((example) => `    ${example.replaceAll("\n", "\n    ")}`).join("\n")
    ).join("\n");
  }
}

/** `text` cut to `max` characters with its length noted, control characters escaped. */
export function preview(text: string, max = 240): string {
  const shown = JSON.stringify(text.length > max ? text.slice(0, max) : text);
  return text.length > max ? `${shown}… (${text.length} chars)` : shown;
}

/** Whether `text` is an error body of the documented shape `{code: string, message: string}`. */
export function isErrorJson(text: string): boolean {
  try {
    const body = JSON.parse(text);
    return body !== null && typeof body === "object" && typeof body.code === "string" &&
      typeof body.message === "string";
  } catch {
    return false;
  }
}
