/** @jsxImportSource preact */
/// <reference lib="dom" />
/**
 * The Data page: tables of every component on the left, a page of documents on the right (any index, either order,
 * an optional filter on one field), a document view with every Convex type shown as it is, and insert, edit, delete
 * and clear. The page follows writes from other clients: it long-polls for commits and reloads the page it shows.
 */
import { useEffect, useMemo, useState } from "preact/hooks";
import { get, messageOf, post } from "./api.ts";
import {
  CompactValue,
  editableText,
  type IdLinks,
  type JsonValue,
  systemFieldsAround,
  ValueTree,
  wireText,
} from "./values.tsx";
import { Badge, componentLabel, Empty, ErrorNotice, formatCount, Modal, navigate, PageHead } from "./widgets.tsx";

interface TableSummary {
  componentPath: string;
  name: string;
  count: number;
  countCapped: boolean;
  indexes: { name: string; fields: string[]; ready: boolean }[];
}

type Doc = { [key: string]: JsonValue };

interface DocumentPage {
  documents: Doc[];
  idTables: Record<string, string>;
  cursor: string | null;
  isDone: boolean;
  scanned: number;
  snapshotTs: string;
}

const FILTER_PLACEHOLDER = '"alice"  ·  42  ·  {"$int64": "7"}';
const INT64_HINT = '{"$int64": "123"}';
const BYTES_HINT = '{"$bytes": "<base64>"}';
const PAGE_SIZES = [25, 50, 100, 250];
const MAX_COLUMNS = 24;
/** Live reloads are at most this frequent, whatever the write rate. */
const MIN_RELOAD_INTERVAL_MS = 400;

export function DataPage({ params }: { params: Record<string, string> }) {
  const [tables, setTables] = useState<TableSummary[] | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [search, setSearch] = useState("");
  const [refresh, setRefresh] = useState(0);
  useEffect(() => {
    get<TableSummary[]>("tables").then(setTables).catch((caught) => setError(messageOf(caught)));
  }, [refresh]);
  const component = params.component ?? "";
  const selected = tables?.find((table) => table.componentPath === component && table.name === params.table) ??
    (params.table ? undefined : tables?.[0]);
  const reloadTables = () => setRefresh((n) => n + 1);
  const shown = (tables ?? []).filter((table) => table.name.toLowerCase().includes(search.toLowerCase()));
  const groups = [...new Set(shown.map((table) => table.componentPath))];
  return (
    <div class="data-layout">
      <aside class="table-list" aria-label="Tables">
        <input
          type="search"
          placeholder="Filter tables"
          aria-label="Filter tables"
          value={search}
          onInput={(event) => setSearch((event.target as HTMLInputElement).value)}
        />
        {tables === null && !error && <p class="muted">Loading tables…</p>}
        {groups.map((group) => (
          <div key={group} class="table-group">
            <h3>{componentLabel(group)}</h3>
            <ul>
              {shown.filter((table) => table.componentPath === group).map((table) => {
                const active = selected === table;
                return (
                  <li key={table.name}>
                    <a
                      href={`#/data?${new URLSearchParams({ component: group, table: table.name })}`}
                      class={active ? "active" : ""}
                      aria-current={active ? "true" : undefined}
                    >
                      <span class="table-name">{table.name}</span>
                      <span class="count">{formatCount(table.count, table.countCapped)}</span>
                    </a>
                  </li>
                );
              })}
            </ul>
          </div>
        ))}
        {tables !== null && tables.length === 0 && <p class="muted">No tables yet.</p>}
      </aside>
      <section class="table-main">
        <ErrorNotice error={error} />
        {selected
          ? (
            <TableView
              key={`${selected.componentPath}/${selected.name}`}
              table={selected}
              openId={params.doc ?? null}
              onTablesChanged={reloadTables}
            />
          )
          : tables !== null && (
            <Empty title={params.table ? `No table "${params.table}"` : "This deployment has no data yet"}>
              Tables appear here once a mutation or an import writes to them.
            </Empty>
          )}
      </section>
    </div>
  );
}

function TableView(
  { table, openId, onTablesChanged }: { table: TableSummary; openId: string | null; onTablesChanged: () => void },
) {
  const [index, setIndex] = useState("by_creation_time");
  const [order, setOrder] = useState<"asc" | "desc">("desc");
  const [pageSize, setPageSize] = useState(50);
  const [filterField, setFilterField] = useState("");
  const [filterValue, setFilterValue] = useState("");
  const [appliedFilter, setAppliedFilter] = useState<{ field: string; value: string } | null>(null);
  /** cursors[i] starts page i (null: the first). */
  const [cursors, setCursors] = useState<(string | null)[]>([null]);
  /** The page shown, and which page number it is (it changes only once the next page has loaded). */
  const [page, setPage] = useState<(DocumentPage & { pageIndex: number }) | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [loading, setLoading] = useState(false);
  const [liveTick, setLiveTick] = useState(0);
  const [selectedIds, setSelectedIds] = useState<Set<string>>(new Set());
  const [dialog, setDialog] = useState<"insert" | "clear" | "delete" | null>(null);
  const pageIndex = cursors.length - 1;

  useEffect(() => {
    let canceled = false;
    setLoading(true);
    get<DocumentPage>("documents", {
      component: table.componentPath,
      table: table.name,
      index,
      order,
      limit: String(pageSize),
      cursor: cursors[pageIndex],
      filterField: appliedFilter?.field,
      filterValue: appliedFilter?.value,
    }).then((next) => {
      if (canceled) return;
      setPage({ ...next, pageIndex });
      setError(null);
    }).catch((caught) => !canceled && setError(messageOf(caught))).finally(() => !canceled && setLoading(false));
    return () => canceled = true;
  }, [table.name, table.componentPath, index, order, pageSize, cursors, appliedFilter, liveTick]);

  // Live: wait for a commit after the page's snapshot, then reload (throttled).
  const snapshotTs = page?.snapshotTs ?? null;
  useEffect(() => {
    if (snapshotTs === null) return;
    const controller = new AbortController();
    const startedMs = Date.now();
    get<{ ts: string }>("changes", { ts: snapshotTs }, controller.signal).then((answer) => {
      if (BigInt(answer.ts) <= BigInt(snapshotTs)) return setLiveTick((n) => n + 1);
      const waitMs = Math.max(0, MIN_RELOAD_INTERVAL_MS - (Date.now() - startedMs));
      setTimeout(() => {
        if (controller.signal.aborted) return;
        setLiveTick((n) => n + 1);
        // The counts too (the server recounts a written table at most every few seconds).
        onTablesChanged();
      }, waitMs);
    }).catch(() => {
      if (!controller.signal.aborted) setTimeout(() => setLiveTick((n) => n + 1), 2_000);
    });
    return () => controller.abort();
  }, [snapshotTs]);

  const restart = () => {
    setCursors([null]);
    setSelectedIds(new Set());
  };
  const columns = useMemo(() => columnsOf(page?.documents ?? []), [page]);
  const links: IdLinks = {
    idTables: page?.idTables ?? {},
    onOpen: (id, target) => navigate("data", { component: table.componentPath, table: target, doc: id }),
  };
  const afterWrite = () => {
    setLiveTick((n) => n + 1);
    onTablesChanged();
  };
  const toggle = (id: string) => {
    const next = new Set(selectedIds);
    if (next.has(id)) next.delete(id);
    else next.add(id);
    setSelectedIds(next);
  };

  return (
    <div class="table-view">
      <PageHead
        title={table.name}
        subtitle={`${componentLabel(table.componentPath)} · ${formatCount(table.count, table.countCapped)} documents`}
      >
        <button type="button" class="primary" onClick={() => setDialog("insert")}>+ Add document</button>
        {selectedIds.size > 0 && (
          <button type="button" class="danger" onClick={() => setDialog("delete")}>
            Delete {selectedIds.size} selected
          </button>
        )}
        <button type="button" class="ghost danger-text" onClick={() => setDialog("clear")}>Clear table</button>
      </PageHead>
      <form
        class="toolbar"
        onSubmit={(event) => {
          event.preventDefault();
          setAppliedFilter(
            filterField.trim() === "" ? null : { field: filterField.trim(), value: wireText(filterValue) },
          );
          restart();
        }}
      >
        <label>
          Index
          <select
            value={index}
            onChange={(event) => {
              setIndex((event.target as HTMLSelectElement).value);
              restart();
            }}
          >
            {table.indexes.filter((candidate) => candidate.ready).map((candidate) => (
              <option key={candidate.name} value={candidate.name}>
                {candidate.name}
                {candidate.fields.length > 0 ? ` (${candidate.fields.join(", ")})` : ""}
              </option>
            ))}
          </select>
        </label>
        <label>
          Order
          <select
            value={order}
            onChange={(event) => {
              setOrder((event.target as HTMLSelectElement).value as "asc" | "desc");
              restart();
            }}
          >
            <option value="desc">Descending</option>
            <option value="asc">Ascending</option>
          </select>
        </label>
        <label>
          Filter field
          <input
            value={filterField}
            placeholder="e.g. author or address.city"
            onInput={(event) => setFilterField((event.target as HTMLInputElement).value)}
          />
        </label>
        <label>
          equals (Convex JSON)
          <input
            value={filterValue}
            placeholder={FILTER_PLACEHOLDER}
            onInput={(event) => setFilterValue((event.target as HTMLInputElement).value)}
          />
        </label>
        <button type="submit">Apply</button>
        {appliedFilter && (
          <button
            type="button"
            class="ghost"
            onClick={() => {
              setAppliedFilter(null);
              setFilterField("");
              setFilterValue("");
              restart();
            }}
          >
            Clear filter
          </button>
        )}
        <span class="live" title="This view reloads when anything commits">
          <span class="live-dot" aria-hidden="true" /> Live
        </span>
      </form>
      <ErrorNotice error={error} />
      <div class="grid-wrap" aria-busy={loading}>
        <table class="grid" aria-label={`Documents of ${table.name}`}>
          <thead>
            <tr>
              <th class="check-col">
                <span class="sr-only">Select</span>
              </th>
              {columns.map((column) => <th key={column} scope="col">{column}</th>)}
            </tr>
          </thead>
          <tbody>
            {(page?.documents ?? []).map((document) => {
              const id = document._id as string;
              return (
                <tr
                  key={id}
                  tabIndex={0}
                  data-id={id}
                  onClick={() => navigate("data", { component: table.componentPath, table: table.name, doc: id })}
                  onKeyDown={(event) => {
                    if (event.key === "Enter") {
                      navigate("data", { component: table.componentPath, table: table.name, doc: id });
                    }
                  }}
                >
                  <td class="check-col" onClick={(event) => event.stopPropagation()}>
                    <input
                      type="checkbox"
                      aria-label={`Select ${id}`}
                      checked={selectedIds.has(id)}
                      onChange={() => toggle(id)}
                    />
                  </td>
                  {columns.map((column) => (
                    <td key={column}>
                      {column === "_creationTime" && typeof document[column] === "number"
                        ? <span class="v-time">{new Date(document[column] as number).toISOString()}</span>
                        : column === "_id"
                        ? <span class="v-id-self">{id}</span>
                        : <CompactValue value={document[column]} links={links} />}
                    </td>
                  ))}
                </tr>
              );
            })}
          </tbody>
        </table>
        {page && page.documents.length === 0 && (
          <Empty title={appliedFilter ? "No documents match on this page" : "No documents"}>
            {appliedFilter && !page.isDone ? "Go to the next page to keep searching." : undefined}
          </Empty>
        )}
      </div>
      <nav class="pager" aria-label="Pages">
        <button
          type="button"
          disabled={pageIndex === 0}
          onClick={() => setCursors(cursors.slice(0, -1))}
        >
          ← Previous
        </button>
        <span class="page-number" data-page={page ? page.pageIndex + 1 : 0}>
          Page {page ? page.pageIndex + 1 : pageIndex + 1}
          {page ? ` · ${page.documents.length} shown` : ""}
          {page && appliedFilter ? ` · ${page.scanned} scanned` : ""}
        </span>
        <button
          type="button"
          disabled={!page || page.isDone || page.cursor === null}
          onClick={() => page?.cursor && setCursors([...cursors, page.cursor])}
        >
          Next →
        </button>
        <label class="page-size">
          Rows
          <select
            value={pageSize}
            onChange={(event) => {
              setPageSize(Number((event.target as HTMLSelectElement).value));
              restart();
            }}
          >
            {PAGE_SIZES.map((size) => <option key={size} value={size}>{size}</option>)}
          </select>
        </label>
      </nav>
      {openId && (
        <DocumentDialog
          componentPath={table.componentPath}
          id={openId}
          onClose={() => navigate("data", { component: table.componentPath, table: table.name })}
          onChanged={afterWrite}
        />
      )}
      {dialog === "insert" && <InsertDialog table={table} onClose={() => setDialog(null)} onInserted={afterWrite} />}
      {dialog === "clear" && <ClearDialog table={table} onClose={() => setDialog(null)} onCleared={afterWrite} />}
      {dialog === "delete" && (
        <DeleteDialog
          table={table}
          ids={[...selectedIds]}
          onClose={() => setDialog(null)}
          onDeleted={() => {
            setSelectedIds(new Set());
            afterWrite();
          }}
        />
      )}
    </div>
  );
}

/** `_id` first, `_creationTime` last, other fields in the order they first appear. */
function columnsOf(documents: Doc[]): string[] {
  const seen = new Set<string>();
  for (const document of documents) for (const key of Object.keys(document)) seen.add(key);
  seen.delete("_id");
  seen.delete("_creationTime");
  return ["_id", ...[...seen].slice(0, MAX_COLUMNS), "_creationTime"];
}

function DocumentDialog(
  { componentPath, id, onClose, onChanged }: {
    componentPath: string;
    id: string;
    onClose: () => void;
    onChanged: () => void;
  },
) {
  const [found, setFound] = useState<{ document: Doc; table: string; idTables: Record<string, string> } | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [editing, setEditing] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const [reload, setReload] = useState(0);
  useEffect(() => {
    get<{ document: Doc; table: string; idTables: Record<string, string> }>("document", {
      component: componentPath,
      id,
    })
      .then((next) => {
        setFound(next);
        setError(null);
      })
      .catch((caught) => setError(messageOf(caught)));
  }, [id, reload]);
  const links: IdLinks = {
    idTables: found?.idTables ?? {},
    onOpen: (target, table) => navigate("data", { component: componentPath, table, doc: target }),
  };
  const save = async () => {
    setBusy(true);
    try {
      await post("documents/replace", { componentPath, id, document: wireText(editing ?? "") });
      setEditing(null);
      setError(null);
      setReload((n) => n + 1);
      onChanged();
    } catch (caught) {
      setError(messageOf(caught));
    } finally {
      setBusy(false);
    }
  };
  const remove = async () => {
    setBusy(true);
    try {
      await post("documents/delete", { componentPath, ids: [id] });
      onChanged();
      onClose();
    } catch (caught) {
      setError(messageOf(caught));
      setBusy(false);
    }
  };
  return (
    <Modal title={found ? `${found.table} · ${id}` : id} onClose={onClose} wide>
      <ErrorNotice error={error} />
      {found && editing === null && (
        <>
          <div class="doc-tree">
            <ValueTree value={systemFieldsAround(found.document)} links={links} />
          </div>
          <div class="modal-actions">
            <button type="button" class="primary" onClick={() => setEditing(editableText(found.document))}>
              Edit
            </button>
            <button type="button" class="danger" disabled={busy} onClick={remove}>Delete</button>
          </div>
        </>
      )}
      {found && editing !== null && (
        <>
          <p class="muted small">
            JSON, with int64 as <code>{INT64_HINT}</code> and bytes as <code>{BYTES_HINT}</code>. <code>_id</code> and
            {" "}
            <code>_creationTime</code> stay as they are.
          </p>
          <textarea
            class="editor"
            aria-label="Document JSON"
            spellcheck={false}
            value={editing}
            onInput={(event) => setEditing((event.target as HTMLTextAreaElement).value)}
          />
          <div class="modal-actions">
            <button type="button" class="primary" disabled={busy} onClick={save}>Save</button>
            <button type="button" class="ghost" onClick={() => setEditing(null)}>Cancel</button>
          </div>
        </>
      )}
    </Modal>
  );
}

function InsertDialog(
  { table, onClose, onInserted }: { table: TableSummary; onClose: () => void; onInserted: () => void },
) {
  const [text, setText] = useState("{\n  \n}");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const insert = async () => {
    setBusy(true);
    try {
      const { id } = await post<{ id: string }>("documents/insert", {
        componentPath: table.componentPath,
        table: table.name,
        document: wireText(text),
      });
      onInserted();
      navigate("data", { component: table.componentPath, table: table.name, doc: id });
      onClose();
    } catch (caught) {
      setError(messageOf(caught));
    } finally {
      setBusy(false);
    }
  };
  return (
    <Modal title={`Add a document to ${table.name}`} onClose={onClose} wide>
      <p class="muted small">
        JSON, with int64 as <code>{INT64_HINT}</code> and bytes as{" "}
        <code>{BYTES_HINT}</code>. The schema validates it as it validates a mutation's insert.
      </p>
      <textarea
        class="editor"
        aria-label="New document JSON"
        spellcheck={false}
        value={text}
        onInput={(event) => setText((event.target as HTMLTextAreaElement).value)}
      />
      <ErrorNotice error={error} />
      <div class="modal-actions">
        <button type="button" class="primary" disabled={busy} onClick={insert}>Insert</button>
        <button type="button" class="ghost" onClick={onClose}>Cancel</button>
      </div>
    </Modal>
  );
}

function ClearDialog(
  { table, onClose, onCleared }: { table: TableSummary; onClose: () => void; onCleared: () => void },
) {
  const [typed, setTyped] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [progress, setProgress] = useState<string | null>(null);
  const clear = async () => {
    setError(null);
    let total = 0;
    try {
      for (;;) {
        const result = await post<{ deleted: number; done: boolean }>("tables/clear", {
          componentPath: table.componentPath,
          table: table.name,
        });
        total += result.deleted;
        setProgress(`${formatCount(total)} deleted…`);
        if (result.done) break;
      }
      onCleared();
      onClose();
    } catch (caught) {
      setError(messageOf(caught));
    }
  };
  return (
    <Modal title={`Clear ${table.name}?`} onClose={onClose}>
      <p>
        This deletes all {formatCount(table.count, table.countCapped)} documents of{" "}
        <strong>{table.name}</strong>. The table and its indexes stay. Type the table's name to confirm.
      </p>
      <input
        aria-label="Table name to confirm"
        value={typed}
        onInput={(event) => setTyped((event.target as HTMLInputElement).value)}
      />
      <ErrorNotice error={error} />
      {progress && <p class="muted">{progress}</p>}
      <div class="modal-actions">
        <button type="button" class="danger" disabled={typed !== table.name} onClick={clear}>Clear table</button>
        <button type="button" class="ghost" onClick={onClose}>Cancel</button>
      </div>
    </Modal>
  );
}

function DeleteDialog(
  { table, ids, onClose, onDeleted }: {
    table: TableSummary;
    ids: string[];
    onClose: () => void;
    onDeleted: () => void;
  },
) {
  const [error, setError] = useState<string | null>(null);
  const remove = async () => {
    try {
      await post("documents/delete", { componentPath: table.componentPath, ids });
      onDeleted();
      onClose();
    } catch (caught) {
      setError(messageOf(caught));
    }
  };
  return (
    <Modal title={`Delete ${ids.length} document${ids.length === 1 ? "" : "s"}?`} onClose={onClose}>
      <p>
        From <strong>{table.name}</strong>: <Badge kind="muted">{ids.length}</Badge> selected. This cannot be undone.
      </p>
      <ErrorNotice error={error} />
      <div class="modal-actions">
        <button type="button" class="danger" onClick={remove}>Delete</button>
        <button type="button" class="ghost" onClick={onClose}>Cancel</button>
      </div>
    </Modal>
  );
}
