// Featured cases and the Case of the Month; editors pick from the cases approved in the month before.
import { useState } from "preact/hooks";
import { api, get } from "../api.js";
import { Action, ErrorBox, html, Link, Loading, currentMonth, useLoad, when } from "../ui.js";

function CaseOfTheMonth({ month, editor }) {
  const [pick, error, reload] = useLoad(() => get(`/v1/case-of-the-month/${month}`).catch((e) => {
    if (e.status === 404) return null;
    throw e;
  }), [month]);
  const [candidates] = useLoad(() => (editor ? get(`/v1/case-of-the-month/${month}/candidates?limit=50`) : Promise.resolve(null)),
    [month, editor]);
  return html`<section class="card" aria-labelledby="cotm">
    <h2 id="cotm">Case of the Month ${month}</h2>
    <${ErrorBox} error=${error} />
    ${pick === undefined && !error && html`<${Loading} />`}
    ${pick === null && html`<p>No Case of the Month picked for ${month} yet.</p>`}
    ${pick && html`<p class="cotm"><${Link} href=${`/cases/${pick.case_id}`}>${pick.title}</${Link}>
      <span class="muted"> approved ${when(pick.approved_at)}, picked by ${pick.picked_by}</span></p>`}
    ${candidates && html`<details><summary>Candidates (approved ${when(candidates.approved_from)} – ${when(candidates.approved_until)}): ${candidates.items.length}</summary>
      <ul class="cases">${candidates.items.map((c) => html`<li class="case-row">
        <${Link} href=${`/cases/${c.case_id}`}>${c.title}</${Link}> <span class="muted">approved ${when(c.approved_at)}</span>
        <${Action} onRun=${async () => { await api("PUT", `/v1/case-of-the-month/${month}`, { case_id: c.case_id }); reload(); }}>
          Pick for ${month}</${Action}></li>`)}</ul></details>`}
  </section>`;
}

export function Featured({ editor }) {
  const [month, setMonth] = useState(currentMonth());
  const [featured, error] = useLoad(() => get("/v1/featured?limit=50"), []);
  return html`<section>
    <h1>Featured</h1>
    <div class="inline-form">
      <label for="month">Month</label>
      <input id="month" type="month" value=${month} onChange=${(e) => e.target.value && setMonth(e.target.value)} />
    </div>
    <${CaseOfTheMonth} month=${month} editor=${editor} />
    <section aria-labelledby="feat">
      <h2 id="feat">Featured cases</h2>
      <p class="hint">Also as an <a href="/v1/featured.atom" type="application/atom+xml">Atom feed</a>, with the Cases of the Month.</p>
      <${ErrorBox} error=${error} />
      ${!featured && !error && html`<${Loading} />`}
      ${featured && featured.items.length === 0 && html`<p>No case is featured yet.</p>`}
      ${featured && html`<ul class="cases">${featured.items.map((f) => html`<li class="case-row">
        <${Link} href=${`/cases/${f.case_id}`}>${f.title}</${Link}> <span class="muted">featured ${when(f.featured_at)}</span></li>`)}</ul>`}
    </section>
  </section>`;
}
