/** @jsxImportSource preact */
/// <reference lib="dom" />
/** The Overview page: what runs here, how big it is, how busy it is, and what failed lately. */
import { useEffect, useState } from "preact/hooks";
import { get, messageOf } from "./api.ts";
import {
  Badge,
  componentLabel,
  Empty,
  ErrorNotice,
  formatAgo,
  formatBytes,
  formatCount,
  formatDuration,
  PageHead,
} from "./widgets.tsx";

interface Overview {
  version: string;
  uptimeMs: number;
  database: { kind: string; sizeBytes: number | null };
  urls: { cloud: string; site: string };
  deployed: boolean;
  components: string[];
  tables: { componentPath: string; name: string; count: number; countCapped: boolean }[];
  functions: { query: number; mutation: number; action: number; httpRoutes: number };
  rates: { windowMs: number; executions: number; failures: number };
  recentFailures: { functionName: string; errorMessage: string | null; startedAtMs: number; udfType: string }[];
}

const REFRESH_MS = 5_000;
const DATABASE_NAMES: Record<string, string> = { sqlite: "SQLite", postgres: "PostgreSQL", mysql: "MySQL" };

export function OverviewPage() {
  const [overview, setOverview] = useState<Overview | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    let stopped = false;
    const load = () =>
      get<Overview>("overview").then((next) => {
        if (!stopped) {
          setOverview(next);
          setError(null);
        }
      }).catch((caught) => !stopped && setError(messageOf(caught)));
    load();
    const timer = setInterval(load, REFRESH_MS);
    return () => {
      stopped = true;
      clearInterval(timer);
    };
  }, []);
  if (!overview) return error ? <ErrorNotice error={error} /> : <p class="muted">Loading…</p>;
  const totalDocuments = overview.tables.reduce((sum, table) => sum + table.count, 0);
  const { functions, rates } = overview;
  const windowMinutes = rates.windowMs / 60_000;
  return (
    <div class="page">
      <PageHead title="Overview" subtitle={`${overview.version} · ${overview.urls.cloud}`} />
      <ErrorNotice error={error} />
      <div class="cards">
        <Card label="Uptime" value={formatDuration(overview.uptimeMs)} />
        <Card
          label="Database"
          value={DATABASE_NAMES[overview.database.kind] ?? overview.database.kind}
          detail={overview.database.sizeBytes === null
            ? "size: see the database server"
            : formatBytes(overview.database.sizeBytes)}
        />
        <Card
          label="Documents"
          value={formatCount(totalDocuments)}
          detail={`${overview.tables.length} table${overview.tables.length === 1 ? "" : "s"}`}
        />
        <Card
          label="Functions"
          value={String(functions.query + functions.mutation + functions.action)}
          detail={`${functions.query} queries · ${functions.mutation} mutations · ${functions.action} actions · ${functions.httpRoutes} HTTP routes`}
        />
        <Card
          label={`Calls · ${windowMinutes} min`}
          value={formatCount(rates.executions)}
          detail={`${(rates.executions / (rates.windowMs / 1000)).toFixed(2)} per second`}
        />
        <Card
          label={`Errors · ${windowMinutes} min`}
          value={formatCount(rates.failures)}
          detail={rates.executions > 0
            ? `${((rates.failures / rates.executions) * 100).toFixed(1)} % of calls`
            : "no calls"}
          tone={rates.failures > 0 ? "bad" : "good"}
        />
      </div>
      {overview.components.length > 0 && (
        <p class="chips">
          <span class="muted">Components</span>
          {overview.components.map((path) => <code key={path}>{path}</code>)}
        </p>
      )}
      {!overview.deployed && (
        <div class="notice info">
          No code is deployed yet. Run <code>npx convex deploy</code> with <code>CONVEX_SELF_HOSTED_URL</code> set to
          {" "}
          <code>{overview.urls.cloud}</code> and the admin key.
        </div>
      )}
      <div class="two-col">
        <section class="panel">
          <h2>Tables</h2>
          {overview.tables.length === 0 ? <Empty title="No tables yet" /> : (
            <table class="simple">
              <thead>
                <tr>
                  <th scope="col">Table</th>
                  <th scope="col">Component</th>
                  <th scope="col" class="num">Documents</th>
                </tr>
              </thead>
              <tbody>
                {overview.tables.map((table) => (
                  <tr key={`${table.componentPath}/${table.name}`}>
                    <td>
                      <a href={`#/data?${new URLSearchParams({ component: table.componentPath, table: table.name })}`}>
                        {table.name}
                      </a>
                    </td>
                    <td class="muted">{componentLabel(table.componentPath)}</td>
                    <td class="num">{formatCount(table.count, table.countCapped)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          )}
        </section>
        <section class="panel">
          <div class="panel-head">
            <h2>Recent failures</h2>
            <a href="#/logs?outcome=failure">All in Logs →</a>
          </div>
          {overview.recentFailures.length === 0 ? <Empty title="No failures" /> : (
            <ul class="failures">
              {overview.recentFailures.map((failure, i) => (
                <li key={i}>
                  <div>
                    <Badge kind={failure.udfType}>{failure.udfType}</Badge> <strong>{failure.functionName}</strong>
                    <span class="muted">· {formatAgo(failure.startedAtMs)}</span>
                  </div>
                  <pre class="error-text">{failure.errorMessage}</pre>
                </li>
              ))}
            </ul>
          )}
        </section>
      </div>
    </div>
  );
}

function Card({ label, value, detail, tone }: { label: string; value: string; detail?: string; tone?: string }) {
  return (
    <div class={`card ${tone ?? ""}`}>
      <div class="card-label">{label}</div>
      <div class="card-value">{value}</div>
      {detail && <div class="card-detail">{detail}</div>}
    </div>
  );
}
