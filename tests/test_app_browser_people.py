"""Choosing who drives with a click, in a real browser (headless Chromium driven by Playwright, as
``test_app_browser``): a clip with two walkers shows its first frame with both outlined; a click on the second one
extracts the cues again for her (the line says so, the preview outlines her through the clip); a click on the lawn
says "no person there" and keeps the cues. Screenshots go where ``test_app_browser``'s do."""

from __future__ import annotations

import numpy as np
import pytest

from browser.people_media import astronaut, two_walkers
from test_app_browser import drag_slider, page  # noqa: F401 - the same page fixture (and the same skips)

from playwright.sync_api import expect  # noqa: E402 - test_app_browser skipped the module if it is missing

HALF = 300  # the two walkers' copies meet near x = 292..300 of the 512-px working frame: person 1 left of it


def first_frame_people(clip):
    """The people of the clip's first frame as the app sees it (fitted to the astronaut's 512 x 512 working size)."""
    from directanimator.cues.people import find_people
    from directanimator.cues.segment import get_segmenter
    from directanimator.video import fit_frames, read_video

    frame = fit_frames(read_video(clip).frames[:1], 512, 512, policy="pad")[0]
    return find_people(frame, get_segmenter("mediapipe"))


def click_image_at(pg, image, x, y):
    """Click at (x, y) pixels of the picture ``image`` shows (gradio scales it to fit, centred, never up)."""
    box = image.bounding_box()
    nw, nh = image.evaluate("img => [img.naturalWidth, img.naturalHeight]")
    scale = min(box["width"] / nw, box["height"] / nh, 1.0)
    left = box["x"] + (box["width"] - nw * scale) / 2
    top = box["y"] + (box["height"] - nh * scale) / 2
    pg.mouse.click(left + x * scale, top + y * scale)


def outline_x(pg):
    """x (working-frame pixels) of the pink person-mask outline on the preview's driving panel (its first 256 px,
    half the 512-px working size)."""
    import cv2

    src = pg.locator("#preview img").get_attribute("src")
    data = np.frombuffer(pg.request.get(src).body(), np.uint8)
    panel = cv2.cvtColor(cv2.imdecode(data, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)[:, :256].astype(int)
    r, g, b = panel[..., 0], panel[..., 1], panel[..., 2]
    # MASK_COLOUR (255, 40, 160) drawn 1 px wide comes back from the jpeg as about (170, 95, 100): still far
    # redder than green, with more blue than green (grass, hair, skin and the orange face box have less).
    ys, xs = np.nonzero((r > 120) & (r - g > 50) & (b - g > -5))
    assert xs.size > 20, "no person outline on the preview"
    return xs * 2


@pytest.mark.slow
def test_click_chooses_who_drives(page, tmp_path):  # noqa: F811
    pg, shots, _ = page
    clip = two_walkers(tmp_path)
    found = first_frame_people(clip)
    assert len(found) == 2 and found[1].box[0] > HALF - 10
    pg.locator("#reference input[type=file]").set_input_files(astronaut())
    pg.locator("#driving input[type=file]").set_input_files(clip)
    expect(pg.locator("#driving video")).to_have_count(1)
    pg.get_by_text("Cue extraction settings").click()
    pg.locator("#max_frames input").fill("5")
    pg.locator("#extract").click()
    line = pg.locator("#people-line")
    expect(line).to_contain_text("2 people in the first driving frame; person 1 drives", timeout=180_000)
    picture = pg.locator("#driving-people img")
    expect(picture).to_be_visible()
    expect(pg.locator("#reference-people")).to_be_hidden()  # one person in the reference: no picker
    assert (outline_x(pg) < HALF).all()

    x0, y0, x1, y1 = found[1].box
    picture.scroll_into_view_if_needed()
    click_image_at(pg, picture, (x0 + x1) / 2, (y0 + y1) / 2)
    expect(line).to_contain_text("person 2 drives", timeout=180_000)
    assert (outline_x(pg) > HALF - 10).all()  # the preview follows her ...
    first = pg.locator("#preview img").get_attribute("src")
    drag_slider(pg, "frame", 1.0)
    expect(pg.locator("#frame input[type=number]")).to_have_value("4")
    expect(pg.locator("#preview img")).not_to_have_attribute("src", first, timeout=30_000)
    assert (outline_x(pg) > HALF - 10).all()  # ... through the clip
    drag_slider(pg, "frame", 0.0)
    line.scroll_into_view_if_needed()
    pg.mouse.wheel(0, -60)  # the line and the picture below it
    pg.screenshot(path=str(shots / "people-person-2.png"), full_page=False)

    shown = pg.locator("#preview img").get_attribute("src")
    click_image_at(pg, picture, 20, 20)  # the black bar above the frame
    toast = pg.locator(".toast-body, [data-testid='toast-body']").first
    expect(toast).to_contain_text("no person there", timeout=60_000)
    expect(toast).to_contain_text("click on the 2 people outlined")
    pg.screenshot(path=str(shots / "people-background.png"), full_page=False)
    expect(line).to_contain_text("person 2 drives")  # the cues stay
    assert pg.locator("#preview img").get_attribute("src") == shown
