/// <reference lib="dom" />
/**
 * The page of the browser suite (tests/browser_test.ts): a React app on `ConvexReactClient`, bundled for the browser
 * by the test with esbuild. Query parameters: `deployment` (the backend's URL) and `channel` / `archive` (the
 * channels of the live list and of the paginated list).
 *
 * - `#live`: `useQuery(api.messages.list, {channel})`, one `<li>` per message body.
 * - `#paged`: `usePaginatedQuery(api.messages.page, {channel: archive}, {initialNumItems: 3})` with a "Load more"
 *   button that asks for 3 more.
 * - `#send`: a form that sends a message to the live channel with `useMutation` (this page's own writes).
 *
 * No JSX: the project has no React type declarations, so the page builds its elements with `createElement`.
 */
import { createElement as h, type FormEvent, useState } from "react";
import { createRoot } from "react-dom/client";
import { ConvexProvider, ConvexReactClient, useMutation, usePaginatedQuery, useQuery } from "convex/react";
import { anyApi } from "convex/server";

const api = anyApi;
const params = new URLSearchParams(location.search);
const deployment = params.get("deployment");
const channel = params.get("channel") ?? "general";
const archive = params.get("archive") ?? "archive";
const PAGE_SIZE = 3;

function LiveList() {
  const messages: string[] | undefined = useQuery(api.messages.list, { channel });
  if (messages === undefined) return h("p", { id: "live-loading" }, "Loading…");
  return h(
    "ul",
    { id: "live", "data-count": messages.length },
    messages.map((body, i) => h("li", { key: i }, body)),
  );
}

function SendForm() {
  const send = useMutation(api.messages.send);
  const [text, setText] = useState("");
  const onSubmit = (event: FormEvent) => {
    event.preventDefault();
    if (text.trim() === "") return;
    void send({ channel, body: text.trim() });
    setText("");
  };
  return h(
    "form",
    { id: "send", onSubmit },
    h("input", {
      id: "send-text",
      value: text,
      placeholder: "Say something",
      onChange: (event: { target: { value: string } }) => setText(event.target.value),
    }),
    h("button", { type: "submit" }, "Send"),
  );
}

function PagedList() {
  const { results, status, loadMore } = usePaginatedQuery(
    api.messages.page,
    { channel: archive },
    { initialNumItems: PAGE_SIZE },
  );
  return h(
    "div",
    null,
    h(
      "ul",
      { id: "paged", "data-count": results.length },
      (results as string[]).map((body, i) => h("li", { key: i }, body)),
    ),
    h("p", { id: "paged-status" }, status),
    h(
      "button",
      { id: "load-more", disabled: status !== "CanLoadMore", onClick: () => loadMore(PAGE_SIZE) },
      "Load more",
    ),
  );
}

function App() {
  return h(
    "main",
    null,
    h("h1", null, "denvex in a browser"),
    h("section", null, h("h2", null, `#${channel} (useQuery)`), h(LiveList), h(SendForm)),
    h("section", null, h("h2", null, `#${archive} (usePaginatedQuery)`), h(PagedList)),
  );
}

const root = createRoot(document.getElementById("root")!);
if (deployment === null) {
  root.render(h("p", { id: "error" }, "Missing ?deployment=<url>"));
} else {
  const client = new ConvexReactClient(deployment);
  root.render(h(ConvexProvider, { client }, h(App)));
}
