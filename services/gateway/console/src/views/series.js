// A series as a scrollable stack (the shared viewer), its frames rendered by DICOMweb or served by /v1/images.
import { useEffect, useRef, useState } from "preact/hooks";
import { mountStack } from "casebook-viewer";
import { get, objectUrl, token } from "../api.js";
import { html } from "../ui.js";

// Windows a radiologist expects for CT; other DICOM series start with the window the file carries.
const CT_PRESETS = [
  { name: "Soft tissue", center: 40, width: 400 },
  { name: "Lung", center: -600, width: 1500 },
  { name: "Bone", center: 400, width: 1800 },
  { name: "Brain", center: 40, width: 80 },
];
const AS_STORED = { name: "As stored", center: null, width: null };
const PRELOAD = 2;

export function presetsFor(modality) {
  return modality === "CT" ? [...CT_PRESETS, AS_STORED] : [AS_STORED, ...CT_PRESETS.slice(0, 1)];
}

const tag = (obj, t) => (obj[t] && obj[t].Value ? obj[t].Value[0] : undefined);

/** The case's DICOM series as DICOMweb knows them: series UID → {study, instances: [{sop, frames}]}. */
export async function dicomwebIndex(caseId) {
  const studies = await get(`/dicomweb/studies?case_id=${encodeURIComponent(caseId)}`);
  const index = new Map();
  for (const st of studies) {
    const study = tag(st, "0020000D");
    const series = await get(`/dicomweb/studies/${study}/series`);
    for (const se of series) index.set(tag(se, "0020000E"), { study, series: tag(se, "0020000E") });
  }
  return index;
}

async function instancesOf(ref) {
  const rows = await get(`/dicomweb/studies/${ref.study}/series/${ref.series}/instances?limit=1000`);
  return rows
    .map((r) => ({ sop: tag(r, "00080018"), number: Number(tag(r, "00200013") || 0), frames: Number(tag(r, "00280008") || 1) }))
    .sort((a, b) => a.number - b.number);
}

function windowQuery(preset) {
  return preset && preset.center != null ? `?window=${preset.center},${preset.width},linear` : "";
}

/** Frame descriptors: a path per preset and a label. */
async function framesOf(series, ref) {
  if (!ref) {
    return series.images.map((im, i) => ({ path: () => `/v1/images/${im.id}`, label: `Image ${i + 1}` }));
  }
  // The index may not hold every ready instance yet: wait a little for the rest before showing the stack.
  let instances = await instancesOf(ref);
  for (let i = 0; i < 30 && instances.length < series.images.length; i++) {
    await new Promise((r) => setTimeout(r, 1000));
    instances = await instancesOf(ref);
  }
  const out = [];
  for (const inst of instances) {
    const base = `/dicomweb/studies/${ref.study}/series/${ref.series}/instances/${inst.sop}`;
    for (let k = 1; k <= inst.frames; k++) {
      const path = inst.frames > 1 ? `${base}/frames/${k}/rendered` : `${base}/rendered`;
      out.push({ path: (p) => path + windowQuery(p),
        label: `Instance ${inst.number || out.length + 1}${inst.frames > 1 ? `, frame ${k}` : ""}` });
    }
  }
  return out;
}

/**
 * Images need the caller's token until the case is public, and an <img> sends none: frames are fetched
 * with it into object URLs, the shown one and its neighbours first. Without a token, the plain paths.
 */
function frameCache() {
  const urls = new Map();
  const pending = new Map();
  const authed = !!token.get();
  return {
    url: (path) => (authed ? urls.get(path) || "" : path),
    async load(path) {
      if (!authed || urls.has(path)) return;
      if (!pending.has(path)) {
        pending.set(path, objectUrl(path).then((u) => urls.set(path, u), () => urls.set(path, "")));
      }
      await pending.get(path);
    },
    destroy: () => urls.forEach((u) => u && URL.revokeObjectURL(u)),
  };
}

export function SeriesStack({ series, dicomweb }) {
  const el = useRef(null);
  const wrap = useRef(null); // listens before the viewer does (capture on its parent)
  const [state, setState] = useState("loading");
  useEffect(() => {
    let stack = null;
    let dead = false;
    const listening = new AbortController();
    const cache = frameCache();
    const ref = series.uid && dicomweb ? dicomweb.get(series.uid) : null;
    const presets = ref ? presetsFor(series.modality) : [];
    (async () => {
      const frames = await framesOf(series, ref);
      if (dead) return;
      const around = async (preset, i) => {
        const near = frames.slice(Math.max(0, i - PRELOAD), i + PRELOAD + 1);
        await Promise.all(near.map((f) => cache.load(f.path(preset))));
      };
      await around(presets[0] || null, 0);
      if (dead || !el.current) return;
      stack = mountStack(el.current, {
        label: series.label,
        presets,
        frames: frames.map((f) => ({ label: f.label, src: (p) => cache.url(f.path(p)),
          note: "Loading this image…" })),
      });
      setState("ready");
      // A frame fetched after it was scrolled to is drawn at once.
      const redraw = () => stack.refresh();
      // The rest of the series in the background, three at a time; a preset change first fetches what it shows.
      const fill = async (preset) => {
        let next = 0;
        const worker = async () => {
          while (!dead && next < frames.length) {
            const i = next++;
            const path = frames[i].path(preset);
            const had = cache.url(path);
            await cache.load(path);
            if (!dead && !had && i === stack.index && stack.preset === (preset ? preset.name : null)) redraw();
          }
        };
        await Promise.all([worker(), worker(), worker()]);
      };
      fill(presets[0] || null);
      const choose = async (name, e) => {
        const p = presets.find((x) => x.name === name);
        if (!p || p.name === stack.preset) return;
        e.preventDefault();
        e.stopPropagation();
        await around(p, stack.index);
        if (!dead) {
          stack.setPreset(name);
          fill(p);
        }
      };
      wrap.current.addEventListener("click", (e) => {
        const b = e.target.closest && e.target.closest("button[data-preset]");
        if (b) choose(b.dataset.preset, e);
      }, { capture: true, signal: listening.signal });
      wrap.current.addEventListener("keydown", (e) => {
        if (/^[1-9]$/.test(e.key) && presets[Number(e.key) - 1] && !e.altKey && !e.ctrlKey && !e.metaKey)
          choose(presets[Number(e.key) - 1].name, e);
      }, { capture: true, signal: listening.signal });
    })().catch((e) => !dead && setState(e));
    return () => {
      dead = true;
      listening.abort();
      if (stack) stack.destroy();
      cache.destroy();
    };
  }, [series.key, dicomweb]);
  return html`<div class="series">
    <h4>${series.label}</h4>
    ${state === "loading" && html`<p class="muted" role="status">Loading the series…</p>`}
    ${state instanceof Error && html`<p class="error" role="alert">This series cannot be shown: ${state.message}</p>`}
    <div ref=${wrap}><div ref=${el} role="group" aria-label=${series.label}></div></div>
  </div>`;
}
