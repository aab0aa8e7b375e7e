"""The app in a real browser: headless Chromium (Debian's ``chromium``) driven by Playwright.

Loads the page, uploads the example pair, extracts cues, drags the frame scrubber and the low-pass slider, runs
generation with the tiny model, and asserts on what the page shows; screenshots go to ``$APP_SCREENSHOTS`` (default:
the test's tmp dir). Skips cleanly when /usr/bin/chromium or the ``playwright`` package is missing.
Setup: ``apt-get install -y chromium`` and ``pip install playwright`` (never ``playwright install``: the Debian
browser is used through ``executable_path``).
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest

from browser.app_server import example_media, launch_app

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]

if not os.path.exists(CHROMIUM):
    pytest.skip(f"{CHROMIUM} is missing (apt-get install -y chromium)", allow_module_level=True)
try:
    from playwright.sync_api import expect, sync_playwright
except ImportError:
    pytest.skip("the playwright package is missing (pip install playwright)", allow_module_level=True)


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    out = tmp_path_factory.mktemp("app-out")
    demo, url = launch_app(out)
    shots = Path(os.environ.get("APP_SCREENSHOTS") or tmp_path_factory.mktemp("shots"))
    shots.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        pg = browser.new_page(viewport={"width": 1400, "height": 1000})
        pg.set_default_timeout(60_000)
        pg.goto(url)
        yield pg, shots, tmp_path_factory.mktemp("media")
        browser.close()
    demo.close()


def drag_slider(pg, elem_id: str, fraction: float):
    """Drag a gradio slider's range input like a user does (fires input, then release on pointer-up)."""
    bar = pg.locator(f"#{elem_id} input[type=range]")
    bar.scroll_into_view_if_needed()
    box = bar.bounding_box()
    y = box["y"] + box["height"] / 2
    pg.mouse.move(box["x"] + 2, y)
    pg.mouse.down()
    pg.mouse.move(box["x"] + box["width"] * fraction, y, steps=5)
    pg.mouse.up()


@pytest.mark.slow
def test_animate_flow_in_browser(page):
    pg, shots, media = page
    t0 = time.perf_counter()

    def mark(what):
        print(f"[{time.perf_counter() - t0:6.1f} s] {what}")

    expect(pg.get_by_role("button", name="Extract cues")).to_be_visible(timeout=30_000)  # the first page load of a cold CI machine can take over 5 s
    pg.screenshot(path=str(shots / "01-loaded.png"), full_page=True)

    ref, drv = example_media(media)
    pg.locator("#reference input[type=file]").set_input_files(ref)
    pg.locator("#driving input[type=file]").set_input_files(drv)
    expect(pg.locator("#driving video")).to_have_count(1)
    pg.get_by_text("Cue extraction settings").click()  # open the accordion; 17 frames keep the test short
    pg.locator("#max_frames input").fill("17")
    pg.locator("#extract").click()
    report = pg.locator("#report")
    expect(report).to_contain_text("frames at", timeout=120_000)
    expect(report).to_contain_text("Dropped")
    # The four cue views are playable videos served by the app.
    for view in ("pose-video", "face-video", "location-video", "silhouette-video"):
        expect(pg.locator(f"#{view} video")).to_have_attribute("src", re.compile(r"\.mp4"))
    preview = pg.locator("#preview img")
    expect(preview).to_be_visible()
    first = preview.get_attribute("src")
    pg.screenshot(path=str(shots / "02-cues.png"), full_page=True)
    mark("cues extracted and shown")

    drag_slider(pg, "frame", 0.8)
    expect(preview).not_to_have_attribute("src", first, timeout=30_000)
    scrubbed = preview.get_attribute("src")
    assert int(pg.locator("#frame input[type=number]").input_value()) > 0

    start = time.perf_counter()
    drag_slider(pg, "lowpass", 0.95)
    expect(preview).not_to_have_attribute("src", scrubbed, timeout=30_000)
    print(f"low-pass drag -> new preview shown: {1000 * (time.perf_counter() - start):.0f} ms")
    assert float(pg.locator("#lowpass input[type=number]").input_value()) > 0.8
    # The mask editor gets the shown frame (its person mask as a paintable layer).
    pg.get_by_role("button", name="Edit the mask of the shown frame").click()
    expect(pg.get_by_text(re.compile(r"Mask of driving frame \d+"))).to_be_visible(timeout=30_000)
    pg.screenshot(path=str(shots / "03-scrubbed-lowpass.png"), full_page=True)
    mark("scrubbed and low-passed")

    from ui.generation import TINY_MODEL

    pg.locator("#model input").scroll_into_view_if_needed()
    pg.locator("#model input").click()
    pg.get_by_role("option", name=TINY_MODEL).click()
    expect(pg.locator("#model input")).to_have_value(TINY_MODEL)
    pg.locator("#generate").click()
    expect(pg.locator("#gen-info")).to_contain_text("Seed 42 · 9 frames", timeout=180_000)
    expect(pg.locator("#result video")).to_have_count(1)
    src = pg.locator("#result video").get_attribute("src")
    assert src and ".mp4" in src
    pg.locator("#result").scroll_into_view_if_needed()
    pg.screenshot(path=str(shots / "04-generated.png"), full_page=True)
    mark("generated")

    pg.get_by_role("tab", name="Train").click()
    expect(pg.get_by_role("button", name="Start training")).to_be_visible()
    expect(pg.get_by_text("Same2X block D")).to_be_visible()
    pg.screenshot(path=str(shots / "06-train-tab.png"), full_page=True)
    pg.get_by_role("tab", name="Animate").click()


@pytest.mark.slow
def test_bad_input_shows_message_in_page(page, tmp_path):
    pg, shots, _ = page
    bad = tmp_path / "corrupt.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    t0 = time.perf_counter()
    pg.locator("#reference input[type=file]").set_input_files(str(bad))
    pg.locator("#extract").click()
    toast = pg.locator(".toast-body, [data-testid='toast-body']").first
    expect(toast).to_be_visible(timeout=60_000)
    expect(toast).to_contain_text("not a readable image")
    print(f"corrupt upload -> message shown: {time.perf_counter() - t0:.1f} s")
    pg.screenshot(path=str(shots / "05-error.png"), full_page=False)
    expect(pg.get_by_role("button", name="Extract cues")).to_be_enabled()
