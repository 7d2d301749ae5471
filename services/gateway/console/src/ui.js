// Small shared pieces: routing, data loading, status badges, messages.
import { h } from "preact";
import { useCallback, useEffect, useRef, useState } from "preact/hooks";
import htm from "htm";

export const html = htm.bind(h);

const listeners = new Set();

/** Client-side navigation; the gateway answers any console path with index.html. */
export function navigate(path) {
  if (path !== location.pathname + location.search) history.pushState(null, "", path);
  listeners.forEach((f) => f());
  window.scrollTo(0, 0);
}

export function useLocation() {
  const [, set] = useState(0);
  useEffect(() => {
    const f = () => set((n) => n + 1);
    listeners.add(f);
    window.addEventListener("popstate", f);
    return () => {
      listeners.delete(f);
      window.removeEventListener("popstate", f);
    };
  }, []);
  return location.pathname;
}

export function Link({ href, children, ...rest }) {
  const onClick = (e) => {
    if (e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
    e.preventDefault();
    navigate(href);
  };
  return html`<a href=${href} onClick=${onClick} ...${rest}>${children}</a>`;
}

/** `[data, error, reload]` of an async loader, re-run when `deps` change. */
export function useLoad(loader, deps) {
  const [state, setState] = useState({ data: undefined, error: null });
  const seq = useRef(0);
  const run = useCallback(() => {
    const mine = ++seq.current;
    return loader().then(
      (data) => mine === seq.current && setState({ data, error: null }),
      (error) => mine === seq.current && setState({ data: undefined, error }),
    );
  }, deps);
  useEffect(() => {
    run();
  }, [run]);
  return [state.data, state.error, run];
}

/** Calls `tick` every `ms` while `active`; stops on unmount. */
export function usePoll(tick, ms, active) {
  useEffect(() => {
    if (!active) return undefined;
    const id = setInterval(tick, ms);
    return () => clearInterval(id);
  }, [tick, ms, active]);
}

export function ErrorBox({ error }) {
  if (!error) return null;
  return html`<p class="error" role="alert">${error.message}${error.code ? html` <code>${error.code}</code>` : ""}</p>`;
}

export function Loading({ what = "Loading" }) {
  return html`<p class="muted" role="status">${what}…</p>`;
}

export function Badge({ status }) {
  const label = String(status || "").replace(/_/g, " ");
  return html`<span class=${`badge badge-${status}`}>${label}</span>`;
}

export function Progress({ value, label }) {
  const pct = Math.round((value || 0) * 100);
  return html`<div class="progress" role="progressbar" aria-label=${label} aria-valuemin="0" aria-valuemax="100"
    aria-valuenow=${pct}><div class="progress-bar" style=${`width:${pct}%`}></div><span>${pct}%</span></div>`;
}

export function when(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return d.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
}

/** A button that runs an async action, shows it is busy and reports the error next to it. */
export function Action({ onRun, children, class: cls = "", confirm: ask, ...rest }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState(null);
  const click = async () => {
    if (ask && !window.confirm(ask)) return;
    setBusy(true);
    setError(null);
    try {
      await onRun();
    } catch (e) {
      setError(e);
    } finally {
      setBusy(false);
    }
  };
  return html`<span class="action"><button type="button" class=${cls} disabled=${busy || rest.disabled}
    aria-busy=${busy ? "true" : "false"} onClick=${click} ...${rest}>${children}</button>
    ${error && html`<span class="error" role="alert">${error.message} <code>${error.code}</code></span>`}</span>`;
}

export function currentMonth(offset = 0) {
  const d = new Date();
  const m = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + offset, 1));
  return `${m.getUTCFullYear()}-${String(m.getUTCMonth() + 1).padStart(2, "0")}`;
}
