// Casebook's series viewer and teaching deck: one framework-free ES module shared by the browser console and the
// offline presentation. It builds its own DOM with textContent only (never innerHTML), loads nothing but the
// frame sources it is given, and sets styles through CSSOM so that a strict Content-Security-Policy holds.
//
//   mountStack(el, {frames: [{src, label, note?}], presets: [{name, center, width}], label?})
//     -> {go(i), setPreset(name), destroy(), refresh(), index, preset, length}
//   mountDeck(el, {title, slides: [...]}) -> {go(i), next(), prev(), destroy(), index, length, slide}
//   playlistDeck(title, decks) -> one deck: a title slide, then each case deck behind a title slide of its own
//
// A frame's src is a URL string, or a function of the current preset ({name, center, width}, or null without
// presets) that returns one, so a server can render the window a preset asks for. A frame with a `note` and no
// src shows the note instead of an image (an image that could not be rendered).

"use strict";

const PRELOAD = 2; // neighbours fetched on each side of the shown frame
const WHEEL_STEP = 50; // pixels of trackpad scrolling per frame
const DRAG_STEP = 8; // pixels of vertical drag per frame
const DECK_KEYS = new Set(["PageDown", "PageUp", "Home", "End", " "]);

let uid = 0;

function make(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

function clamp(i, n) {
  return Math.max(0, Math.min(n - 1, i));
}

function typing(target) {
  if (!target || !target.tagName) return false;
  const tag = target.tagName;
  if (tag === "TEXTAREA" || tag === "SELECT" || target.isContentEditable) return true;
  return tag === "INPUT" && target.type !== "range" && target.type !== "button" && target.type !== "checkbox";
}

/**
 * Mount a series as a scrollable stack into `el` (its content is replaced).
 *
 * Wheel, vertical drag (mouse or touch), the slider, and while the viewer has focus ArrowUp/ArrowDown
 * (also Left/Right), PageUp/PageDown (ten frames), Home/End; number keys 1-9 pick a window preset.
 * Options beyond the documented ones: `label` (the series' accessible name) and `clicker: true`, used by
 * the deck, which leaves Left/Right, PageUp/PageDown, Space, Home and End to the slide stepping.
 */
export function mountStack(el, options) {
  const opts = options || {};
  const frames = Array.isArray(opts.frames) ? opts.frames : [];
  const presets = Array.isArray(opts.presets) ? opts.presets : [];
  const label = opts.label || el.getAttribute("aria-label") || "Series";
  const clicker = Boolean(opts.clicker);
  const n = frames.length;
  const id = "cb-stack-" + ++uid;
  let index = 0;
  let preset = presets.length ? presets[0] : null;
  let wheelRest = 0;
  let dragY = null;
  const cache = new Map(); // src -> Image kept alive so the browser keeps it decoded

  el.replaceChildren();
  el.classList.add("cb-stack");
  el.setAttribute("role", "group");
  el.setAttribute("aria-roledescription", "image stack");
  el.setAttribute("aria-label", label);
  if (!el.hasAttribute("tabindex")) el.tabIndex = 0;

  const view = make("div", "cb-stack-view");
  const img = make("img", "cb-stack-image");
  img.draggable = false;
  img.decoding = "async";
  const note = make("div", "cb-stack-note");
  note.setAttribute("role", "img");
  note.hidden = true;
  view.append(img, note);

  const controls = make("div", "cb-stack-controls");
  const slider = make("input", "cb-stack-slider");
  slider.type = "range";
  slider.min = "1";
  slider.max = String(Math.max(1, n));
  slider.step = "1";
  slider.value = "1";
  slider.disabled = n < 2;
  slider.setAttribute("aria-label", "Image in " + label);
  const counter = make("span", "cb-stack-counter");
  counter.id = id + "-counter";
  counter.setAttribute("aria-live", "polite");
  controls.append(slider, counter);

  const toolbar = make("div", "cb-stack-presets");
  toolbar.setAttribute("role", "toolbar");
  toolbar.setAttribute("aria-label", "Window presets for " + label);
  const buttons = presets.map((p, i) => {
    const b = make("button", "cb-stack-preset", (i < 9 ? i + 1 + " " : "") + p.name);
    b.type = "button";
    b.dataset.preset = p.name;
    // A preset without a window ("As stored") shows the file's own; say so rather than "centre null".
    b.title = p.center == null || p.width == null
      ? p.name + " (the window stored in the file)"
      : p.name + " (centre " + p.center + ", width " + p.width + ")";
    b.addEventListener("click", () => setPreset(p.name));
    toolbar.append(b);
    return b;
  });
  toolbar.hidden = presets.length === 0;
  el.append(view, controls, toolbar);

  function srcOf(i) {
    const f = frames[i];
    if (!f) return "";
    return typeof f.src === "function" ? f.src(preset) || "" : f.src || "";
  }

  function preload() {
    const keep = new Set();
    for (let d = -PRELOAD; d <= PRELOAD; d++) {
      const j = index + d;
      if (j < 0 || j >= n) continue;
      const src = srcOf(j);
      if (!src) continue;
      keep.add(src);
      if (!cache.has(src)) {
        const pre = new Image();
        pre.decoding = "async";
        pre.src = src;
        cache.set(src, pre);
      }
    }
    for (const src of cache.keys()) if (!keep.has(src)) cache.delete(src);
  }

  function render() {
    if (n === 0) {
      img.hidden = true;
      note.hidden = false;
      note.textContent = "No images in this series.";
      counter.textContent = "0 / 0";
      el.dataset.index = "0";
      return;
    }
    const f = frames[index];
    const src = srcOf(index);
    const name = f.label || label + ", image " + (index + 1) + " of " + n;
    if (src) {
      if (img.getAttribute("src") !== src) img.src = src;
      img.alt = name;
      img.hidden = false;
      note.hidden = true;
    } else {
      img.hidden = true;
      img.removeAttribute("src");
      note.hidden = false;
      note.textContent = f.note || "This image is not available.";
      note.setAttribute("aria-label", name);
    }
    slider.value = String(index + 1);
    slider.setAttribute("aria-valuetext", "Image " + (index + 1) + " of " + n);
    counter.textContent = index + 1 + " / " + n;
    el.dataset.index = String(index);
    el.dataset.preset = preset ? preset.name : "";
    buttons.forEach((b, i) => b.setAttribute("aria-pressed", String(presets[i] === preset)));
    preload();
  }

  function go(i) {
    if (n === 0) return;
    const next = clamp(Math.trunc(Number(i) || 0), n);
    if (next !== index) {
      index = next;
      render();
    }
  }

  function setPreset(name) {
    const found = presets.find((p) => p.name === name);
    if (!found) throw new RangeError("no window preset named " + name);
    if (found !== preset) {
      preset = found;
      cache.clear();
      render();
    }
  }

  function onWheel(e) {
    if (n < 2) return;
    e.preventDefault();
    const dy = e.deltaMode === 0 ? e.deltaY : e.deltaY * WHEEL_STEP;
    if (Math.abs(dy) >= WHEEL_STEP) {
      wheelRest = 0;
      go(index + Math.sign(dy));
      return;
    }
    wheelRest += dy;
    if (Math.abs(wheelRest) >= WHEEL_STEP) {
      go(index + Math.sign(wheelRest));
      wheelRest = 0;
    }
  }

  function onPointerDown(e) {
    if (e.button !== undefined && e.button !== 0) return;
    dragY = e.clientY;
    el.focus({ preventScroll: true });
    if (view.setPointerCapture) view.setPointerCapture(e.pointerId);
  }

  function onPointerMove(e) {
    if (dragY === null) return;
    const steps = Math.trunc((e.clientY - dragY) / DRAG_STEP);
    if (steps !== 0) {
      dragY += steps * DRAG_STEP;
      go(index + steps);
    }
  }

  function onPointerUp() {
    dragY = null;
  }

  function onSlider() {
    go(parseInt(slider.value, 10) - 1);
  }

  function onKey(e) {
    if (e.altKey || e.ctrlKey || e.metaKey) return;
    const fromSlider = e.target === slider;
    if (handleKey(e.key, fromSlider)) {
      e.preventDefault();
      e.stopPropagation(); // a key the stack used is not also a slide step
    } else if (fromSlider && clicker && DECK_KEYS.has(e.key)) {
      e.preventDefault(); // the slider must not move by a page while the deck steps a slide
    }
  }

  // The keys a stack answers; returns whether it used the key. Shared with the deck, which forwards
  // ArrowUp/ArrowDown and the number keys to the stack last used on the slide.
  function handleKey(key, fromSlider) {
    if (/^[1-9]$/.test(key)) {
      const p = presets[Number(key) - 1];
      if (!p) return false;
      setPreset(p.name);
      return true;
    }
    const own = { ArrowDown: 1, ArrowUp: -1 };
    const sideways = { ArrowRight: 1, ArrowLeft: -1 };
    const pages = { PageDown: 10, PageUp: -10 };
    if (key in own) {
      go(index + own[key]);
      return true;
    }
    // On the deck, Left/Right step slides unless the slider itself has focus.
    if (key in sideways && (!clicker || fromSlider)) {
      go(index + sideways[key]);
      return true;
    }
    if (clicker) return false;
    if (key in pages) {
      go(index + pages[key]);
      return true;
    }
    if (key === "Home" || key === "End") {
      go(key === "Home" ? 0 : n - 1);
      return true;
    }
    return false;
  }

  view.addEventListener("wheel", onWheel, { passive: false });
  view.addEventListener("pointerdown", onPointerDown);
  view.addEventListener("pointermove", onPointerMove);
  view.addEventListener("pointerup", onPointerUp);
  view.addEventListener("pointercancel", onPointerUp);
  slider.addEventListener("input", onSlider);
  el.addEventListener("keydown", onKey);

  render();

  return {
    go,
    setPreset,
    handleKey,
    // Draw the shown frame again: a src function that now returns another URL (an image fetched since) is used.
    refresh() {
      if (n > 0) render();
    },
    get index() {
      return index;
    },
    get preset() {
      return preset ? preset.name : null;
    },
    get length() {
      return n;
    },
    destroy() {
      view.removeEventListener("wheel", onWheel);
      el.removeEventListener("keydown", onKey);
      cache.clear();
      el.replaceChildren();
      el.classList.remove("cb-stack");
      for (const a of ["role", "aria-roledescription", "data-index", "data-preset"]) el.removeAttribute(a);
    },
  };
}

/**
 * A playlist as one deck: its title slide, then each case deck in turn behind a title slide "Case i of n".
 */
export function playlistDeck(title, decks) {
  const list = Array.isArray(decks) ? decks : [];
  const slides = [{ kind: "title", heading: title, subheading: list.length + (list.length === 1 ? " case" : " cases") }];
  list.forEach((deck, i) => {
    const position = "Case " + (i + 1) + " of " + list.length;
    const caseSlides = deck.slides || [];
    slides.push({ kind: "title", heading: position, subheading: deck.title || "", footer: firstFooter(caseSlides) });
    for (const s of caseSlides) slides.push(Object.assign({ subheading: position }, s));
  });
  return { title, slides };
}

function firstFooter(slides) {
  for (const s of slides) if (s.footer) return s.footer;
  return "";
}

const NEXT_KEYS = new Set(["ArrowRight", "PageDown", " ", "Spacebar"]);
const PREV_KEYS = new Set(["ArrowLeft", "PageUp"]);

/**
 * Mount a teaching deck into `el` (its content is replaced). Only the current slide is in the document, so the
 * diagnosis cannot be seen, read aloud or found before its slide is reached.
 *
 * deck = {title, slides: [{kind, heading, subheading?, facts?: [[term, value]], sections?: [{heading?, text}],
 *                          stacks?: [{label, frames, presets}], footer?}]}
 * kind is "title", "history", "images", "findings", "diagnosis" or "text" (it only selects styling and tests).
 * Keys anywhere on the page: Right, Space, PageDown next; Left, Shift+Space, PageUp previous; Home, End;
 * ArrowUp/ArrowDown and 1-9 go to the stack last used on an images slide.
 */
export function mountDeck(el, deck) {
  const d = deck || {};
  const slides = Array.isArray(d.slides) ? d.slides : [];
  const n = slides.length;
  const doc = el.ownerDocument || document;
  const positions = new Map(); // "slide/stack" -> {index, preset} so returning to a slide keeps the stack where it was
  let index = -1;
  let stacks = [];
  let active = null;

  el.replaceChildren();
  el.classList.add("cb-deck");
  el.setAttribute("role", "region");
  el.setAttribute("aria-roledescription", "slide deck");
  el.setAttribute("aria-label", d.title || "Teaching deck");

  // div, not header/footer: inside the deck's region they are no page banner or contentinfo landmark
  const bar = make("div", "cb-deck-bar");
  const heading = make("span", "cb-deck-title", d.title || "");
  const nav = make("nav", "cb-deck-nav");
  nav.setAttribute("aria-label", "Slides");
  const prevBtn = make("button", "cb-deck-prev", "Previous");
  prevBtn.type = "button";
  prevBtn.setAttribute("aria-label", "Previous slide");
  const counter = make("span", "cb-deck-counter");
  counter.setAttribute("aria-hidden", "true"); // the status below says it in words
  const status = make("p", "cb-sr-only");
  status.setAttribute("role", "status");
  const nextBtn = make("button", "cb-deck-next", "Next");
  nextBtn.type = "button";
  nextBtn.setAttribute("aria-label", "Next slide");
  nav.append(prevBtn, counter, nextBtn);
  bar.append(heading, nav);
  const stage = make("div", "cb-deck-stage");
  const footer = make("div", "cb-deck-footer");
  const hint = make(
    "p",
    "cb-deck-hint",
    "Right, Space or Page Down: next slide. Left or Page Up: previous. Up and Down scroll a series; 1-9 pick a window.",
  );
  el.append(bar, status, stage, footer, hint);

  function saveStacks() {
    stacks.forEach((s, j) => {
      positions.set(index + "/" + j, { index: s.index, preset: s.preset });
      s.destroy();
    });
    stacks = [];
    active = null;
  }

  function renderSlide(s) {
    const section = make("section", "cb-slide cb-slide-" + (s.kind || "text"));
    section.dataset.kind = s.kind || "text";
    section.setAttribute("aria-roledescription", "slide");
    section.setAttribute("aria-label", "Slide " + (index + 1) + " of " + n + ": " + (s.heading || s.kind || ""));
    if (s.subheading) section.append(make("p", "cb-slide-context", s.subheading));
    section.append(make("h1", "cb-slide-heading", s.heading || ""));
    if (Array.isArray(s.facts) && s.facts.length) {
      const dl = make("dl", "cb-slide-facts");
      for (const [term, value] of s.facts) dl.append(make("dt", null, term), make("dd", null, value || "(none)"));
      section.append(dl);
    }
    for (const part of Array.isArray(s.sections) ? s.sections : []) {
      const block = make("div", "cb-slide-section");
      if (part.heading) block.append(make("h2", null, part.heading));
      block.append(make("p", "cb-slide-text", part.text || "(none)"));
      section.append(block);
    }
    const list = Array.isArray(s.stacks) ? s.stacks : [];
    if (list.length) {
      const grid = make("div", "cb-slide-stacks");
      grid.dataset.count = String(list.length);
      section.append(grid);
      list.forEach((spec, j) => {
        const box = make("figure", "cb-slide-stack");
        const holder = make("div");
        box.append(holder);
        if (spec.label) box.append(make("figcaption", null, spec.label));
        grid.append(box);
        const stack = mountStack(holder, {
          frames: spec.frames,
          presets: spec.presets,
          label: spec.label,
          clicker: true,
        });
        const saved = positions.get(index + "/" + j);
        if (saved) {
          if (saved.preset) stack.setPreset(saved.preset);
          stack.go(saved.index);
        }
        const use = () => {
          active = stack;
        };
        holder.addEventListener("pointerdown", use);
        holder.addEventListener("focusin", use);
        holder.addEventListener("wheel", use, { passive: true });
        stacks.push(stack);
      });
      active = stacks[0];
    }
    return section;
  }

  function go(i) {
    if (n === 0) {
      counter.textContent = "0 / 0";
      return;
    }
    const next = clamp(Math.trunc(Number(i) || 0), n);
    if (next === index) return;
    saveStacks();
    index = next;
    const s = slides[index];
    stage.replaceChildren(renderSlide(s));
    footer.textContent = s.footer || "";
    counter.textContent = index + 1 + " / " + n;
    status.textContent = "Slide " + (index + 1) + " of " + n + ": " + (s.heading || s.kind || "");
    el.dataset.slide = String(index);
    el.dataset.kind = s.kind || "text";
    prevBtn.disabled = index === 0;
    nextBtn.disabled = index === n - 1;
    el.dispatchEvent(new CustomEvent("slidechange", { detail: { index, kind: s.kind || "text" } }));
  }

  function onKey(e) {
    // Not defaultPrevented: a focused stack's slider prevents its own page step but leaves the key to the deck.
    if (e.altKey || e.ctrlKey || e.metaKey || typing(e.target)) return;
    const key = e.key;
    const onButton = e.target && e.target.tagName === "BUTTON";
    if ((key === " " || key === "Enter") && onButton) return; // the button's own click steps
    let used = true;
    if (key === " " && e.shiftKey) go(index - 1);
    else if (NEXT_KEYS.has(key)) go(index + 1);
    else if (PREV_KEYS.has(key)) go(index - 1);
    else if (key === "Home") go(0);
    else if (key === "End") go(n - 1);
    else used = active ? active.handleKey(key, false) : false;
    if (used) e.preventDefault();
  }

  const onPrev = () => go(index - 1);
  const onNext = () => go(index + 1);
  prevBtn.addEventListener("click", onPrev);
  nextBtn.addEventListener("click", onNext);
  doc.addEventListener("keydown", onKey);

  go(0);

  return {
    go,
    next: onNext,
    prev: onPrev,
    get index() {
      return index;
    },
    get length() {
      return n;
    },
    get slide() {
      return slides[index] || null;
    },
    destroy() {
      saveStacks();
      doc.removeEventListener("keydown", onKey);
      el.replaceChildren();
      el.classList.remove("cb-deck");
    },
  };
}
