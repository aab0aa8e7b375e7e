"""App responsiveness: the live low-pass preview round trip through gradio_client (target <= 200 ms per change on a
CPU for a 49-frame clip), the full rebuild on slider release, and the frame scrubber.

    python bench/bench_app.py
"""
import os
import statistics
import sys
import time
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path[:0] = [os.path.join(ROOT, "tests"), ROOT]
os.chdir(ROOT)
os.environ.setdefault("OMP_NUM_THREADS", "1")
from pathlib import Path
from browser.app_server import launch_app
from gradio_client import Client, handle_file
demo, url = launch_app(Path(os.environ.get("TMPDIR", "/tmp")) / "directanimator_bench_app")
c = Client(url, verbose=False)
t = time.perf_counter()
out = c.predict(handle_file("examples/reference_astronaut.jpg"), handle_file("examples/driving_walk.mp4"), "mediapipe", "mediapipe", 0.5, 1.6, 16, 49, 0, api_name="/extract_cues")
print("extract 49 frames (client round trip, s):", round(time.perf_counter() - t, 2), out[4][:40])
lat = []
for i in range(15):
    t = time.perf_counter(); c.predict(0.2 + 0.05 * i, 20, api_name="/preview_lowpass"); lat.append(time.perf_counter() - t)
print("preview_lowpass round trip ms: median", round(statistics.median(lat) * 1000), "max", round(max(lat) * 1000))
full = []
for v in (0.3, 0.7, 0.9):
    t = time.perf_counter(); c.predict(v, 20, api_name="/set_lowpass"); full.append(time.perf_counter() - t)
print("set_lowpass (full 49-frame rebuild + pose mp4) s:", [round(x, 2) for x in full])
t = time.perf_counter(); c.predict(24, api_name="/show_frame"); print("show_frame ms", round((time.perf_counter() - t) * 1000))
demo.close()
