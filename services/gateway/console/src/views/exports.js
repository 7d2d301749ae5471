// Exports this browser requested: status with progress while the archive is built, then the download link.
import { useCallback, useState } from "preact/hooks";
import { get, post, remembered } from "../api.js";
import { Badge, ErrorBox, html, Link, Progress, useLoad, usePoll, when } from "../ui.js";

export const exportsSeen = remembered("exports");

const size = (n) => (n >= 1e6 ? `${(n / 1e6).toFixed(1)} MB` : `${Math.max(1, Math.round(n / 1e3))} KB`);

/** Start an export and remember it; resolves to the export's first status. */
export async function startExport(path, body, what) {
  const out = await post(path, body);
  exportsSeen.add({ id: out.id, what, at: new Date().toISOString() });
  return out;
}

export function ExportStatus({ id, what }) {
  const [data, error, reload] = useLoad(() => get(`/v1/exports/${id}`), [id]);
  const running = !error && (!data || data.status === "queued" || data.status === "running");
  const tick = useCallback(() => reload(), [reload]);
  usePoll(tick, 1000, running);
  return html`<div class="export" data-export=${id}>
    <div class="export-head"><strong>${what || "Export"}</strong> ${data && html`<${Badge} status=${data.status} />`}</div>
    ${error && html`<${ErrorBox} error=${error} />`}
    ${data && running && html`<${Progress} value=${data.progress} label=${`Progress of ${what || "the export"}`} />`}
    ${data && data.status === "ready" && data.download_url &&
      html`<p><a class="button" href=${data.download_url} download rel="noopener">Download${data.size ? ` (${size(data.size)})` : ""}</a>
        ${data.expires_at && html` <span class="muted">link valid until ${when(data.expires_at)}</span>`}</p>`}
    ${data && data.status === "failed" && html`<p class="error" role="alert">The export failed; request it again.</p>`}
  </div>`;
}

export function Exports({ me }) {
  const [items, setItems] = useState(exportsSeen.list());
  if (!me) return html`<p>Please <${Link} href="/signin">sign in</${Link}>.</p>`;
  return html`<section>
    <h1>Exports</h1>
    <p class="hint">Originals are offered on your own cases; offline presentations to supporters on public cases and playlists.</p>
    ${items.length === 0 && html`<p>No export requested from this browser yet.</p>`}
    <ul class="plain">${items.map((e) => html`<li>
      <${ExportStatus} id=${e.id} what=${e.what} />
      <span class="muted">requested ${when(e.at)}</span>
      <button type="button" class="link" onClick=${() => { exportsSeen.remove(e.id); setItems(exportsSeen.list()); }}>Forget</button>
    </li>`)}</ul>
  </section>`;
}
