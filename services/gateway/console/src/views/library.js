// The public library: approved public cases, searchable by text and system.
import { useState } from "preact/hooks";
import { get } from "../api.js";
import { ErrorBox, html, Link, Loading, useLoad } from "../ui.js";

export function Library() {
  const [q, setQ] = useState("");
  const [system, setSystem] = useState("");
  const [query, setQuery] = useState({ q: "", system: "" });
  const [cursor, setCursor] = useState(null);
  const [page, error] = useLoad(() => {
    const p = new URLSearchParams({ limit: "25" });
    if (query.q) p.set("q", query.q);
    if (query.system) p.set("system", query.system);
    if (cursor) p.set("cursor", cursor);
    return get(`/v1/cases?${p}`);
  }, [query.q, query.system, cursor]);
  const submit = (e) => {
    e.preventDefault();
    setCursor(null);
    setQuery({ q: q.trim(), system: system.trim() });
  };
  return html`<section>
    <h1>Library</h1>
    <form class="search" role="search" onSubmit=${submit}>
      <label for="q">Search</label>
      <input id="q" type="search" value=${q} onInput=${(e) => setQ(e.target.value)} placeholder="title, diagnosis, history" />
      <label for="system">System</label>
      <input id="system" value=${system} onInput=${(e) => setSystem(e.target.value)} placeholder="musculoskeletal" />
      <button type="submit">Search</button>
    </form>
    <${ErrorBox} error=${error} />
    ${!page && !error && html`<${Loading} />`}
    ${page && page.items.length === 0 && html`<p>No published case matches.</p>`}
    ${page && html`<ul class="cases">${page.items.map((c) => html`<li class="case-row">
        <${Link} href=${`/cases/${c.id}`}>${c.title}</${Link}>
        <span class="muted">${c.systems.join(", ")}</span>
        <span class="muted">by ${c.owner.name}</span></li>`)}</ul>
      ${page.next_cursor && html`<button type="button" onClick=${() => setCursor(page.next_cursor)}>More cases</button>`}`}
  </section>`;
}
