"""Shared by the app tests: launch ``app.py`` on a free localhost port in this process (or as ``python app.py`` in a
subprocess, for the hosting settings that come from the environment), and find test media.

In process, the app runs in a background thread of the test process (``prevent_thread_lock``) so its real handlers,
real cue extraction and the real tiny pipeline run exactly as under ``python app.py``.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
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
    """Start the app, as run locally, on 127.0.0.1:<free port>; returns (demo, url). Close with ``demo.close()``."""
    import app
    from ui import server
    from ui.hosting import Hosting

    server.OUTPUT_DIR = Path(output_dir)
    server.OUTPUT_DIR.mkdir(parents=True, exist_ok=True)
    server.HOSTING = Hosting()  # local, whatever the environment of the tests says
    demo = app.build_ui()
    demo.queue(default_concurrency_limit=1, max_size=32)
    port = free_port()
    demo.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True,
                allowed_paths=server.served_folders(), ssr_mode=False)
    return demo, f"http://127.0.0.1:{port}/"


def start_app_process(output_dir: Path, **env: str):
    """``python app.py`` on 127.0.0.1:<free port> with ``env`` added to this environment (the app's output folder
    is ``output_dir``); returns (process, url) once it answers. Stop it with ``stop_app_process``."""
    port = free_port()
    environ = {k: v for k, v in os.environ.items() if k not in ("GRADIO_SERVER_NAME", "SPACE_ID")}
    environ.update(DIRECTANIMATOR_APP_DIR=str(output_dir), **env)
    log = tempfile.TemporaryFile()  # a file, not a pipe: the app's log must never fill a buffer and block it
    proc = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--host", "127.0.0.1", "--port", str(port)],
                            cwd=ROOT, env=environ, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/"
    deadline = time.time() + 120
    while True:
        try:
            with urllib.request.urlopen(url + "config", timeout=5):
                return proc, url
        except OSError:
            if proc.poll() is not None or time.time() > deadline:
                proc.kill()
                proc.wait()
                log.seek(0)
                raise RuntimeError(f"app.py did not start (exit code {proc.returncode}): "
                                   f"{log.read().decode(errors='replace')[-2000:]}")
            time.sleep(0.5)


def stop_app_process(proc) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


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
