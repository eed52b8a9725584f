/** @jsxImportSource preact */
/// <reference lib="dom" />
/**
 * The Logs page: a live tail of function executions and their console lines (a long poll on the server's execution
 * log), filterable by function, level and outcome. The tail keeps the newest {@link MAX_KEPT_ENTRIES} entries.
 */
import { useEffect, useState } from "preact/hooks";
import { get, messageOf } from "./api.ts";
import { Badge, componentLabel, Empty, ErrorNotice, formatDuration, formatTime, PageHead } from "./widgets.tsx";

interface LogEntry {
  cursor: number;
  udfType: string;
  componentPath: string;
  functionName: string;
  ok: boolean;
  errorMessage: string | null;
  logLines: string[];
  startedAtMs: number;
  executionTimeMs: number;
  requestId: string;
}

const MAX_KEPT_ENTRIES = 2_000;
const LEVELS = ["LOG", "INFO", "WARN", "ERROR", "DEBUG"];

/** `[LEVEL] text` → its level and text (LOG for lines without one). */
function splitLine(line: string): { level: string; text: string } {
  const match = /^\[([A-Z]+)\] ([\s\S]*)$/.exec(line);
  return match && LEVELS.includes(match[1]) ? { level: match[1], text: match[2] } : { level: "LOG", text: line };
}

export function LogsPage({ params }: { params: Record<string, string> }) {
  const [entries, setEntries] = useState<LogEntry[]>([]);
  const [error, setError] = useState<string | null>(null);
  const [paused, setPaused] = useState(false);
  const [fnFilter, setFnFilter] = useState(params.fn ?? "");
  const [level, setLevel] = useState("all");
  const [outcome, setOutcome] = useState(params.outcome ?? "all");

  useEffect(() => {
    if (paused) return;
    const controller = new AbortController();
    let cursor = entries.length > 0 ? entries[entries.length - 1].cursor : 0;
    (async () => {
      while (!controller.signal.aborted) {
        try {
          const answer = await get<{ entries: LogEntry[]; cursor: number }>(
            "logs",
            { cursor: String(cursor) },
            controller.signal,
          );
          cursor = answer.cursor;
          setError(null);
          if (answer.entries.length > 0) {
            setEntries((old) => [...old, ...answer.entries].slice(-MAX_KEPT_ENTRIES));
          }
        } catch (caught) {
          if (controller.signal.aborted) return;
          setError(messageOf(caught));
          await new Promise((resolve) => setTimeout(resolve, 2_000));
        }
      }
    })();
    return () => controller.abort();
  }, [paused]);

  const shown = entries.filter((entry) => {
    if (fnFilter && !entry.functionName.toLowerCase().includes(fnFilter.toLowerCase())) return false;
    if (outcome === "success" && !entry.ok) return false;
    if (outcome === "failure" && entry.ok) return false;
    if (level !== "all" && !entry.logLines.some((line) => splitLine(line).level === level)) return false;
    return true;
  }).reverse();

  return (
    <div class="page">
      <PageHead title="Logs" subtitle="Function executions and their console output, as they happen.">
        <span class={paused ? "live paused" : "live"}>
          <span class="live-dot" aria-hidden="true" /> {paused ? "Paused" : "Live"}
        </span>
        <button type="button" onClick={() => setPaused(!paused)}>{paused ? "Resume" : "Pause"}</button>
        <button type="button" class="ghost" onClick={() => setEntries((old) => old.slice(-1))}>Clear view</button>
      </PageHead>
      <div class="toolbar">
        <label>
          Function
          <input
            type="search"
            value={fnFilter}
            placeholder="e.g. messages:send"
            onInput={(event) => setFnFilter((event.target as HTMLInputElement).value)}
          />
        </label>
        <label>
          Level
          <select value={level} onChange={(event) => setLevel((event.target as HTMLSelectElement).value)}>
            <option value="all">All</option>
            {LEVELS.map((name) => <option key={name} value={name}>{name.toLowerCase()}</option>)}
          </select>
        </label>
        <label>
          Outcome
          <select value={outcome} onChange={(event) => setOutcome((event.target as HTMLSelectElement).value)}>
            <option value="all">All</option>
            <option value="success">Success</option>
            <option value="failure">Failure</option>
          </select>
        </label>
        <span class="muted">{shown.length} of {entries.length}</span>
      </div>
      <ErrorNotice error={error} />
      {shown.length === 0
        ? <Empty title="No executions yet">Run a function and it shows up here.</Empty>
        : (
          <ol class="log-list" aria-live="polite">
            {shown.map((entry) => (
              <li key={entry.cursor} class={entry.ok ? "log-entry" : "log-entry failed"}>
                <div class="log-head">
                  <time class="muted mono">{formatTime(entry.startedAtMs)}</time>
                  <Badge kind={entry.udfType}>{entry.udfType}</Badge>
                  <span class="fn-path">{entry.functionName}</span>
                  {entry.componentPath !== "" && <span class="muted small">{componentLabel(entry.componentPath)}</span>}
                  <Badge kind={entry.ok ? "success" : "failure"}>{entry.ok ? "success" : "failure"}</Badge>
                  <span class="muted">{formatDuration(entry.executionTimeMs)}</span>
                </div>
                {entry.logLines.length > 0 && (
                  <ul class="log-lines-list">
                    {entry.logLines.map((line, i) => {
                      const { level: lineLevel, text } = splitLine(line);
                      return (
                        <li key={i} class={`level-${lineLevel.toLowerCase()}`}>
                          <span class="level">{lineLevel.toLowerCase()}</span>
                          <span class="log-text">{text}</span>
                        </li>
                      );
                    })}
                  </ul>
                )}
                {entry.errorMessage && <pre class="error-text">{entry.errorMessage}</pre>}
              </li>
            ))}
          </ol>
        )}
    </div>
  );
}
