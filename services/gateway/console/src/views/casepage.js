// One case: its text, studies and series, images' de-identification live, and what the caller may do with it.
import { useCallback, useEffect, useState } from "preact/hooks";
import { api, get, post } from "../api.js";
import { Action, Badge, ErrorBox, html, Link, Loading, navigate, useLoad, usePoll, when } from "../ui.js";
import { dicomwebIndex, SeriesStack } from "./series.js";
import { Uploader } from "./upload.js";
import { ExportStatus, startExport } from "./exports.js";
import { AddToPlaylist } from "./playlists.js";
import { Diff } from "./diff.js";

const IN_REVIEW = ["submitted", "in_review"];

/** Images grouped as the API orders them: study, then series position. */
export function groupSeries(images) {
  const groups = new Map();
  for (const im of images) {
    const s = im.series || {};
    const key = `${im.study_id}:${s.position}:${s.uid || im.id}`;
    if (!groups.has(key)) {
      const what = s.description || s.modality || "Images";
      groups.set(key, { key, study_id: im.study_id, uid: s.uid || null, modality: s.modality || null,
        label: `Series ${s.number ?? s.position ?? ""} · ${what}`, images: [] });
    }
    groups.get(key).images.push(im);
  }
  return [...groups.values()];
}

function Facts({ c }) {
  const row = (term, value) => value || value === 0 ? html`<dt>${term}</dt><dd>${value}</dd>` : null;
  return html`<dl class="facts">
    ${row("Age", c.patient_age)}${row("Sex", c.patient_sex)}
    ${row("Systems", c.systems.join(", "))}${row("Tags", c.tags.join(", "))}
    ${row("Diagnostic certainty", c.diagnostic_certainty && c.diagnostic_certainty.replace("_", " "))}
  </dl>`;
}

// `level`: the heading level of its sections, under the page's h1 (2) or a frozen revision's h3 (4).
function Text({ c, level = 2 }) {
  const H = `h${level}`;
  const block = (title, text) => text ? html`<section><${H} class="text-h">${title}</${H}><p class="prose">${text}</p></section>` : null;
  return html`<div class="text">
    ${block("Presentation", c.presentation)}
    <${Facts} c=${c} />
    ${block("Diagnosis", c.diagnosis)}
    ${block("Discussion", c.discussion)}
  </div>`;
}

function Completeness({ value }) {
  if (!value) return null;
  return html`<section class="card" aria-labelledby="compl">
    <h2 id="compl">Completeness <span class="count">${value.percent}%</span></h2>
    <div class="meter" role="meter" aria-label="Completeness" aria-valuemin="0" aria-valuemax="100" aria-valuenow=${value.percent}>
      <div style=${`width:${value.percent}%`}></div></div>
    ${value.missing.length > 0 && html`<p>Missing: ${value.missing.map((m) => html`<code class="tag">${m}</code> `)}</p>`}
  </section>`;
}

function DeidReport({ imageId }) {
  const [report, setReport] = useState(null);
  const [error, setError] = useState(null);
  const open = async (e) => {
    if (!e.target.open || report) return;
    try {
      setReport(await get(`/v1/images/${imageId}/deid-report`));
    } catch (err) {
      setError(err);
    }
  };
  const list = (title, items) => items && items.length > 0 &&
    html`<p><strong>${title}</strong> (${items.length}): ${items.map((k) => html`<code class="tag">${k}</code> `)}</p>`;
  return html`<details class="deid" onToggle=${open}><summary>What de-identification did</summary>
    <${ErrorBox} error=${error} />
    ${report && html`<div class="deid-report">
      ${list("Quarantine reasons", report.quarantine_reasons)}
      ${list("Pixels", report.pixels)}
      ${list("Removed", report.removed)}
      ${list("Rewritten", report.rewritten)}
      ${list("Kept", report.kept)}
      <p class="muted">${report.views_checked} view${report.views_checked === 1 ? "" : "s"} checked for burned-in text;
        ${report.text_regions_redacted.length} text region${report.text_regions_redacted.length === 1 ? "" : "s"} redacted.</p>
    </div>`}
  </details>`;
}

function ImageStatus({ images }) {
  const counts = images.reduce((a, im) => ({ ...a, [im.status]: (a[im.status] || 0) + 1 }), {});
  const quarantined = images.filter((im) => im.status === "quarantined");
  return html`<div class="image-status" aria-live="polite">
    <p>${Object.entries(counts).map(([s, n]) => html`<span class="stat"><${Badge} status=${s} /> ${n}</span> `)}</p>
    ${quarantined.length > 0 && html`<details open class="quarantine"><summary>${quarantined.length} quarantined: not shown to anyone</summary>
      <ul>${quarantined.map((im) => html`<li><code>${im.id}</code>: ${im.reasons.map((r) => html`<code class="tag">${r}</code> `)}
        <${DeidReport} imageId=${im.id} /></li>`)}</ul>
    </details>`}
  </div>`;
}

function AddStudy({ caseId, onAdded }) {
  const [modality, setModality] = useState("CT");
  const [findings, setFindings] = useState("");
  const [error, setError] = useState(null);
  const submit = async (e) => {
    e.preventDefault();
    setError(null);
    try {
      await post(`/v1/cases/${caseId}/studies`, { modality: modality.trim(), findings });
      setFindings("");
      onAdded();
    } catch (err) {
      setError(err);
    }
  };
  return html`<form class="card" onSubmit=${submit} aria-labelledby="add-study">
    <h3 id="add-study">Add a study</h3>
    <label for="study-modality">Modality</label>
    <input id="study-modality" required pattern="[A-Za-z0-9]+" maxlength="16" value=${modality}
      onInput=${(e) => setModality(e.target.value)} list="modalities" />
    <datalist id="modalities">${["CT", "MR", "US", "CR", "DX", "MG", "NM", "PT", "XA", "RF"].map((m) => html`<option value=${m} />`)}</datalist>
    <label for="study-findings">Findings</label>
    <textarea id="study-findings" rows="2" value=${findings} onInput=${(e) => setFindings(e.target.value)}></textarea>
    <button type="submit">Add study</button>
    <${ErrorBox} error=${error} />
  </form>`;
}

function Study({ c, study, series, images, owner, dicomweb, onUploaded }) {
  const mine = series.filter((s) => s.study_id === study.id);
  const waiting = images.filter((im) => im.study_id === study.id && im.status === "processing").length;
  return html`<section class="study" aria-labelledby=${`study-${study.id}`}>
    <h3 id=${`study-${study.id}`}>Study ${study.position}: ${study.modality}</h3>
    ${study.findings && html`<p class="prose"><strong>Findings.</strong> ${study.findings}</p>`}
    ${waiting > 0 && html`<p class="muted" role="status">${waiting} image${waiting === 1 ? "" : "s"} being de-identified…</p>`}
    ${mine.map((s) => {
      const ready = { ...s, images: s.images.filter((im) => im.status === "ready") };
      if (ready.images.length === 0) return null;
      if (s.uid && !(dicomweb && dicomweb.has(s.uid))) {
        return html`<div class="series"><h4>${s.label}</h4>
          <p class="muted">${dicomweb === undefined ? "Preparing the rendered view…" : "No rendered view of this series yet."}
            ${ready.images.map((im, i) => html` <a href=${im.url}>DICOM ${i + 1}</a>`)}</p></div>`;
      }
      ready.key = `${s.key}:${ready.images.length}`;
      return html`<${SeriesStack} series=${ready} dicomweb=${dicomweb} />`;
    })}
    ${owner && html`<${Uploader} caseId=${c.id} study=${study} onUploaded=${onUploaded} />`}
  </section>`;
}

function Sharing({ c, onChange }) {
  if (c.visibility === "public") return null;
  const other = c.visibility === "draft" ? "unlisted" : "draft";
  return html`<div class="sharing">
    <p>Kind: <strong>${c.visibility}</strong>${c.visibility === "unlisted" ? " — anyone with the link can view it" : " — only you see it"}.</p>
    ${c.share_url && html`<p><label for="share">Share link</label> <input id="share" readonly value=${c.share_url}
      onFocus=${(e) => e.target.select()} /></p>`}
    <${Action} onRun=${async () => onChange(await post(`/v1/cases/${c.id}/visibility`, { visibility: other }))}>
      Make ${other}</${Action}>
    ${c.visibility === "unlisted" && html` <${Action} confirm="The old link stops working. Continue?"
      onRun=${async () => onChange(await post(`/v1/cases/${c.id}/share-link`))}>New share link</${Action}>`}
  </div>`;
}

function Frozen({ caseId, n }) {
  const [rev, setRev] = useState(null);
  const [error, setError] = useState(null);
  const show = async () => {
    try {
      setRev(await get(`/v1/cases/${caseId}/revisions/${n}`));
    } catch (e) {
      setError(e);
    }
  };
  if (error) return html`<${ErrorBox} error=${error} />`;
  if (!rev) return html`<button type="button" onClick=${show}>Show revision ${n} as it was frozen</button>`;
  return html`<div class="frozen card" aria-label=${`Revision ${n} as frozen`}>
    <h3>${rev.title}</h3>
    <${Text} c=${rev} level=${4} />
    ${rev.studies.map((st) => html`<p class="prose"><strong>Study ${st.position} (${st.modality}).</strong> ${st.findings || "—"}</p>`)}
    <p class="muted">${rev.image_ids.length} image${rev.image_ids.length === 1 ? "" : "s"} in this revision.</p>
  </div>`;
}

function OwnerOnly({ c, revisions }) {
  const [history] = useLoad(() => get(`/v1/cases/${c.id}/history`).catch(() => null), [c.id, c.updated_at, c.status]);
  return html`
    ${revisions && revisions.length > 0 && html`<section class="card" aria-labelledby="revs">
      <h2 id="revs">Revisions</h2>
      <ol class="plain revisions">${revisions.map((r) => html`<li>
        <details open=${r === revisions[revisions.length - 1]}>
          <summary>Revision ${r.n} <${Badge} status=${r.status} /> ${r.submitted_at ? `submitted ${when(r.submitted_at)}` : ""}
            ${r.decided_at ? ` · decided ${when(r.decided_at)}${r.decided_by ? ` by ${r.decided_by}` : ""}` : ""}</summary>
          ${r.reasons.length > 0 && html`<ul>${r.reasons.map((x) => html`<li><code>${x.code}</code> ${x.message}</li>`)}</ul>`}
          <${Diff} diff=${r.diff} />
          ${r.status !== "pending" && html`<${Frozen} caseId=${c.id} n=${r.n} />`}
        </details></li>`)}</ol>
    </section>`}
    ${history && html`<section class="card" aria-labelledby="hist">
      <h2 id="hist">History</h2>
      <ol class="plain history">${history.map((h) => html`<li>
        <time datetime=${h.at}>${when(h.at)}</time> <strong>${h.action.replace(/_/g, " ")}</strong>
        ${h.from_status && h.to_status && h.from_status !== h.to_status ? ` ${h.from_status} → ${h.to_status}` : ""}
        <span class="muted"> by ${h.actor}</span>${h.revision ? html` <span class="muted">(revision ${h.revision})</span>` : ""}
        ${h.reasons.length > 0 && html`<ul>${h.reasons.map((x) => html`<li><code>${x.code}</code> ${x.message}</li>`)}</ul>`}
      </li>`)}</ol>
    </section>`}`;
}

export function CasePage({ me, caseId, has }) {
  const [c, error, reloadCase] = useLoad(() => get(`/v1/cases/${caseId}`), [caseId, me && me.id]);
  const [images, imgError, reloadImages] = useLoad(() => get(`/v1/cases/${caseId}/images`), [caseId, me && me.id]);
  const [dicomweb, setDicomweb] = useState(undefined);
  // Revisions are the owner's and editors' to read.
  const mayReview = !!c && !!me && (c.owner.id === me.id || has("editor"));
  const [revisions] = useLoad(() => (mayReview ? get(`/v1/cases/${caseId}/revisions`).catch(() => null)
    : Promise.resolve(null)), [caseId, mayReview, c && c.updated_at, c && c.status]);
  const [exportRun, setExportRun] = useState(null);
  const [featured, setFeatured] = useState(null);
  const processing = !!images && images.some((im) => im.status === "processing");
  const tick = useCallback(() => reloadImages(), [reloadImages]);
  usePoll(tick, 1500, processing);
  // Once de-identification settles, the case's completeness (a ready image) may have changed.
  const [wasProcessing, setWasProcessing] = useState(false);
  useEffect(() => {
    if (wasProcessing && !processing) reloadCase();
    setWasProcessing(processing);
  }, [processing]);
  const inReview = !!c && IN_REVIEW.includes(c.status);
  const tickCase = useCallback(() => reloadCase(), [reloadCase]);
  usePoll(tickCase, 3000, inReview);

  // The rendered views come from DICOMweb; refetched when the set of ready DICOM series changes.
  const readyUids = images ? [...new Set(images.filter((im) => im.status === "ready" && im.series && im.series.uid)
    .map((im) => im.series.uid))].sort().join(",") : "";
  useEffect(() => {
    if (!readyUids) return undefined;
    // The DICOMweb index follows the images by a moment: ask again until it holds every ready series.
    let timer = null;
    let tries = 0;
    let known = null;
    const look = () => dicomwebIndex(caseId).then((index) => {
      // A new index only when it names other series: the stacks already shown stay mounted.
      const names = [...index.keys()].sort().join(",");
      if (names !== known) {
        known = names;
        setDicomweb(index);
      }
      if (readyUids.split(",").some((u) => !index.has(u)) && ++tries < 200) timer = setTimeout(look, tries < 20 ? 1000 : 3000);
    }, () => setDicomweb(null));
    look();
    return () => clearTimeout(timer);
  }, [caseId, readyUids]);

  if (error) {
    return html`<section><h1>Case</h1><${ErrorBox} error=${error} />
      ${error.status === 404 && html`<p>This case does not exist or is not visible to you${me ? "" : html`; <${Link} href="/signin">sign in</${Link}>`}.</p>`}</section>`;
  }
  if (!c) return html`<${Loading} what="Loading the case" />`;
  const owner = !!me && c.owner.id === me.id;
  const editor = has("editor");
  const approvedPublic = c.visibility === "public" && c.moderation.status === "approved";
  const series = groupSeries(images || []);
  // An approved case is submitted again only when it holds changes since (a `pending` revision).
  const pending = !!revisions && revisions.some((r) => r.status === "pending");
  const setCase = () => reloadCase();
  const refresh = () => {
    reloadCase();
    reloadImages();
  };
  const exportAs = async (kind) => {
    const what = kind === "originals" ? `Originals of “${c.title}”` : `Presentation of “${c.title}”`;
    const out = await startExport(`/v1/cases/${c.id}/exports`, { kind }, what);
    setExportRun({ id: out.id, what });
  };

  return html`<article class="case">
    <header class="case-head">
      <h1>${c.title}</h1>
      <p><${Badge} status=${c.status} /> <span class="muted">by ${c.owner.name} · revision ${c.revision} · updated ${when(c.updated_at)}</span></p>
    </header>
    ${c.moderation && c.moderation.reasons.length > 0 && html`<section class="card warn" aria-labelledby="mod">
      <h2 id="mod">Moderation: ${c.moderation.status.replace(/_/g, " ")}</h2>
      <ul>${c.moderation.reasons.map((r) => html`<li><code>${r.code}</code> ${r.message}</li>`)}</ul></section>`}
    <div class="toolbar" role="toolbar" aria-label="Case actions">
      ${owner && html`<${Link} class="button" href=${`/cases/${c.id}/edit`}>Edit</${Link}>`}
      ${owner && !inReview && (c.status !== "approved" || pending) && html`<${Action} class="primary"
        onRun=${async () => { await post(`/v1/cases/${c.id}/publish`); refresh(); }}>
        ${c.status === "approved" ? "Submit changes for review" : "Publish"}</${Action}>`}
      ${owner && html`<${Action} onRun=${() => exportAs("originals")}>Download originals</${Action}>`}
      ${approvedPublic && has("supporter") && html`<${Action} onRun=${() => exportAs("presentation")}>Download case (offline presentation)</${Action}>`}
      ${approvedPublic && editor && html`<${Action} onRun=${async () => setFeatured(await post("/v1/featured", { case_id: c.id }))}>Feature</${Action}>`}
      ${inReview && editor && !owner && html`<${Link} class="button" href="/moderation">Review in the queue</${Link}>`}
      ${(owner || has("admin")) && html`<${Action} class="danger" confirm="Delete this case for good?"
        onRun=${async () => { await api("DELETE", `/v1/cases/${c.id}`); navigate("/"); }}>Delete</${Action}>`}
    </div>
    ${featured && html`<p class="ok" role="status">Featured on ${when(featured.featured_at)}.</p>`}
    ${exportRun && html`<${ExportStatus} id=${exportRun.id} what=${exportRun.what} />`}
    ${owner && html`<${Sharing} c=${c} onChange=${setCase} />`}
    ${owner && html`<${Completeness} value=${c.completeness} />`}
    <${Text} c=${c} />
    <section aria-labelledby="imaging">
      <h2 id="imaging">Imaging</h2>
      <${ErrorBox} error=${imgError} />
      ${images && images.length > 0 && (owner || editor) && html`<${ImageStatus} images=${images} />`}
      ${c.studies.length === 0 && html`<p class="muted">No study yet.</p>`}
      ${c.studies.map((s) => html`<${Study} c=${c} study=${s} series=${series} images=${images || []} owner=${owner}
        dicomweb=${dicomweb} onUploaded=${refresh} />`)}
      ${owner && html`<${AddStudy} caseId=${c.id} onAdded=${refresh} />`}
    </section>
    ${me && approvedPublic && html`<${AddToPlaylist} me=${me} caseId=${c.id} />`}
    ${(owner || editor) && html`<${OwnerOnly} c=${c} revisions=${revisions} />`}
    <footer class="licence muted"><a href=${c.licence_url} rel="license noopener">${c.licence}</a> · ${c.attribution}</footer>
  </article>`;
}
