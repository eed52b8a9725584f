/** @jsxImportSource preact */
/// <reference lib="dom" />
/** The Functions page: every function with kind, visibility and validators; run one with arguments as an admin. */
import { useEffect, useState } from "preact/hooks";
import { get, messageOf, post } from "./api.ts";
import { type JsonValue, ValueTree } from "./values.tsx";
import { Badge, componentLabel, Empty, ErrorNotice, formatDuration, navigate, PageHead } from "./widgets.tsx";

interface FunctionEntry {
  componentPath: string;
  path: string;
  udfType: "query" | "mutation" | "action" | "httpAction";
  visibility: "public" | "internal";
  args: string;
  returns: string | null;
  argsJson: Validator | null;
}

/** The validator JSON the server reports (convex-compat.md §1.8). */
type Validator =
  | { type: "null" | "number" | "bigint" | "boolean" | "string" | "bytes" | "any" | "commitTs" }
  | { type: "literal"; value: JsonValue }
  | { type: "id"; tableName: string }
  | { type: "array"; value: Validator }
  | { type: "object"; value: Record<string, { fieldType: Validator; optional: boolean }> }
  | { type: "record"; keys: Validator; values: { fieldType: Validator; optional: boolean } }
  | { type: "union"; value: Validator[] };

/** A starting value for arguments of `validator`: required fields with placeholder values of their types. */
function templateOf(validator: Validator, depth = 0): JsonValue {
  if (depth > 8) return null;
  switch (validator.type) {
    case "string":
    case "id":
      return "";
    case "number":
      return 0;
    case "bigint":
      return { $integer: "AAAAAAAAAAA=" };
    case "bytes":
      return { $bytes: "" };
    case "boolean":
      return false;
    case "literal":
      return validator.value;
    case "array":
      return [];
    case "record":
      return {};
    case "union":
      return validator.value.length > 0 ? templateOf(validator.value[0], depth + 1) : null;
    case "object": {
      const out: { [key: string]: JsonValue } = {};
      for (const [name, field] of Object.entries(validator.value)) {
        if (!field.optional) out[name] = templateOf(field.fieldType, depth + 1);
      }
      return out;
    }
    default:
      return null;
  }
}

const IDENTITY_PLACEHOLDER = '{"subject": "user_1", "issuer": "https://auth.example.com", "name": "Ada"}';

type RunResult =
  | { ok: true; value: JsonValue; idTables: Record<string, string>; logLines: string[]; executionMs: number }
  | { ok: false; errorMessage: string; errorData: JsonValue; logLines: string[]; executionMs: number };

export function FunctionsPage({ params }: { params: Record<string, string> }) {
  const [functions, setFunctions] = useState<FunctionEntry[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [search, setSearch] = useState("");
  useEffect(() => {
    get<FunctionEntry[]>("functions").then(setFunctions).catch((caught) => setError(messageOf(caught)));
  }, []);
  const selected = functions?.find((fn) => fn.path === params.path && fn.componentPath === (params.component ?? ""));
  const shown = (functions ?? []).filter((fn) => fn.path.toLowerCase().includes(search.toLowerCase()));
  return (
    <div class="page">
      <PageHead title="Functions" subtitle="Every function of the deployed code. Run any of them as an admin." />
      <ErrorNotice error={error} />
      <div class="split">
        <aside class="fn-list" aria-label="Functions">
          <input
            type="search"
            placeholder="Filter functions"
            aria-label="Filter functions"
            value={search}
            onInput={(event) => setSearch((event.target as HTMLInputElement).value)}
          />
          {functions !== null && functions.length === 0 && <Empty title="No functions deployed" />}
          <ul>
            {shown.map((fn) => {
              const active = selected === fn;
              const runnable = fn.udfType !== "httpAction";
              return (
                <li key={`${fn.componentPath}/${fn.path}`}>
                  <a
                    href={runnable
                      ? `#/functions?${new URLSearchParams({ component: fn.componentPath, path: fn.path })}`
                      : `#/functions`}
                    class={active ? "active" : ""}
                    aria-current={active ? "true" : undefined}
                  >
                    <Badge kind={fn.udfType}>{fn.udfType === "httpAction" ? "http" : fn.udfType}</Badge>
                    <span class="fn-path">{fn.path}</span>
                    {fn.visibility === "internal" && <Badge kind="muted">internal</Badge>}
                    {fn.componentPath !== "" && <span class="muted small">{componentLabel(fn.componentPath)}</span>}
                  </a>
                </li>
              );
            })}
          </ul>
        </aside>
        <section class="fn-detail">
          {selected
            ? <RunPanel key={`${selected.componentPath}/${selected.path}`} fn={selected} />
            : <Empty title="Pick a function">Its arguments, and a form to run it, appear here.</Empty>}
        </section>
      </div>
    </div>
  );
}

function RunPanel({ fn }: { fn: FunctionEntry }) {
  const [args, setArgs] = useState(() => JSON.stringify(fn.argsJson ? templateOf(fn.argsJson) : {}, null, 2));
  const [identity, setIdentity] = useState("");
  const [result, setResult] = useState<RunResult | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const run = async (event: Event) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      setResult(await post<RunResult>("run", { componentPath: fn.componentPath, path: fn.path, args, identity }));
    } catch (caught) {
      setError(messageOf(caught));
    } finally {
      setBusy(false);
    }
  };
  return (
    <div class="panel">
      <h2 class="fn-title">
        <Badge kind={fn.udfType}>{fn.udfType}</Badge> {fn.path}
      </h2>
      <dl class="facts">
        <dt>Component</dt>
        <dd>{componentLabel(fn.componentPath)}</dd>
        <dt>Visibility</dt>
        <dd>{fn.visibility}</dd>
        <dt>Arguments</dt>
        <dd>
          <code class="validator">{fn.args}</code>
        </dd>
        {fn.returns && (
          <>
            <dt>Returns</dt>
            <dd>
              <code class="validator">{fn.returns}</code>
            </dd>
          </>
        )}
      </dl>
      <form onSubmit={run} class="run-form">
        <label for="run-args">Arguments (Convex JSON)</label>
        <textarea
          id="run-args"
          class="editor short"
          spellcheck={false}
          value={args}
          onInput={(event) => setArgs((event.target as HTMLTextAreaElement).value)}
        />
        <details>
          <summary>Act as a user (optional)</summary>
          <label for="run-identity">Identity attributes (JSON with subject and issuer, or tokenIdentifier)</label>
          <textarea
            id="run-identity"
            class="editor short"
            spellcheck={false}
            placeholder={IDENTITY_PLACEHOLDER}
            value={identity}
            onInput={(event) => setIdentity((event.target as HTMLTextAreaElement).value)}
          />
        </details>
        <div class="modal-actions">
          <button type="submit" class="primary" disabled={busy}>{busy ? "Running…" : `Run ${fn.udfType}`}</button>
          <button type="button" class="ghost" onClick={() => navigate("logs", { fn: fn.path })}>See its logs</button>
        </div>
      </form>
      <ErrorNotice error={error} />
      {result && (
        <div class={`run-result ${result.ok ? "ok" : "failed"}`} aria-live="polite">
          <div class="run-status">
            <Badge kind={result.ok ? "success" : "failure"}>{result.ok ? "success" : "error"}</Badge>
            <span class="muted">{formatDuration(result.executionMs)}</span>
          </div>
          {result.ok
            ? (
              <div class="doc-tree result-value">
                <ValueTree
                  value={result.value}
                  links={{
                    idTables: result.idTables,
                    onOpen: (id, table) => navigate("data", { component: fn.componentPath, table, doc: id }),
                  }}
                />
              </div>
            )
            : <pre class="error-text">{result.errorMessage}</pre>}
          {result.logLines.length > 0 && (
            <>
              <h3>Logs</h3>
              <pre class="log-lines">{result.logLines.join("\n")}</pre>
            </>
          )}
        </div>
      )}
    </div>
  );
}
