// The editors' moderation queue: automatic checks, advice, the diff, and claim / approve / reject with reasons.
import { useCallback, useState } from "preact/hooks";
import { all, post } from "../api.js";
import { Action, ErrorBox, html, Link, Loading, useLoad, usePoll, when } from "../ui.js";
import { Diff } from "./diff.js";

const REASONS = [
  ["patient_identifier", "Patient identifier in text or image"],
  ["poor_image_quality", "Images of poor technical quality"],
  ["burned_in_annotation", "Burned-in text or annotation"],
  ["uncertain_diagnosis", "Diagnosis not certain enough"],
  ["incomplete_case", "Case text incomplete"],
  ["other", "Other"],
];

function RejectForm({ item, onDone }) {
  const [rows, setRows] = useState([{ code: REASONS[0][0], message: "" }]);
  const [error, setError] = useState(null);
  const set = (i, k) => (e) => setRows(rows.map((r, j) => (j === i ? { ...r, [k]: e.target.value } : r)));
  const submit = async (e) => {
    e.preventDefault();
    setError(null);
    try {
      await post(`/v1/moderation/${item.case_id}/reject`, { reasons: rows.map((r) => ({ code: r.code, message: r.message.trim() })) });
      onDone();
    } catch (err) {
      setError(err);
    }
  };
  return html`<form class="reject" onSubmit=${submit} aria-label=${`Reject ${item.title}`}>
    ${rows.map((r, i) => html`<fieldset><legend>Reason ${i + 1}</legend>
      <label for=${`rc-${item.case_id}-${i}`}>Code</label>
      <select id=${`rc-${item.case_id}-${i}`} value=${r.code} onChange=${set(i, "code")}>
        ${REASONS.map(([c, t]) => html`<option value=${c}>${t}</option>`)}</select>
      <label for=${`rm-${item.case_id}-${i}`}>What the contributor should fix</label>
      <textarea id=${`rm-${item.case_id}-${i}`} required rows="2" value=${r.message} onInput=${set(i, "message")}></textarea>
    </fieldset>`)}
    <div class="buttons">
      <button type="button" onClick=${() => setRows([...rows, { code: "other", message: "" }])}>Add a reason</button>
      <button type="submit" class="danger">Reject and return to the contributor</button>
    </div>
    <${ErrorBox} error=${error} />
  </form>`;
}

function Item({ item, me, onChange }) {
  const [rejecting, setRejecting] = useState(false);
  const mineClaim = item.claimed_by === me.id;
  const failing = item.checks.filter((c) => !c.passed).length;
  return html`<li class="card queue-item" data-case=${item.case_id}>
    <h2><${Link} href=${`/cases/${item.case_id}`}>${item.title}</${Link}></h2>
    <p class="muted">revision ${item.revision} · submitted ${when(item.submitted_at)} by ${item.owner_id}
      ${item.claimed_by ? ` · claimed by ${mineClaim ? "you" : item.claimed_by} until ${when(item.claim_expires_at)}` : ""}</p>
    <h3>Automatic checks ${failing ? html`<span class="badge badge-quarantined">${failing} failing</span>` : html`<span class="badge badge-ready">all passed</span>`}</h3>
    <ul class="checks">${item.checks.map((c) => html`<li class=${c.passed ? "pass" : "fail"}>
      <span aria-hidden="true">${c.passed ? "✓" : "✗"}</span><span class="sr-only">${c.passed ? "passed" : "failed"}</span>
      <code>${c.code}</code> ${c.message}</li>`)}</ul>
    ${item.advice.length > 0 && html`<h3>Advice</h3><ul>${item.advice.map((a) => html`<li><code>${a.code}</code> ${a.message}
      <span class="muted">(${a.image_ids.length} images)</span></li>`)}</ul>`}
    <h3>Changes</h3>
    <${Diff} diff=${item.diff} />
    ${item.own_case ? html`<p class="muted">Your own case: another editor decides on it.</p>` : html`<div class="buttons">
      ${!mineClaim && html`<${Action} onRun=${async () => { await post(`/v1/moderation/${item.case_id}/claim`); onChange(); }}>Claim</${Action}>`}
      ${mineClaim && html`<${Action} class="primary" onRun=${async () => { await post(`/v1/moderation/${item.case_id}/approve`); onChange(); }}>Approve</${Action}>`}
      ${mineClaim && !rejecting && html`<button type="button" class="danger" onClick=${() => setRejecting(true)}>Reject…</button>`}
    </div>`}
    ${rejecting && html`<${RejectForm} item=${item} onDone=${onChange} />`}
  </li>`;
}

export function Queue({ me }) {
  const [items, error, reload] = useLoad(() => (me ? all("/v1/moderation/queue") : Promise.resolve([])), [me && me.id]);
  const tick = useCallback(() => reload(), [reload]);
  usePoll(tick, 5000, !!me);
  if (!me) return html`<p>Please <${Link} href="/signin">sign in</${Link}> as an editor.</p>`;
  return html`<section>
    <h1>Moderation queue</h1>
    <${ErrorBox} error=${error} />
    ${!items && !error && html`<${Loading} />`}
    ${items && items.length === 0 && html`<p>Nothing is waiting for review.</p>`}
    ${items && html`<ul class="plain">${items.map((it) => html`<${Item} key=${it.case_id} item=${it} me=${me} onChange=${reload} />`)}</ul>`}
  </section>`;
}
