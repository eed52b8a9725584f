/** @jsxImportSource preact */
/// <reference lib="dom" />
/**
 * The dashboard app: sign-in, then a shell with a navigation bar and one page per route. Routes live in the URL's
 * hash (`#/data?table=messages`), so a page can be bookmarked and the back button works.
 */
import { render } from "preact";
import { useEffect, useState } from "preact/hooks";
import { ApiError, get, messageOf, post, whenSignedOut } from "./api.ts";
import { DataPage } from "./data_page.tsx";
import { FunctionsPage } from "./functions_page.tsx";
import { LogsPage } from "./logs_page.tsx";
import { OverviewPage } from "./overview_page.tsx";
import { BackupsPage, EnvironmentPage, FilesPage, SchedulesPage, SchemaPage } from "./ops_pages.tsx";
import { ErrorNotice } from "./widgets.tsx";

/** A parsed route. */
export interface Route {
  page: string;
  params: Record<string, string>;
}

function parseRoute(hash: string): Route {
  const [path, search = ""] = hash.replace(/^#\/?/, "").split("?");
  return { page: path || "overview", params: Object.fromEntries(new URLSearchParams(search)) };
}

function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(location.hash));
  useEffect(() => {
    const update = () => setRoute(parseRoute(location.hash));
    addEventListener("hashchange", update);
    return () => removeEventListener("hashchange", update);
  }, []);
  return route;
}

const PAGES: { id: string; label: string; icon: string }[] = [
  { id: "overview", label: "Overview", icon: "◎" },
  { id: "data", label: "Data", icon: "▦" },
  { id: "functions", label: "Functions", icon: "ƒ" },
  { id: "logs", label: "Logs", icon: "≡" },
  { id: "schedules", label: "Schedules", icon: "◷" },
  { id: "files", label: "Files", icon: "▤" },
  { id: "env", label: "Environment", icon: "⚙" },
  { id: "schema", label: "Schema", icon: "#" },
  { id: "backups", label: "Backups", icon: "⤓" },
];

function SignIn({ onSignedIn }: { onSignedIn: () => void }) {
  const [key, setKey] = useState("");
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (event: Event) => {
    event.preventDefault();
    setBusy(true);
    setError(null);
    try {
      await post("login", { adminKey: key });
      onSignedIn();
    } catch (caught) {
      setError(messageOf(caught));
    } finally {
      setBusy(false);
    }
  };
  return (
    <main class="signin">
      <form class="signin-card" onSubmit={submit}>
        <div class="brand big">
          <span class="brand-mark">◆</span> denvex
        </div>
        <p class="muted">
          Sign in with this deployment's admin key. <code>deno task admin-key</code> prints it.
        </p>
        {/* Password managers and the browser's form checks expect a user name beside a password. */}
        <input type="text" name="username" autocomplete="username" value="admin" hidden readOnly />
        <label for="admin-key">Admin key</label>
        <input
          id="admin-key"
          name="adminKey"
          type="password"
          autocomplete="current-password"
          placeholder="instance|0123abcd…"
          value={key}
          onInput={(event) => setKey((event.target as HTMLInputElement).value)}
          required
          autoFocus
        />
        <ErrorNotice error={error} />
        <button type="submit" class="primary" disabled={busy || key === ""}>{busy ? "Signing in…" : "Sign in"}</button>
      </form>
    </main>
  );
}

function Shell({ onSignOut }: { onSignOut: () => void }) {
  const route = useRoute();
  const [menuOpen, setMenuOpen] = useState(false);
  useEffect(() => setMenuOpen(false), [route.page]);
  return (
    <div class="shell">
      <nav class={menuOpen ? "sidebar open" : "sidebar"} aria-label="Dashboard pages">
        <div class="sidebar-top">
          <div class="brand">
            <span class="brand-mark">◆</span> denvex
          </div>
          <button
            type="button"
            class="ghost menu-toggle"
            aria-expanded={menuOpen}
            aria-controls="nav-list"
            onClick={() => setMenuOpen(!menuOpen)}
          >
            ☰ Menu
          </button>
        </div>
        <ul id="nav-list">
          {PAGES.map((page) => (
            <li key={page.id}>
              <a
                href={`#/${page.id}`}
                class={route.page === page.id ? "active" : ""}
                aria-current={route.page === page.id ? "page" : undefined}
              >
                <span class="nav-icon" aria-hidden="true">{page.icon}</span>
                {page.label}
              </a>
            </li>
          ))}
        </ul>
        <button type="button" class="ghost signout" onClick={onSignOut}>Sign out</button>
      </nav>
      <main class="content" id="content">
        <CurrentPage route={route} />
      </main>
    </div>
  );
}

function CurrentPage({ route }: { route: Route }) {
  switch (route.page) {
    case "data":
      return <DataPage params={route.params} />;
    case "functions":
      return <FunctionsPage params={route.params} />;
    case "logs":
      return <LogsPage params={route.params} />;
    case "schedules":
      return <SchedulesPage />;
    case "files":
      return <FilesPage />;
    case "env":
      return <EnvironmentPage />;
    case "schema":
      return <SchemaPage />;
    case "backups":
      return <BackupsPage />;
    default:
      return <OverviewPage />;
  }
}

function App() {
  const [state, setState] = useState<"loading" | "signedOut" | "signedIn">("loading");
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    whenSignedOut(() => setState("signedOut"));
    get<{ signedIn: boolean }>("session")
      .then((session) => setState(session.signedIn ? "signedIn" : "signedOut"))
      .catch((caught) => setError(caught instanceof ApiError ? caught.message : messageOf(caught)));
  }, []);
  if (error) return <ErrorNotice error={`The dashboard cannot reach the server: ${error}`} />;
  if (state === "loading") return <p class="boot">Loading…</p>;
  if (state === "signedOut") return <SignIn onSignedIn={() => setState("signedIn")} />;
  const signOut = () => {
    post("logout").finally(() => setState("signedOut"));
  };
  return <Shell onSignOut={signOut} />;
}

render(<App />, document.getElementById("root")!);
