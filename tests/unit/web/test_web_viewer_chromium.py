"""The series viewer alone (casebook_web's demo page) in headless Chromium, served from the package's folder."""

from __future__ import annotations

import mimetypes
from pathlib import Path
from typing import Any

import pytest
from web_browser import accessibility_violations, offline_page

import casebook_web

ORIGIN = "http://viewer.test"
STATIC = casebook_web.asset_path("viewer.js").parent


def _serve(route: Any) -> bool:
    url: str = route.request.url
    if not url.startswith(ORIGIN + "/"):
        return False
    path = (STATIC / url[len(ORIGIN) + 1 :].split("?")[0]).resolve()
    if path.parent != STATIC.resolve() or not path.is_file():
        route.fulfill(status=404, body="not found")
        return True
    kind = "text/javascript" if path.suffix == ".js" else mimetypes.guess_type(path.name)[0] or "text/plain"
    route.fulfill(status=200, body=path.read_bytes(), content_type=kind)
    return True


def _state(page: Any) -> dict[str, Any]:
    return page.evaluate(
        """() => {
          const el = document.getElementById("stack");
          return {index: el.dataset.index, preset: el.dataset.preset,
                  counter: el.querySelector(".cb-stack-counter").textContent,
                  src: el.querySelector(".cb-stack-image").getAttribute("src"),
                  alt: el.querySelector(".cb-stack-image").alt,
                  slider: el.querySelector(".cb-stack-slider").value,
                  natural: el.querySelector(".cb-stack-image").naturalWidth};
        }"""
    )


@pytest.mark.slow
def test_stack_scrolls_by_keys_wheel_slider_and_drag_with_presets(tmp_path: Path) -> None:
    with offline_page(lambda url: url.startswith("data:"), serve=_serve) as (page, watch):
        page.goto(f"{ORIGIN}/stack-demo.html", wait_until="load")
        stack = page.locator("#stack")
        assert stack.get_attribute("role") == "group"
        assert stack.get_attribute("aria-label") == "Synthetic CT, axial"
        assert stack.get_attribute("tabindex") == "0"
        assert page.get_by_role("slider", name="Image in Synthetic CT, axial").is_visible()
        page.wait_for_function("document.querySelector('.cb-stack-image').naturalWidth > 0")
        first = _state(page)
        assert first["counter"] == "1 / 40" and first["index"] == "0" and first["preset"] == "Soft tissue"
        assert first["alt"] == "Synthetic CT, axial, image 1 of 40"
        # neighbours are drawn (fetched) before they are shown
        assert {"1/Soft tissue", "2/Soft tissue"} <= set(page.evaluate("window.requestedSources"))

        stack.focus()
        page.keyboard.press("ArrowDown")
        assert _state(page)["counter"] == "2 / 40"
        page.keyboard.press("PageDown")
        assert _state(page)["index"] == "11" and _state(page)["counter"] == "12 / 40"
        page.keyboard.press("ArrowUp")
        assert _state(page)["index"] == "10"
        page.keyboard.press("End")
        assert _state(page)["counter"] == "40 / 40" and _state(page)["slider"] == "40"
        page.keyboard.press("Home")
        assert _state(page)["index"] == "0"

        page.locator(".cb-stack-view").hover()
        page.mouse.wheel(0, 120)
        page.wait_for_function("document.getElementById('stack').dataset.index === '1'")
        page.mouse.wheel(0, 120)
        page.wait_for_function("document.getElementById('stack').dataset.index === '2'")

        page.locator(".cb-stack-slider").fill("30")
        assert _state(page)["counter"] == "30 / 40"

        box = page.locator(".cb-stack-view").bounding_box()
        assert box is not None
        x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        page.mouse.move(x, y)
        page.mouse.down()
        page.mouse.move(x, y - 40, steps=5)  # dragging up scrolls back, 8 px a frame
        page.mouse.up()
        assert _state(page)["index"] == "24"

        soft = _state(page)["src"]
        page.keyboard.press("2")
        lung = _state(page)
        assert lung["preset"] == "Lung" and lung["src"] != soft and lung["index"] == "24"
        assert page.get_by_role("button", name="2 Lung").get_attribute("aria-pressed") == "true"
        assert page.get_by_role("button", name="1 Soft tissue").get_attribute("aria-pressed") == "false"
        page.get_by_role("button", name="3 Bone").click()
        assert _state(page)["preset"] == "Bone"
        page.wait_for_function("document.querySelector('.cb-stack-image').naturalWidth > 0")
        page.evaluate("window.stack.go(5); window.stack.setPreset('Soft tissue')")
        # refresh() asks the src functions again: a frame that was still loading is drawn once it has arrived
        late = page.evaluate(
            """async (png) => {
              const { mountStack } = await import("./viewer.js");
              const el = document.body.appendChild(document.createElement("div"));
              let src = "";
              const late = mountStack(el, {frames: [{src: () => src, note: "Loading this image"}], label: "Late"});
              const before = el.querySelector(".cb-stack-note").textContent;
              src = png;
              late.refresh();
              const after = el.querySelector(".cb-stack-image").getAttribute("src") === png;
              late.destroy();
              el.remove();
              return {before, after};
            }""",
            _state(page)["src"],
        )
        assert late == {"before": "Loading this image", "after": True}
        assert _state(page)["counter"] == "6 / 40" and _state(page)["preset"] == "Soft tissue"
        page.screenshot(path=str(tmp_path / "stack.png"))
        assert accessibility_violations(page) == []

        # phone width: the viewer fits without scrolling the page sideways
        page.set_viewport_size({"width": 375, "height": 740})
        width = page.evaluate("document.getElementById('stack').getBoundingClientRect().width")
        assert 0 < width <= 375
        assert page.evaluate("document.documentElement.scrollWidth") <= 375
        page.screenshot(path=str(tmp_path / "stack-phone.png"))
        # a finger dragged down the image scrolls forward from image 6, 8 px a frame
        box = page.locator(".cb-stack-view").bounding_box()
        assert box is not None
        x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 3
        cdp = page.context.new_cdp_session(page)
        cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [{"x": x, "y": y}]})
        for dy in (16, 32, 48):
            cdp.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [{"x": x, "y": y + dy}]})
        cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
        # 48 px is six frames; the browser keeps the first few pixels of a touch as slop before it moves
        page.wait_for_function("Number(document.getElementById('stack').dataset.index) >= 9", timeout=5000)
        assert int(_state(page)["index"]) <= 11

        page.evaluate("window.stack.destroy()")
        assert page.evaluate("document.getElementById('stack').children.length") == 0
        assert watch.errors == []
    assert watch.refused == []
    assert (tmp_path / "stack.png").stat().st_size > 1000
