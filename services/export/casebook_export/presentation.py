"""The offline presentation: one self-contained HTML file, streamed image by image."""

from __future__ import annotations

import base64
import hashlib
import html
from collections.abc import Callable, Iterable, Iterator, Sequence

from casebook_export.layout import (
    attribution_of,
    certainty_label,
    clean_text,
    licence_line,
    ordered_series,
    ordered_studies,
    patient_line,
)
from casebook_export.model import ExportCase, ExportImage
from casebook_export.render import Frame, RenderError

FrameProvider = Callable[[ExportImage], Iterable[Frame]]
Progress = Callable[[int, int], None]

_STYLE = """
:root{color-scheme:dark;--fg:#e8e8e8;--muted:#a0a0a0;--accent:#6cb4ff;--panel:#1c1c1c}
*{box-sizing:border-box}
body{margin:0;background:#111;color:var(--fg);font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
header.site{padding:.6rem 1rem;background:#000;border-bottom:1px solid #333;display:flex;gap:1rem;
  align-items:center;flex-wrap:wrap}
header.site .brand{font-weight:700}
nav.cases{display:flex;gap:.5rem;align-items:center;flex-wrap:wrap}
nav.cases ol{display:flex;gap:.25rem;list-style:none;margin:0;padding:0;flex-wrap:wrap}
nav.cases a{color:var(--accent)}
nav.cases a[aria-current=true]{color:var(--fg);font-weight:700;text-decoration:none}
button{background:#2a2a2a;color:var(--fg);border:1px solid #444;border-radius:4px;padding:.2rem .7rem;cursor:pointer}
main{max-width:1200px;margin:0 auto;padding:1rem}
article.case{margin-bottom:3rem}
article.case h1{margin:.2rem 0 .4rem;font-size:1.7rem}
.credit{color:var(--muted);font-size:.9rem;margin:.2rem 0}
dl.facts{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem;margin:1rem 0}
dl.facts dt{color:var(--muted)}
dl.facts dd{margin:0}
.text{white-space:pre-wrap;overflow-wrap:anywhere}
section.study{background:var(--panel);border-radius:6px;padding:.8rem 1rem;margin:1.2rem 0}
section.study h2{margin:.2rem 0;font-size:1.3rem}
.viewer{margin:1rem 0;outline:none}
.viewer:focus-visible .stack,.viewer.active .stack{box-shadow:0 0 0 2px var(--accent)}
.viewer h3{margin:.2rem 0;font-size:1rem;color:var(--muted)}
.stack{position:relative;background:#000;height:min(75vh,720px);display:flex;align-items:center;justify-content:center;
  user-select:none;touch-action:none;cursor:ns-resize;border-radius:4px}
.stack img.frame{width:100%;height:100%;object-fit:contain}
.stack .frame[hidden]{display:none}
.stack .missing{color:var(--muted);padding:2rem}
.controls{display:flex;gap:.8rem;align-items:center;margin-top:.4rem}
.controls input[type=range]{flex:1}
.counter{font-variant-numeric:tabular-nums;min-width:6em;text-align:right}
.hint{color:var(--muted);font-size:.85rem}
footer.licence{color:var(--muted);font-size:.85rem;border-top:1px solid #333;padding-top:.6rem}
"""

_SCRIPT = """
(function () {
  "use strict";
  var viewers = Array.prototype.slice.call(document.querySelectorAll(".viewer"));
  var cases = Array.prototype.slice.call(document.querySelectorAll("article.case"));
  var active = null;

  function show(v, i) {
    var frames = v.frames;
    if (!frames.length) { return; }
    i = Math.max(0, Math.min(frames.length - 1, i));
    frames[v.index].hidden = true;
    frames[i].hidden = false;
    v.index = i;
    v.el.setAttribute("data-index", String(i));
    v.slider.value = String(i + 1);
    v.counter.textContent = (i + 1) + " / " + frames.length;
  }
  function activate(v) {
    if (active && active !== v) { active.el.classList.remove("active"); }
    active = v;
    v.el.classList.add("active");
  }
  var state = viewers.map(function (el) {
    var v = {
      el: el,
      frames: el.querySelectorAll(".frame"),
      index: 0,
      slider: el.querySelector("input[type=range]"),
      counter: el.querySelector(".counter")
    };
    v.slider.max = String(Math.max(1, v.frames.length));
    v.slider.disabled = v.frames.length < 2;
    show(v, 0);
    var stack = el.querySelector(".stack");
    stack.addEventListener("wheel", function (e) {
      e.preventDefault();
      activate(v);
      show(v, v.index + (e.deltaY > 0 ? 1 : -1));
    }, { passive: false });
    var dragY = null;
    stack.addEventListener("pointerdown", function (e) {
      dragY = e.clientY; activate(v); el.focus({ preventScroll: true });
      stack.setPointerCapture(e.pointerId);
    });
    stack.addEventListener("pointermove", function (e) {
      if (dragY === null) { return; }
      var steps = Math.trunc((e.clientY - dragY) / 6);
      if (steps !== 0) { dragY += steps * 6; show(v, v.index + steps); }
    });
    stack.addEventListener("pointerup", function () { dragY = null; });
    stack.addEventListener("pointercancel", function () { dragY = null; });
    v.slider.addEventListener("input", function () {
      activate(v);
      show(v, parseInt(v.slider.value, 10) - 1);
    });
    el.addEventListener("focusin", function () { activate(v); });
    el.addEventListener("mouseenter", function () { activate(v); });
    el.viewer = v;
    return v;
  });

  function currentCase() {
    for (var i = 0; i < cases.length; i++) { if (!cases[i].hidden) { return i; } }
    return 0;
  }
  function showCase(i) {
    if (cases.length < 2) { return; }
    i = Math.max(0, Math.min(cases.length - 1, i));
    cases.forEach(function (c, j) { c.hidden = j !== i; });
    document.querySelectorAll("nav.cases a").forEach(function (a, j) {
      a.setAttribute("aria-current", j === i ? "true" : "false");
    });
    var label = document.querySelector("nav.cases .position");
    if (label) { label.textContent = "Case " + (i + 1) + " of " + cases.length; }
    var first = cases[i].querySelector(".viewer");
    if (first) { activate(first.viewer); }
    window.scrollTo(0, 0);
  }
  document.querySelectorAll("nav.cases a").forEach(function (a, j) {
    a.addEventListener("click", function (e) { e.preventDefault(); showCase(j); });
  });
  var prev = document.querySelector("nav.cases .prev");
  var next = document.querySelector("nav.cases .next");
  if (prev) { prev.addEventListener("click", function () { showCase(currentCase() - 1); }); }
  if (next) { next.addEventListener("click", function () { showCase(currentCase() + 1); }); }

  document.addEventListener("keydown", function (e) {
    if (e.altKey || e.ctrlKey || e.metaKey) { return; }
    var t = e.target;
    if (t && t.tagName === "INPUT" && t.type === "range") { return; }
    if (e.key === "n" || e.key === "p") { showCase(currentCase() + (e.key === "n" ? 1 : -1)); return; }
    var v = active;
    if (!v || v.el.closest("article.case").hidden) {
      var first = cases.length ? cases[currentCase()].querySelector(".viewer") : null;
      if (!first) { return; }
      v = first.viewer; activate(v);
    }
    var step = {
      ArrowDown: 1, ArrowRight: 1, j: 1, ArrowUp: -1, ArrowLeft: -1, k: -1, PageDown: 10, PageUp: -10
    }[e.key];
    if (step !== undefined) { e.preventDefault(); show(v, v.index + step); }
    else if (e.key === "Home") { e.preventDefault(); show(v, 0); }
    else if (e.key === "End") { e.preventDefault(); show(v, v.frames.length - 1); }
  });

  var start = 0;
  var m = /^#case-(\\d+)$/.exec(window.location.hash);
  if (m) { start = parseInt(m[1], 10) - 1; }
  showCase(start);
  if (state.length && !active) { activate(state[0]); }
})();
"""


def _csp_hash(source: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(source.encode("utf-8")).digest()).decode("ascii") + "'"


# Only this file's own style and script may run, and images only from data
# URIs: even if some text escaped escaping, it could neither execute nor
# reach the network.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; img-src data:; "
    f"style-src {_csp_hash(_STYLE)}; script-src {_csp_hash(_SCRIPT)}; "
    "base-uri 'none'; form-action 'none'"
)


def _e(text: str) -> str:
    """Escape text for HTML content and quoted attribute values."""
    return html.escape(clean_text(text), quote=True)


def presentation_chunks(
    cases: Sequence[ExportCase],
    *,
    frames: FrameProvider,
    progress: Progress | None = None,
    title: str | None = None,
) -> Iterator[bytes]:
    """Yield the presentation HTML in pieces, one image at a time.

    `frames(image)` gives the display frames of one image; a RenderError from
    it is shown as a visible notice in the stack instead of failing the whole
    presentation. `progress(done, total)` is called after each image.
    Memory use is bounded by the largest frame, not by the case size.
    """
    if not cases:
        raise ValueError("a presentation needs at least one case")
    total = sum(len(case.images()) for case in cases)
    done = 0
    page_title = title or (cases[0].title if len(cases) == 1 else "Casebook playlist")
    yield _head(page_title).encode("utf-8")
    if len(cases) > 1:
        yield _case_nav(cases).encode("utf-8")
    yield b"</header><main>"
    for c_no, case in enumerate(cases, start=1):
        yield _case_intro(case, c_no).encode("utf-8")
        for s_no, study in enumerate(ordered_studies(case), start=1):
            yield (
                f'<section class="study"><h2>Study {s_no}: {_e(study.modality) or "unknown modality"}</h2>'
                f'<h3>Findings</h3><div class="text findings">{_e(study.findings) or "(none)"}</div>'
            ).encode()
            for r_no, series in enumerate(ordered_series(study), start=1):
                label = f"Study {s_no} {clean_text(study.modality)}, series {r_no}"
                yield (
                    f'<div class="viewer" tabindex="0" data-index="0" aria-label="{_e(label)}">'
                    f"<h3>Series {r_no}: {_e(series.description) or 'untitled'}</h3>"
                    '<div class="stack">'
                ).encode()
                frame_no = 0
                for image in series.images:
                    for chunk in _image_frames(image, frames, label, frame_no):
                        frame_no += 1
                        yield chunk
                    done += 1
                    if progress is not None:
                        progress(done, total)
                yield (
                    "</div>"
                    '<div class="controls"><input type="range" min="1" max="1" value="1" step="1" '
                    f'aria-label="Image in {_e(label)}"><span class="counter">1 / {max(frame_no, 1)}</span></div>'
                    "</div>"
                ).encode()
            yield b"</section>"
        yield _case_outro(case).encode("utf-8")
    yield f"</main><script>{_SCRIPT}</script></body></html>".encode()


def _image_frames(image: ExportImage, frames: FrameProvider, label: str, first_no: int) -> Iterator[bytes]:
    number = first_no
    try:
        for frame in frames(image):
            hidden = "" if number == 0 else " hidden"
            data = base64.b64encode(frame.data).decode("ascii")
            yield (
                f'<img class="frame" alt="{_e(label)}, image {number + 1}" width="{frame.width}" '
                f'height="{frame.height}" src="data:{frame.media_type};base64,{data}"{hidden}>'
            ).encode("ascii")
            number += 1
    except RenderError:
        hidden = "" if number == 0 else " hidden"
        yield (
            f'<div class="frame missing" role="img" aria-label="{_e(label)}, image {number + 1}"{hidden}>'
            "This image could not be displayed offline; it is included in the case originals.</div>"
        ).encode()


def _head(title: str) -> str:
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CONTENT_SECURITY_POLICY}">'
        '<meta name="referrer" content="no-referrer">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{_STYLE}</style></head><body>"
        '<header class="site"><span class="brand">Casebook</span>'
        '<span class="hint">Scroll a series with the mouse wheel, by dragging, with the slider, '
        "or with the arrow keys.</span>"
    )


def _case_nav(cases: Sequence[ExportCase]) -> str:
    items = "".join(
        f'<li><a href="#case-{n}" aria-current="{"true" if n == 1 else "false"}">{n}. {_e(case.title)}</a></li>'
        for n, case in enumerate(cases, start=1)
    )
    return (
        '<nav class="cases" aria-label="Cases"><button type="button" class="prev">Previous case</button>'
        f'<span class="position">Case 1 of {len(cases)}</span>'
        '<button type="button" class="next">Next case</button>'
        f"<ol>{items}</ol></nav>"
    )


def _credit(case: ExportCase) -> str:
    return f"{_e(attribution_of(case))}. Licence: {_e(licence_line(case))}"


def _case_intro(case: ExportCase, number: int) -> str:
    systems = ", ".join(clean_text(s) for s in case.systems)
    tags = ", ".join(clean_text(t) for t in case.tags)
    facts = [
        ("Patient", patient_line(case)),
        ("Systems", systems),
        ("Diagnosis", case.diagnosis),
        ("Diagnostic certainty", certainty_label(case.diagnostic_certainty)),
        ("Tags", tags),
    ]
    rows = "".join(f"<dt>{name}</dt><dd>{_e(value) or '(none)'}</dd>" for name, value in facts)
    return (
        f'<article class="case" id="case-{number}">'
        f'<h1 class="case-title">{_e(case.title) or "Untitled case"}</h1>'
        f'<p class="credit attribution">{_credit(case)}</p>'
        f'<dl class="facts">{rows}</dl>'
        f'<h2>Presentation</h2><div class="text presentation">{_e(case.presentation) or "(none)"}</div>'
    )


def _case_outro(case: ExportCase) -> str:
    return (
        f'<h2>Discussion</h2><div class="text discussion">{_e(case.discussion) or "(none)"}</div>'
        f'<footer class="licence">{_credit(case)}</footer></article>'
    )
