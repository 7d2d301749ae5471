// A revision's diff from the last approved one: fields before and after, studies and images added or removed.
import { html } from "../ui.js";

const show = (v) => (v === null || v === undefined || v === "" ? "—" : Array.isArray(v) ? v.join(", ") || "—" : String(v));

export function Diff({ diff }) {
  if (!diff) return null;
  const lists = [["Studies added", diff.studies_added], ["Studies removed", diff.studies_removed],
    ["Studies changed", diff.studies_changed], ["Images added", diff.images_added], ["Images removed", diff.images_removed]]
    .filter(([, v]) => v && v.length);
  const fields = diff.fields || [];
  if (!fields.length && !lists.length) return html`<p class="muted">No change from the last approved revision.</p>`;
  return html`<div class="diff">
    <p class="muted">${diff.base_revision ? `Compared with approved revision ${diff.base_revision}` : "First submission: everything is new"}</p>
    ${fields.length > 0 && html`<table>
      <caption class="sr-only">Changed fields</caption>
      <thead><tr><th scope="col">Field</th><th scope="col">Before</th><th scope="col">After</th></tr></thead>
      <tbody>${fields.map((f) => html`<tr><th scope="row">${f.field.replace(/_/g, " ")}</th>
        <td class="before">${show(f.before)}</td><td class="after">${show(f.after)}</td></tr>`)}</tbody></table>`}
    ${lists.length > 0 && html`<ul class="diff-lists">${lists.map(([t, v]) => html`<li><strong>${t}:</strong> ${v.length}</li>`)}</ul>`}
  </div>`;
}
