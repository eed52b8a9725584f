/** @jsxImportSource preact */
/// <reference lib="dom" />
/** Small shared pieces: formatting, buttons, notices, a modal dialog. */
import type { ComponentChildren } from "preact";
import { useEffect, useRef } from "preact/hooks";

export function formatBytes(bytes: number | null): string {
  if (bytes === null) return "n/a";
  if (bytes < 1024) return `${bytes} B`;
  const units = ["KiB", "MiB", "GiB", "TiB"];
  let value = bytes / 1024;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${value.toFixed(value < 10 ? 1 : 0)} ${units[unit]}`;
}

export function formatDuration(ms: number): string {
  if (ms < 1) return `${(ms * 1000).toFixed(0)} µs`;
  if (ms < 1000) return `${ms.toFixed(ms < 10 ? 1 : 0)} ms`;
  const seconds = ms / 1000;
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ${Math.floor(seconds % 60)} s`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours} h ${minutes % 60} min`;
  return `${Math.floor(hours / 24)} days`;
}

export function formatAgo(ms: number): string {
  const delta = Date.now() - ms;
  if (delta < 0) return `in ${formatDuration(-delta)}`;
  if (delta < 5_000) return "just now";
  return `${formatDuration(delta)} ago`;
}

export function formatTime(ms: number): string {
  const date = new Date(ms);
  const pad = (n: number, width = 2) => String(n).padStart(width, "0");
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ` +
    `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}.${pad(date.getMilliseconds(), 3)}`;
}

export function formatCount(count: number, capped = false): string {
  return count.toLocaleString("en-US") + (capped ? "+" : "");
}

/** A red notice with the server's message; nothing when there is no error. */
export function ErrorNotice({ error, onClose }: { error: string | null; onClose?: () => void }) {
  if (!error) return null;
  return (
    <div class="notice error" role="alert">
      <span class="notice-text">{error}</span>
      {onClose && <button type="button" class="ghost small" onClick={onClose} aria-label="Dismiss">✕</button>}
    </div>
  );
}

export function Badge({ kind, children }: { kind: string; children: ComponentChildren }) {
  return <span class={`badge badge-${kind}`}>{children}</span>;
}

export function Empty({ title, children }: { title: string; children?: ComponentChildren }) {
  return (
    <div class="empty">
      <p class="empty-title">{title}</p>
      {children && <p class="muted">{children}</p>}
    </div>
  );
}

/** A modal dialog (the native `<dialog>`): Escape closes it, focus stays inside. */
export function Modal(
  { title, onClose, children, wide }: {
    title: string;
    onClose: () => void;
    children: ComponentChildren;
    wide?: boolean;
  },
) {
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const dialog = ref.current!;
    if (!dialog.open) dialog.showModal();
    const cancel = (event: Event) => {
      event.preventDefault();
      onClose();
    };
    dialog.addEventListener("cancel", cancel);
    return () => dialog.removeEventListener("cancel", cancel);
  }, []);
  return (
    <dialog ref={ref} class={wide ? "modal wide" : "modal"} aria-label={title}>
      <header class="modal-head">
        <h2>{title}</h2>
        <button type="button" class="ghost small" onClick={onClose} aria-label="Close">✕</button>
      </header>
      <div class="modal-body">{children}</div>
    </dialog>
  );
}

/** Page header: a title, a line saying what the page is, and actions on the right. */
export function PageHead(
  { title, subtitle, children }: { title: string; subtitle?: string; children?: ComponentChildren },
) {
  return (
    <header class="page-head">
      <div>
        <h1>{title}</h1>
        {subtitle && <p class="muted">{subtitle}</p>}
      </div>
      <div class="page-actions">{children}</div>
    </header>
  );
}

/** Short component label: "app" for the root. */
export function componentLabel(path: string): string {
  return path === "" ? "app" : path;
}

/** Goes to `page` with `params` (a new history entry; the hash is the route). */
export function navigate(page: string, params: Record<string, string> = {}): void {
  const search = new URLSearchParams(params).toString();
  location.hash = `#/${page}${search ? `?${search}` : ""}`;
}
