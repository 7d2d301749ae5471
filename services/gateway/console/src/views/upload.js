// Uploads into a study: DICOM files, zips of them, or PNG/JPEG exports, one after another with a progress bar each.
import { useState } from "preact/hooks";
import { upload } from "../api.js";
import { html, Progress } from "../ui.js";

function Result({ r }) {
  if (r.state === "sending") return html`<${Progress} value=${r.progress} label=${`Uploading ${r.name}`} />`;
  if (r.state === "waiting") return html`<span class="muted">waiting</span>`;
  if (r.state === "failed") {
    return html`<span class="error" role="alert">${r.message} <code>${r.code}</code></span>`;
  }
  return html`<span class="ok">${r.images} image${r.images === 1 ? "" : "s"} accepted, processing</span>
    ${r.rejected.length > 0 && html`<details open><summary>${r.rejected.length} refused in the archive</summary>
      <ul>${r.rejected.map((m) => html`<li><code>${m.name}</code>: ${m.message} <code>${m.code}</code></li>`)}</ul></details>`}`;
}

export function Uploader({ caseId, study, onUploaded }) {
  const [rows, setRows] = useState([]);
  const [busy, setBusy] = useState(false);
  const inputId = `upload-${study.id}`;

  const send = async (files) => {
    const start = rows.length;
    let list = [...rows, ...files.map((f) => ({ name: f.name, size: f.size, state: "waiting", progress: 0 }))];
    setRows(list);
    setBusy(true);
    const update = (i, patch) => {
      list = list.map((r, j) => (j === i ? { ...r, ...patch } : r));
      setRows(list);
    };
    for (let k = 0; k < files.length; k++) {
      const i = start + k;
      update(i, { state: "sending" });
      try {
        const { status, body } = await upload(`/v1/cases/${caseId}/studies/${study.id}/uploads`, files[k],
          (p) => update(i, { progress: p }));
        if (status === 202) {
          update(i, { state: "done", images: body.images.length, rejected: body.rejected || [] });
        } else {
          const err = (body && body.error) || { code: `http_${status}`, message: "the upload was refused" };
          update(i, { state: "failed", code: err.code, message: err.message });
        }
      } catch (e) {
        update(i, { state: "failed", code: e.code, message: e.message });
      }
      onUploaded();
    }
    setBusy(false);
  };
  const pick = (e) => {
    const files = [...e.target.files];
    e.target.value = "";
    if (files.length) send(files);
  };
  const drop = (e) => {
    e.preventDefault();
    const files = [...(e.dataTransfer ? e.dataTransfer.files : [])];
    if (files.length && !busy) send(files);
  };
  return html`<div class="uploader" onDragOver=${(e) => e.preventDefault()} onDrop=${drop}>
    <label for=${inputId}>Add images to study ${study.position} (${study.modality}): DICOM files, a zip of them, PNG or JPEG</label>
    <input id=${inputId} type="file" multiple disabled=${busy}
      accept=".dcm,.dicom,.ima,.zip,.png,.jpg,.jpeg,application/dicom,application/zip,image/png,image/jpeg" onChange=${pick} />
    <p class="hint">Or drop files here. Every image is de-identified before anyone else can see it.</p>
    ${rows.length > 0 && html`<ul class="uploads" aria-label="Uploads" aria-live="polite">${rows.map((r) => html`<li>
      <span class="file">${r.name} <span class="muted">${(r.size / 1024).toFixed(0)} KB</span></span>
      <${Result} r=${r} /></li>`)}</ul>`}
  </div>`;
}
