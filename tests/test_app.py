"""The Gradio app driven through gradio_client, against the real app launched on a localhost port.

Covers the issue's flow (extract cues on an example, change the low-pass strength, generate with the tiny model and
get an mp4 with the expected frame count) and bad inputs given through the UI (each shows a message, and the app,
including other users' sessions, stays usable).
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from browser.app_server import count_frames, example_media, launch_app, video_path

gradio_client = pytest.importorskip("gradio_client")
from gradio_client import Client, handle_file  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402

EXTRACT_DEFAULTS = dict(segmenter="mediapipe", face_detector="mediapipe", lowpass=0.5, face_enlarge=1.6, grid=16,
                        max_frames=17, fps=0)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    demo, url = launch_app(tmp_path_factory.mktemp("app-out"))
    yield url, tmp_path_factory.mktemp("media")
    demo.close()


@pytest.fixture(scope="module")
def extracted(server):
    """One client (one session) with cues extracted from the example pair."""
    url, media = server
    ref, drv = example_media(media)
    client = Client(url, verbose=False)
    out = client.predict(handle_file(ref), handle_file(drv), *EXTRACT_DEFAULTS.values(),
                         api_name="/extract_cues")
    return client, out


def extract(client, ref, drv, **kw):
    args = {**EXTRACT_DEFAULTS, **kw}
    ref = handle_file(ref) if ref else None
    drv = handle_file(drv) if drv else None
    return client.predict(ref, drv, *args.values(), api_name="/extract_cues")


def test_api_names_are_stable(extracted):
    client, _ = extracted
    names = set(client.view_api(print_info=False, return_format="dict")["named_endpoints"])
    for name in ("/extract_cues", "/show_frame", "/preview_lowpass", "/set_lowpass", "/set_face_enlarge",
                 "/set_alignment", "/set_face_box", "/set_reference_mask", "/set_frame_mask", "/generate",
                 "/train_start", "/train_stop", "/use_checkpoint"):
        assert name in names, name


def test_extract_cues_shows_all_views(extracted):
    _, out = extracted
    pose, face, location, silhouette, report = out[:5]
    for v in (pose, face, location, silhouette):
        assert count_frames(video_path(v)) == 17
    assert "17 frames" in report and "Dropped" in report and "No face" in report
    preview = out[7]
    assert preview  # the side-by-side frame preview image


def test_lowpass_preview_and_full_rebuild(extracted):
    import cv2

    client, out = extracted
    before = video_path(out[0])
    # Live preview of one frame: measured round trip through the server (the issue targets <= 200 ms on CPU).
    client.predict(0.9, 3, api_name="/preview_lowpass")
    t0 = time.perf_counter()
    client.predict(0.8, 3, api_name="/preview_lowpass")
    latency = time.perf_counter() - t0
    assert latency < 1.0, f"live low-pass preview took {latency:.3f}s"
    after = client.predict(1.0, 3, api_name="/set_lowpass")
    pose_after = video_path(after[0])
    assert pose_after != before

    def frame(path, i=3):
        cap = cv2.VideoCapture(path)
        for _ in range(i + 1):
            ok, f = cap.read()
        cap.release()
        assert ok
        return f.astype(np.float32)

    # A stronger low-pass removes detail: the strongest setting's frame has less high-frequency energy.
    def detail(f):
        return float(np.abs(cv2.Laplacian(f.mean(axis=2), cv2.CV_32F)).mean())

    assert detail(frame(pose_after)) < detail(frame(before))


def test_generate_tiny_model_mp4(extracted):
    client, _ = extracted
    import app

    result, side, zipped, seed, info = client.predict(
        app.TINY_MODEL, "", "", "a person", "", 2, 6.0, 7, False, 9, 64, 1.0, 1.0, "none", api_name="/generate")
    assert count_frames(video_path(result)) == 9
    assert count_frames(video_path(side)) == 9
    assert str(zipped).endswith(".zip")
    assert seed == 7 and "Seed 7" in info


@pytest.mark.parametrize("case", ["corrupt", "no_person", "one_pixel", "missing_video", "no_cues_yet"])
def test_bad_inputs_show_a_message_and_app_stays_usable(server, extracted, case, tmp_path):
    import cv2

    url, media = server
    ref, drv = example_media(media)
    bad = Client(url, verbose=False)  # a second user; the first one's session must survive
    with pytest.raises(AppError) as err:
        if case == "corrupt":
            p = tmp_path / "corrupt.png"
            p.write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
            extract(bad, str(p), drv)
        elif case == "no_person":
            p = tmp_path / "wall.png"
            cv2.imwrite(str(p), np.full((256, 256, 3), 128, np.uint8))
            extract(bad, str(p), drv)
        elif case == "one_pixel":
            p = tmp_path / "dot.png"
            cv2.imwrite(str(p), np.zeros((1, 1, 3), np.uint8))
            extract(bad, str(p), drv)
        elif case == "missing_video":
            extract(bad, ref, None)
        else:
            bad.predict(0.3, 0, api_name="/set_lowpass")
    message = str(err.value)
    assert message and "Traceback" not in message
    expected = {"corrupt": "corrupt", "no_person": "person", "one_pixel": "small", "missing_video": "driving video",
                "no_cues_yet": "Extract cues first"}[case]
    assert expected.lower() in message.lower(), message
    # The other session still works, and so does the server.
    client, _ = extracted
    assert client.predict(2, api_name="/show_frame")[0]
