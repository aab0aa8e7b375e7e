"""Shared by the app tests: launch ``app.py`` on a free localhost port in this process, and find test media.

The app runs in a background thread of the test process (``prevent_thread_lock``) so its real handlers, real cue
extraction and the real tiny pipeline run exactly as under ``python app.py``.
"""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch_app(output_dir: Path):
    """Start the app on 127.0.0.1:<free port>; returns (demo, url). Close with ``demo.close()``."""
    import app

    app.OUTPUT_DIR = Path(output_dir)
    app.OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    demo = app.build_ui()
    demo.queue(default_concurrency_limit=1, max_size=32)
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
                allowed_paths=[str(app.OUTPUT_DIR)], ssr_mode=False)
    return demo, f"http://127.0.0.1:{port}/"


def example_media(tmp: Path) -> tuple[str, str]:
    """(reference image, driving video): the first pair from examples/, else a clip made from public-domain
    photos that ship with scikit-image / matplotlib (a person, moved about, so segmentation finds them)."""
    import app

    pairs = app.examples()
    if pairs:
        # Prefer real footage of a whole person (clean masks every frame) and a real photo.
        pairs.sort(key=lambda p: ("walk" not in p[1], "astronaut" not in p[0]))
        return pairs[0][0], pairs[0][1]
    import cv2
    import matplotlib
    import skimage.data

    from directanimator.video import write_video

    ref = tmp / "reference.png"
    cv2.imwrite(str(ref), cv2.cvtColor(skimage.data.astronaut(), cv2.COLOR_RGB2BGR))
    hopper = cv2.imread(os.path.join(matplotlib.get_data_path(), "sample_data", "grace_hopper.jpg"))
    hopper = cv2.cvtColor(cv2.resize(hopper, (256, 320)), cv2.COLOR_BGR2RGB)
    frames = []
    for t in range(17):
        canvas = np.full((320, 256, 3), 200, np.uint8)
        dx = int(12 * np.sin(t / 3))
        canvas[:, max(0, dx) : 256 + min(0, dx)] = hopper[:, max(0, -dx) : 256 - max(0, dx)]
        frames.append(canvas)
    drv = tmp / "driving.mp4"
    write_video(drv, np.stack(frames), 8.0)
    return str(ref), str(drv)


def video_path(value) -> str:
    """A gr.Video output as returned by gradio_client (a dict with "video", or a path)."""
    return value["video"] if isinstance(value, dict) else value


def count_frames(path: str) -> int:
    import av

    with av.open(path) as c:
        return sum(1 for _ in c.decode(video=0))
