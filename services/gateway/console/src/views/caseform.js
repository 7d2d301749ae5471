// Create a case or edit its text (the owner's working copy).
import { useEffect, useState } from "preact/hooks";
import { api, get } from "../api.js";
import { ErrorBox, html, Link, Loading, navigate } from "../ui.js";

const CERTAINTY = ["certain", "almost_certain", "probable", "possible", "not_applicable"];
const SEX = ["female", "male", "other", "unknown"];
const EMPTY = { title: "", visibility: "draft", presentation: "", patient_age: "", patient_sex: "", systems: "",
  tags: "", diagnostic_certainty: "", diagnosis: "", discussion: "" };

const list = (text) => text.split(",").map((s) => s.trim()).filter(Boolean);

function toForm(c) {
  return { ...EMPTY, ...c, patient_age: c.patient_age == null ? "" : String(c.patient_age),
    patient_sex: c.patient_sex || "", diagnostic_certainty: c.diagnostic_certainty || "",
    systems: c.systems.join(", "), tags: c.tags.join(", ") };
}

function toBody(f) {
  return { title: f.title.trim(), presentation: f.presentation, diagnosis: f.diagnosis, discussion: f.discussion,
    patient_age: f.patient_age === "" ? null : Number(f.patient_age), patient_sex: f.patient_sex || null,
    diagnostic_certainty: f.diagnostic_certainty || null, systems: list(f.systems), tags: list(f.tags) };
}

export function CaseForm({ me, caseId }) {
  const [form, setForm] = useState(caseId ? null : EMPTY);
  const [original, setOriginal] = useState(null);
  const [error, setError] = useState(null);
  const [busy, setBusy] = useState(false);
  useEffect(() => {
    if (!caseId) return;
    get(`/v1/cases/${caseId}`).then((c) => {
      setOriginal(c);
      setForm(toForm(c));
    }, setError);
  }, [caseId]);
  if (!me) return html`<p>Please <${Link} href="/signin">sign in</${Link}> to write a case.</p>`;
  if (!form) return error ? html`<${ErrorBox} error=${error} />` : html`<${Loading} />`;
  const set = (k) => (e) => setForm({ ...form, [k]: e.target.value });

  const submit = async (e) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const body = toBody(form);
      if (caseId) {
        const before = toBody(toForm(original));
        const changed = Object.fromEntries(Object.entries(body)
          .filter(([k, v]) => JSON.stringify(v) !== JSON.stringify(before[k])));
        await api("PATCH", `/v1/cases/${caseId}`, changed);
        navigate(`/cases/${caseId}`);
      } else {
        const created = await api("POST", "/v1/cases", { ...body, visibility: form.visibility });
        navigate(`/cases/${created.id}`);
      }
    } catch (err) {
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  const field = (k, label, input) => html`<div class="field"><label for=${`f-${k}`}>${label}</label>${input}</div>`;
  return html`<section class="narrow">
    <h1>${caseId ? "Edit case" : "New case"}</h1>
    <form onSubmit=${submit} class="card case-form">
      ${field("title", "Title", html`<input id="f-title" required maxlength="300" value=${form.title} onInput=${set("title")} />`)}
      ${!caseId && html`<fieldset><legend>Kind</legend>
        <label class="inline"><input type="radio" name="visibility" value="draft" checked=${form.visibility === "draft"}
          onChange=${set("visibility")} /> Draft (private)</label>
        <label class="inline"><input type="radio" name="visibility" value="unlisted" checked=${form.visibility === "unlisted"}
          onChange=${set("visibility")} /> Unlisted (share link)</label></fieldset>`}
      ${field("presentation", "Presentation (clinical history)",
        html`<textarea id="f-presentation" rows="3" maxlength="20000" value=${form.presentation} onInput=${set("presentation")}></textarea>`)}
      <div class="two">
        ${field("patient_age", "Patient age (years)",
          html`<input id="f-patient_age" type="number" min="0" max="130" value=${form.patient_age} onInput=${set("patient_age")} />`)}
        ${field("patient_sex", "Patient sex", html`<select id="f-patient_sex" value=${form.patient_sex} onChange=${set("patient_sex")}>
          <option value="">—</option>${SEX.map((s) => html`<option value=${s}>${s}</option>`)}</select>`)}
      </div>
      ${field("systems", "Systems (comma separated)", html`<input id="f-systems" value=${form.systems} onInput=${set("systems")}
        placeholder="musculoskeletal, paediatrics" />`)}
      ${field("tags", "Tags (comma separated)", html`<input id="f-tags" value=${form.tags} onInput=${set("tags")} />`)}
      ${field("diagnosis", "Diagnosis", html`<input id="f-diagnosis" maxlength="20000" value=${form.diagnosis} onInput=${set("diagnosis")} />`)}
      ${field("diagnostic_certainty", "Diagnostic certainty", html`<select id="f-diagnostic_certainty"
        value=${form.diagnostic_certainty} onChange=${set("diagnostic_certainty")}>
        <option value="">—</option>${CERTAINTY.map((s) => html`<option value=${s}>${s.replace("_", " ")}</option>`)}</select>`)}
      ${field("discussion", "Discussion", html`<textarea id="f-discussion" rows="5" maxlength="20000" value=${form.discussion}
        onInput=${set("discussion")}></textarea>`)}
      <p class="hint">No patient identifiers in any text: names, dates, places and record numbers stop a case in moderation.</p>
      <div class="buttons">
        <button type="submit" disabled=${busy}>${caseId ? "Save changes" : "Create case"}</button>
        <${Link} href=${caseId ? `/cases/${caseId}` : "/"}>Cancel</${Link}>
      </div>
      <${ErrorBox} error=${error} />
    </form>
  </section>`;
}
