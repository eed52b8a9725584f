/** @jsxImportSource preact */
/// <reference lib="dom" />
/** The Schedules, Files, Environment and Schema pages. */
import { useEffect, useState } from "preact/hooks";
import { get, messageOf, post } from "./api.ts";
import { CompactValue, type JsonValue } from "./values.tsx";
import { Badge, componentLabel, Empty, ErrorNotice, formatAgo, formatBytes, formatTime, PageHead } from "./widgets.tsx";

/** Loads `path` now and whenever `reload` is called; refreshes every `everyMs` when given. */
function useLoad<T>(path: string, everyMs?: number) {
  const [value, setValue] = useState<T | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let stopped = false;
    const load = () =>
      get<T>(path).then((next) => {
        if (!stopped) {
          setValue(next);
          setError(null);
        }
      }).catch((caught) => !stopped && setError(messageOf(caught)));
    load();
    const timer = everyMs ? setInterval(load, everyMs) : undefined;
    return () => {
      stopped = true;
      clearInterval(timer);
    };
  }, [tick]);
  return { value, error, setError, reload: () => setTick((n) => n + 1) };
}

interface Job {
  id: string;
  componentPath: string;
  name: string;
  /** null when larger than the list shows (see `argsBytes`). */
  args: JsonValue;
  argsBytes: number;
  scheduledTimeMs: number;
  completedTimeMs: number | null;
  state: string;
  error: string | null;
}

interface Cron {
  componentPath: string;
  identifier: string;
  name: string;
  schedule: JsonValue;
  nextRunMs: number | null;
}

const JOB_STATES = ["all", "pending", "inProgress", "success", "failed", "canceled"];

export function SchedulesPage() {
  const { value, error, setError, reload } = useLoad<{ jobs: Job[]; crons: Cron[] }>("schedules", 3_000);
  const [state, setState] = useState("all");
  const cancel = async (job: Job) => {
    try {
      await post("schedules/cancel", { id: job.id, componentPath: job.componentPath });
      reload();
    } catch (caught) {
      setError(messageOf(caught));
    }
  };
  const jobs = (value?.jobs ?? []).filter((job) => state === "all" || job.state === state);
  return (
    <div class="page">
      <PageHead title="Schedules" subtitle="Functions scheduled with ctx.scheduler, and the cron jobs of crons.ts." />
      <ErrorNotice error={error} onClose={() => setError(null)} />
      <section class="panel">
        <div class="panel-head">
          <h2>Scheduled functions</h2>
          <label>
            State
            <select value={state} onChange={(event) => setState((event.target as HTMLSelectElement).value)}>
              {JOB_STATES.map((name) => <option key={name} value={name}>{name}</option>)}
            </select>
          </label>
        </div>
        {jobs.length === 0 ? <Empty title="Nothing scheduled" /> : (
          <div class="grid-wrap">
            <table class="simple">
              <thead>
                <tr>
                  <th scope="col">Function</th>
                  <th scope="col">Arguments</th>
                  <th scope="col">Scheduled for</th>
                  <th scope="col">State</th>
                  <th scope="col">
                    <span class="sr-only">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {jobs.map((job) => (
                  <tr key={job.id} data-job={job.id}>
                    <td>
                      <span class="fn-path">{job.name}</span>
                      {job.componentPath !== "" && <div class="muted small">{componentLabel(job.componentPath)}</div>}
                    </td>
                    <td>
                      {job.args === null
                        ? <span class="muted">{formatBytes(job.argsBytes)} of arguments</span>
                        : <CompactValue value={job.args} />}
                    </td>
                    <td>
                      <div>{formatTime(job.scheduledTimeMs)}</div>
                      <div class="muted small">{formatAgo(job.scheduledTimeMs)}</div>
                    </td>
                    <td>
                      <Badge kind={`state-${job.state}`}>{job.state}</Badge>
                      {job.error && <div class="error-text small">{job.error}</div>}
                    </td>
                    <td>
                      {(job.state === "pending" || job.state === "inProgress") && (
                        <button
                          type="button"
                          class="small danger"
                          onClick={() => cancel(job)}
                        >
                          Cancel
                        </button>
                      )}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </section>
      <section class="panel">
        <h2>Cron jobs</h2>
        {(value?.crons ?? []).length === 0 ? <Empty title="No cron jobs deployed" /> : (
          <table class="simple">
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Function</th>
                <th scope="col">Schedule</th>
                <th scope="col">Next run</th>
              </tr>
            </thead>
            <tbody>
              {value!.crons.map((cron) => (
                <tr key={`${cron.componentPath}/${cron.identifier}`}>
                  <td>{cron.identifier}</td>
                  <td class="fn-path">{cron.name}</td>
                  <td>
                    <code>{describeSchedule(cron.schedule)}</code>
                  </td>
                  <td>
                    {cron.nextRunMs === null ? "never" : `${formatTime(cron.nextRunMs)} (${formatAgo(cron.nextRunMs)})`}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>
    </div>
  );
}

function describeSchedule(schedule: JsonValue): string {
  if (schedule === null || typeof schedule !== "object" || Array.isArray(schedule)) return JSON.stringify(schedule);
  const { type, ...rest } = schedule as Record<string, JsonValue>;
  if (type === "cron") return String(rest.cron);
  return `${type} ${Object.entries(rest).map(([key, value]) => `${key}=${value}`).join(" ")}`;
}

interface FileEntry {
  componentPath: string;
  storageId: string;
  sizeBytes: number;
  contentType: string | null;
  creationTimeMs: number;
}

export function FilesPage() {
  const { value, error, setError, reload } = useLoad<FileEntry[]>("files");
  const [uploading, setUploading] = useState(false);
  const upload = async (event: Event) => {
    const input = event.target as HTMLInputElement;
    const file = input.files?.[0];
    if (!file) return;
    setUploading(true);
    try {
      const { uploadUrl } = await post<{ uploadUrl: string }>("files/upload_url");
      const response = await fetch(uploadUrl, {
        method: "POST",
        body: file,
        headers: { "Content-Type": file.type || "application/octet-stream" },
      });
      if (!response.ok) {
        const body = await response.json().catch(() => ({})) as { message?: string };
        throw new Error(body.message ?? `Upload failed with HTTP ${response.status}`);
      }
      input.value = "";
      reload();
    } catch (caught) {
      setError(messageOf(caught));
    } finally {
      setUploading(false);
    }
  };
  const remove = async (file: FileEntry) => {
    try {
      await post("files/delete", { storageId: file.storageId, componentPath: file.componentPath });
      reload();
    } catch (caught) {
      setError(messageOf(caught));
    }
  };
  return (
    <div class="page">
      <PageHead title="Files" subtitle="Files in storage (ctx.storage), newest first.">
        <label class={uploading ? "button primary disabled" : "button primary"}>
          {uploading ? "Uploading…" : "Upload a file"}
          <input type="file" class="sr-only" aria-label="Upload a file" onChange={upload} disabled={uploading} />
        </label>
      </PageHead>
      <ErrorNotice error={error} onClose={() => setError(null)} />
      {value !== null && value.length === 0 ? <Empty title="No files stored" /> : (
        <div class="grid-wrap">
          <table class="simple">
            <thead>
              <tr>
                <th scope="col">Storage ID</th>
                <th scope="col">Type</th>
                <th scope="col" class="num">Size</th>
                <th scope="col">Uploaded</th>
                <th scope="col">
                  <span class="sr-only">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {(value ?? []).map((file) => (
                <tr key={file.storageId} data-file={file.storageId}>
                  <td class="mono small">
                    {file.storageId}
                    {file.componentPath !== "" && <div class="muted">{componentLabel(file.componentPath)}</div>}
                  </td>
                  <td>{file.contentType ?? <span class="muted">unknown</span>}</td>
                  <td class="num">{formatBytes(file.sizeBytes)}</td>
                  <td title={formatTime(file.creationTimeMs)}>{formatAgo(file.creationTimeMs)}</td>
                  <td class="actions">
                    <a class="button small" href={`/api/storage/${file.storageId}`} download>Download</a>
                    <button type="button" class="small danger" onClick={() => remove(file)}>Delete</button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </div>
  );
}

interface Variable {
  name: string;
  value: string;
}

export function EnvironmentPage() {
  const { value, error, setError, reload } = useLoad<Variable[]>("env");
  const [editing, setEditing] = useState<Variable | null>(null);
  const [name, setName] = useState("");
  const [newValue, setNewValue] = useState("");
  const change = async (changes: { name: string; value: string | null }[]) => {
    try {
      await post("env", { changes });
      setError(null);
      reload();
      return true;
    } catch (caught) {
      setError(messageOf(caught));
      return false;
    }
  };
  return (
    <div class="page">
      <PageHead
        title="Environment variables"
        subtitle="Functions read these through process.env. A change applies to the next call."
      />
      <ErrorNotice error={error} onClose={() => setError(null)} />
      <form
        class="toolbar"
        onSubmit={async (event) => {
          event.preventDefault();
          if (await change([{ name: name.trim(), value: newValue }])) {
            setName("");
            setNewValue("");
          }
        }}
      >
        <label>
          Name
          <input
            value={name}
            placeholder="API_BASE_URL"
            onInput={(event) => setName((event.target as HTMLInputElement).value)}
            required
          />
        </label>
        <label class="grow">
          Value
          <input value={newValue} onInput={(event) => setNewValue((event.target as HTMLInputElement).value)} />
        </label>
        <button type="submit" class="primary">Add variable</button>
      </form>
      {value !== null && value.length === 0 ? <Empty title="No environment variables" /> : (
        <div class="grid-wrap">
          <table class="simple env-table">
            <thead>
              <tr>
                <th scope="col">Name</th>
                <th scope="col">Value</th>
                <th scope="col">
                  <span class="sr-only">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {(value ?? []).map((variable) => (
                <tr key={variable.name} data-env={variable.name}>
                  <td class="mono">{variable.name}</td>
                  <td class="mono">
                    {editing?.name === variable.name
                      ? (
                        <input
                          aria-label={`New value of ${variable.name}`}
                          value={editing.value}
                          onInput={(event) =>
                            setEditing({ name: variable.name, value: (event.target as HTMLInputElement).value })}
                        />
                      )
                      : variable.value}
                  </td>
                  <td class="actions">
                    {editing?.name === variable.name
                      ? (
                        <>
                          <button
                            type="button"
                            class="small primary"
                            onClick={async () => (await change([editing])) && setEditing(null)}
                          >
                            Save
                          </button>
                          <button type="button" class="small ghost" onClick={() => setEditing(null)}>Cancel</button>
                        </>
                      )
                      : (
                        <>
                          <button type="button" class="small" onClick={() => setEditing({ ...variable })}>Edit</button>
                          <button
                            type="button"
                            class="small danger"
                            onClick={() => change([{ name: variable.name, value: null }])}
                          >
                            Delete
                          </button>
                        </>
                      )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </div>
  );
}

interface SchemaNamespace {
  componentPath: string;
  schemaValidation: boolean;
  tables: {
    name: string;
    documentType: string | null;
    indexes: { name: string; fields: string[]; ready: boolean }[];
    searchIndexes: { name: string; searchField: string; filterFields: string[] }[];
  }[];
}

export function SchemaPage() {
  const { value, error } = useLoad<SchemaNamespace[]>("schema", 5_000);
  return (
    <div class="page">
      <PageHead title="Schema and indexes" subtitle="The pushed schema, its indexes and their backfill state." />
      <ErrorNotice error={error} />
      {(value ?? []).map((namespace) => (
        <section class="panel" key={namespace.componentPath}>
          <div class="panel-head">
            <h2>{componentLabel(namespace.componentPath)}</h2>
            <Badge kind={namespace.schemaValidation ? "success" : "muted"}>
              {namespace.schemaValidation ? "schema enforced" : "no schema validation"}
            </Badge>
          </div>
          {namespace.tables.length === 0
            ? <Empty title="No tables" />
            : namespace.tables.map((table) => (
              <div class="schema-table" key={table.name}>
                <h3>{table.name}</h3>
                <pre class="validator-block">{table.documentType ?? "any document (no validator)"}</pre>
                <ul class="index-list">
                  {table.indexes.map((index) => (
                    <li key={index.name}>
                      <span class="mono">{index.name}</span>
                      <span class="muted">
                        ({[...index.fields, "_creationTime"].filter((f, i, all) => all.indexOf(f) === i).join(
                          ", ",
                        )})
                      </span>{" "}
                      <Badge kind={index.ready ? "success" : "warn"}>{index.ready ? "ready" : "backfilling"}</Badge>
                    </li>
                  ))}
                  {table.searchIndexes.map((index) => (
                    <li key={index.name}>
                      <span class="mono">{index.name}</span> <Badge kind="muted">search</Badge>
                      <span class="muted">
                        on {index.searchField}
                        {index.filterFields.length > 0 ? `, filters: ${index.filterFields.join(", ")}` : ""}
                      </span>
                    </li>
                  ))}
                </ul>
              </div>
            ))}
        </section>
      ))}
    </div>
  );
}

interface BackupsState {
  exports: boolean;
  scheduled: boolean;
  dir: string | null;
  files: { name: string; snapshotTs: string; sizeBytes: number }[];
}

/** Nanosecond timestamps (decimal text) to milliseconds. */
function tsToMs(ts: string): number {
  return Number(BigInt(ts) / 1_000_000n);
}

export function BackupsPage() {
  const { value, error, setError, reload } = useLoad<BackupsState>("backups");
  const [includeStorage, setIncludeStorage] = useState(false);
  const [busy, setBusy] = useState<string | null>(null);
  const exportNow = async () => {
    setBusy("Preparing the snapshot…");
    try {
      const { ts } = await post<{ ts: string }>("backups/export", { includeStorage });
      // A plain navigation: the browser streams the ZIP to a file as the server writes it.
      location.href = `/dashboard/api/backups/export/${ts}`;
    } catch (caught) {
      setError(messageOf(caught));
    } finally {
      setBusy(null);
    }
  };
  const backupNow = async () => {
    setBusy("Taking a backup…");
    try {
      const { name } = await post<{ name: string | null }>("backups/now");
      if (name === null) setError("Nothing changed since the last backup, so none was taken.");
      reload();
    } catch (caught) {
      setError(messageOf(caught));
    } finally {
      setBusy(null);
    }
  };
  return (
    <div class="page">
      <PageHead
        title="Backups"
        subtitle="Snapshots of every table (and optionally every file) in the ZIP layout npx convex import reads."
      />
      <ErrorNotice error={error} onClose={() => setError(null)} />
      <section class="panel">
        <h2>Download a snapshot now</h2>
        <p class="muted">
          A consistent snapshot at this moment, streamed as it is written; writes go on meanwhile. Restore it with{" "}
          <code>npx convex import --replace-all snapshot.zip</code>.
        </p>
        <div class="toolbar">
          <label class="inline-check">
            <input
              type="checkbox"
              checked={includeStorage}
              onChange={(event) => setIncludeStorage((event.target as HTMLInputElement).checked)}
            />
            Include stored files
          </label>
          <button type="button" class="primary" disabled={busy !== null || !value?.exports} onClick={exportNow}>
            Download snapshot
          </button>
          {busy && <span class="muted">{busy}</span>}
        </div>
      </section>
      <section class="panel">
        <div class="panel-head">
          <h2>Scheduled backups</h2>
          {value?.scheduled && <button type="button" disabled={busy !== null} onClick={backupNow}>Back up now</button>}
        </div>
        {value && !value.scheduled && (
          <p class="muted">
            Off. Start the server with <code>--backup-every 6h</code> to keep rotating snapshot files.
          </p>
        )}
        {value?.scheduled && value.files.length === 0 && <Empty title="No backup taken yet" />}
        {value?.scheduled && value.files.length > 0 && (
          <div class="grid-wrap">
            <table class="simple">
              <thead>
                <tr>
                  <th scope="col">File</th>
                  <th scope="col">Snapshot of</th>
                  <th scope="col" class="num">Size</th>
                  <th scope="col">
                    <span class="sr-only">Actions</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {value.files.map((file) => (
                  <tr key={file.name}>
                    <td class="mono small">{file.name}</td>
                    <td>{formatTime(tsToMs(file.snapshotTs))}</td>
                    <td class="num">{formatBytes(file.sizeBytes)}</td>
                    <td class="actions">
                      <a class="button small" href={`/dashboard/api/backups/file/${encodeURIComponent(file.name)}`}>
                        Download
                      </a>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
        {value?.dir && <p class="muted small">Folder: {value.dir}</p>}
      </section>
    </div>
  );
}
