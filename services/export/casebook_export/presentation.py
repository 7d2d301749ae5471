"""The offline presentation: a self-contained teaching deck in one HTML file, streamed image by image."""

from __future__ import annotations

import base64
import hashlib
import html
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from functools import cache
from typing import Any

from casebook_export.layout import (
    attribution_of,
    certainty_label,
    clean_text,
    licence_line,
    ordered_series,
    ordered_studies,
    patient_line,
)
from casebook_export.model import ExportCase, ExportImage, ExportSeries
from casebook_export.render import Frame, RenderError
from casebook_web import asset_text

FrameProvider = Callable[[ExportImage], Iterable[Frame]]
Progress = Callable[[int, int], None]

# The case is shown as an unknown: its title often names the diagnosis, so the page title and every slide
# before the last keep it back.
UNKNOWN_CASE = "Unknown case"
MISSING_FRAME = "This image could not be displayed offline; it is included in the case originals."

_PAGE_STYLE = """
:root{color-scheme:dark}
body{margin:0;background:#111;color:#e8e8e8;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif}
.noscript{padding:2rem}
"""

# Reads the deck of each case (and the frames of each of its stacks) from the JSON data blocks above it and
# mounts one deck; several cases become a playlist deck with a title slide per case.
_BOOT = """
const readJson = (el) => JSON.parse(el.textContent);
const decks = Array.from(document.querySelectorAll("script.cb-case-deck"), (el) => {
  const deck = readJson(el);
  for (const slide of deck.slides) {
    for (const stack of slide.stacks || []) {
      const block = stack.frames && stack.frames.ref ? document.getElementById(stack.frames.ref) : null;
      stack.frames = block ? readJson(block) : [];
    }
  }
  return deck;
});
const meta = readJson(document.getElementById("cb-deck-meta"));
const root = document.getElementById("deck");
window.casebookDeck = mountDeck(root, decks.length === 1 ? decks[0] : playlistDeck(meta.title, decks));
"""


@cache
def _assets() -> tuple[str, str]:
    """The page's style and module script: casebook_web's viewer inlined, since an offline file loads nothing."""
    style = asset_text("viewer.css") + _PAGE_STYLE
    script = asset_text("viewer.js") + "\n" + _BOOT
    return style, script


def _csp_hash(source: str) -> str:
    return "'sha256-" + base64.b64encode(hashlib.sha256(source.encode("utf-8")).digest()).decode("ascii") + "'"


def content_security_policy() -> str:
    """Only this file's own style and script may run, and images only from data URIs: even if some text
    escaped escaping, it could neither execute nor reach the network. (JSON data blocks are not scripts.)"""
    style, script = _assets()
    return (
        "default-src 'none'; img-src data:; "
        f"style-src {_csp_hash(style)}; script-src {_csp_hash(script)}; "
        "base-uri 'none'; form-action 'none'"
    )


def _e(text: str) -> str:
    """Escape text for HTML content and quoted attribute values."""
    return html.escape(clean_text(text), quote=True)


def _json(value: Any) -> str:
    """JSON that is safe inside a <script type="application/json"> block: no `<`, `>` or `&` can close it."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return text.replace("&", "\\u0026").replace("<", "\\u003c").replace(">", "\\u003e")


def _t(text: str | None) -> str:
    return clean_text(text or "")


def presentation_chunks(
    cases: Sequence[ExportCase],
    *,
    frames: FrameProvider,
    progress: Progress | None = None,
    title: str | None = None,
) -> Iterator[bytes]:
    """Yield the teaching deck HTML in pieces, one image at a time.

    Each case runs history, then one slide per study with its series as stacks, then the findings, then the
    diagnosis with the title and discussion; several cases play in sequence behind a title slide each
    (`title` names the playlist). `frames(image)` gives the display frames of one image; a RenderError from
    it becomes a notice in the stack instead of failing the whole presentation. `progress(done, total)` is
    called after each image. Memory use is bounded by the largest frame, not by the case size.

    Raises ValueError for an empty list of cases.
    """
    if not cases:
        raise ValueError("a presentation needs at least one case")
    total = sum(len(case.images()) for case in cases)
    done = 0
    page_title = UNKNOWN_CASE if len(cases) == 1 else (title or "Casebook playlist")
    yield _head(page_title).encode("utf-8")
    yield f'<script type="application/json" id="cb-deck-meta">{_json({"title": _t(page_title)})}</script>'.encode()
    for c_no, case in enumerate(cases, start=1):
        yield (
            f'<script type="application/json" class="cb-case-deck" id="case-{c_no}">{_json(case_deck(case, c_no))}'
            "</script>"
        ).encode()
        for ref, series in _stack_refs(case, c_no):
            yield f'<script type="application/json" class="cb-frames" id="{ref}">['.encode()
            first = True
            for image in series.images:
                for entry in _image_frames(image, frames):
                    yield entry if first else b"," + entry
                    first = False
                done += 1
                if progress is not None:
                    progress(done, total)
            yield b"]</script>"
    _, script = _assets()
    yield f'<script type="module">{script}</script></body></html>'.encode()


def _stack_refs(case: ExportCase, c_no: int) -> Iterator[tuple[str, ExportSeries]]:
    for s_no, study in enumerate(ordered_studies(case), start=1):
        for r_no, series in enumerate(ordered_series(study), start=1):
            yield f"frames-{c_no}-{s_no}-{r_no}", series


def case_deck(case: ExportCase, c_no: int = 1) -> dict[str, Any]:
    """One case as a deck for casebook_web's mountDeck, its stacks' frames referring to data blocks by id."""
    credit = f"{_t(attribution_of(case))}. Licence: {_t(licence_line(case))}"
    studies = ordered_studies(case)
    slides: list[dict[str, Any]] = [
        {
            "kind": "history",
            "heading": "History",
            "facts": [["Patient", patient_line(case)], ["Systems", ", ".join(_t(s) for s in case.systems)]],
            "sections": [{"heading": "Presentation", "text": _t(case.presentation) or "(none)"}],
        }
    ]
    for s_no, study in enumerate(studies, start=1):
        series = ordered_series(study)
        if not series:
            continue
        stacks = [
            {
                "label": f"Study {s_no} {_t(study.modality)}, series {r_no}: {_t(one.description) or 'untitled'}",
                "frames": {"ref": f"frames-{c_no}-{s_no}-{r_no}"},
                "presets": [],
            }
            for r_no, one in enumerate(series, start=1)
        ]
        slides.append(
            {"kind": "images", "heading": f"Study {s_no}: {_t(study.modality) or 'unknown modality'}", "stacks": stacks}
        )
    slides.append(
        {
            "kind": "findings",
            "heading": "Findings",
            "sections": [
                {
                    "heading": f"Study {s_no}: {_t(study.modality) or 'unknown modality'}",
                    "text": _t(study.findings) or "(none)",
                }
                for s_no, study in enumerate(studies, start=1)
            ],
        }
    )
    slides.append(
        {
            "kind": "diagnosis",
            "heading": _t(case.title) or "Untitled case",
            "facts": [
                ["Diagnosis", _t(case.diagnosis)],
                ["Diagnostic certainty", certainty_label(case.diagnostic_certainty)],
                ["Tags", ", ".join(_t(t) for t in case.tags)],
            ],
            "sections": [{"heading": "Discussion", "text": _t(case.discussion) or "(none)"}],
        }
    )
    for slide in slides:
        slide["footer"] = credit
    return {"title": UNKNOWN_CASE, "slides": slides}


def _image_frames(image: ExportImage, frames: FrameProvider) -> Iterator[bytes]:
    try:
        for frame in frames(image):
            data = base64.b64encode(frame.data).decode("ascii")
            yield f'{{"src":"data:{frame.media_type};base64,{data}"}}'.encode("ascii")
    except RenderError:
        yield _json({"note": MISSING_FRAME}).encode("utf-8")


def _head(title: str) -> str:
    style, _ = _assets()
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{content_security_policy()}">'
        '<meta name="referrer" content="no-referrer">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{style}</style></head><body>"
        '<main><div id="deck" class="deck"><noscript><p class="noscript">This teaching deck needs JavaScript, which '
        "runs here without any network access.</p></noscript></div></main>"
    )
