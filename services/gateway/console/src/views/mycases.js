// My cases, grouped as the contributor thinks of them, with the draft and unlisted limits.
import { all } from "../api.js";
import { Badge, ErrorBox, html, Link, Loading, useLoad, when } from "../ui.js";


const GROUPS = [
  { key: "draft", title: "Drafts", test: (c) => c.visibility === "draft" },
  { key: "unlisted", title: "Unlisted", test: (c) => c.visibility === "unlisted" },
  { key: "submitted", title: "Submitted", test: (c) => c.visibility === "public" && ["submitted", "in_review"].includes(c.status) },
  { key: "approved", title: "Approved", test: (c) => c.visibility === "public" && c.status === "approved" },
];

export function CaseRow({ c }) {
  return html`<li class="case-row">
    <${Link} href=${`/cases/${c.id}`}>${c.title}</${Link}>
    <${Badge} status=${c.status} />
    ${c.completeness && html`<span class="muted">${c.completeness.percent}% complete</span>`}
    <span class="muted">updated ${when(c.updated_at)}</span>
  </li>`;
}

export function MyCases({ me }) {
  const [cases, error] = useLoad(() => all("/v1/cases?mine=true"), [me.id]);
  if (error) return html`<${ErrorBox} error=${error} />`;
  if (!cases) return html`<${Loading} what="Loading your cases" />`;
  const drafts = cases.filter(GROUPS[0].test).length;
  const unlisted = cases.filter(GROUPS[1].test).length;
  const other = cases.filter((c) => !GROUPS.some((g) => g.test(c)));
  // The counts come from the list just read; the limits from GET /v1/me (the gateway's settings).
  const draftMax = me.limits.drafts.max;
  const unlistedMax = me.limits.unlisted.max;
  return html`<section>
    <div class="title-row">
      <h1>My cases</h1>
      ${me.roles.some((r) => r === "contributor" || r === "admin") &&
      html`<${Link} class="button" href="/cases/new">New case</${Link}>`}
    </div>
    <ul class="limits" aria-label="Limits">
      <li class=${drafts >= draftMax ? "full" : ""}><strong>${drafts} of ${draftMax}</strong> drafts</li>
      <li class=${unlisted >= unlistedMax ? "full" : ""}><strong>${unlisted} of ${unlistedMax}</strong> unlisted</li>
    </ul>
    ${cases.length === 0 && html`<p>You have no cases yet.</p>`}
    ${[...GROUPS.map((g) => ({ ...g, items: cases.filter(g.test) })), { key: "other", title: "Other", items: other }]
      .filter((g) => g.items.length)
      .map((g) => html`<section class="group" aria-labelledby=${`g-${g.key}`}>
        <h2 id=${`g-${g.key}`}>${g.title} <span class="count">${g.items.length}</span></h2>
        <ul class="cases">${g.items.map((c) => html`<${CaseRow} c=${c} />`)}</ul>
      </section>`)}
  </section>`;
}
