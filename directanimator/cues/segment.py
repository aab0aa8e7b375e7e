"""Person segmentation backends: one foreground mask and one quality score per frame.

The paper (section 3.1, A.2) cuts the driving person out with Grounded SAM and drops frames whose mask is poor.
Two backends sit behind one small protocol, chosen by name with :func:`get_segmenter`:

- ``"mediapipe"`` (offline default): MediaPipe Pose with its segmentation head (mediapipe 0.10.21's wheel ships the
  models, nothing is downloaded). Full-body masks in video (tracking) mode. People that are small in a wide shot are
  found with OpenCV's HOG people detector and segmented in an upscaled crop that follows them.
- ``"grounded-sam"`` (the paper's): Grounding DINO finds "person" on a key frame, SAM2 propagates the mask through
  the clip (transformers classes; weights are downloaded by the user).

:func:`drop_bad_frames` flags the frames the pose cue should not trust (empty, low score, sudden area jump).
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from typing import Callable, Protocol

import numpy as np

from directanimator.errors import InputError
from directanimator.quiet import QuietGraph

Progress = Callable[[float, str], None] | None


@dataclass
class Segmentation:
    """Person masks of a clip (or of one image, ``T == 1``).

    Attributes:
        masks: float32 ``[T, H, W]`` foreground probability in ``[0, 1]``.
        scores: float32 ``[T]`` per-frame quality in ``[0, 1]``; 0 where the mask is empty.
        facing: optional float32 ``[T]``: how much the person faces the camera, 1 = towards it, 0.5 = profile,
            0 = seen from behind; NaN where unknown (no landmarks, or a backend without them). None = unknown
            for the whole clip. Face detectors find "faces" on the back of a head; this says which to drop.
    """

    masks: np.ndarray
    scores: np.ndarray
    facing: np.ndarray | None = None

    @property
    def areas(self) -> np.ndarray:
        """Fraction of the frame covered by the mask (``masks > 0.5``), float32 ``[T]``."""
        return (self.masks > 0.5).mean(axis=(1, 2)).astype(np.float32)


class PersonSegmenter(Protocol):
    """What every segmentation backend provides."""

    name: str

    def segment_video(self, frames: np.ndarray, progress: Progress = None) -> Segmentation:
        """Segment the main person in every frame of ``frames`` (uint8 ``[T, H, W, 3]`` RGB)."""

    def segment_image(self, image: np.ndarray) -> Segmentation:
        """Segment the main person in one uint8 ``[H, W, 3]`` RGB image; returns ``T == 1``."""


def _check_frames(frames, ndim: int, what: str) -> np.ndarray:
    frames = np.asarray(frames)
    if frames.ndim != ndim or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        shape = "[T,H,W,3]" if ndim == 4 else "[H,W,3]"
        raise InputError(f"{what} must be a uint8 RGB array of shape {shape}, got {frames.dtype} {frames.shape}")
    if ndim == 4 and frames.shape[0] == 0:
        raise InputError(f"{what} has no frames")
    return np.ascontiguousarray(frames)


def _report(progress: Progress, fraction: float, desc: str) -> None:
    if progress is not None:
        progress(float(min(max(fraction, 0.0), 1.0)), desc)


def _mask_bbox(binary: np.ndarray) -> tuple[float, float, float, float] | None:
    ys = np.flatnonzero(binary.any(axis=1))
    if ys.size == 0:
        return None
    xs = np.flatnonzero(binary.any(axis=0))
    return float(xs[0]), float(ys[0]), float(xs[-1] + 1), float(ys[-1] + 1)


# ----------------------------------------------------------------------------------------------------------------
# MediaPipe (offline default)
# ----------------------------------------------------------------------------------------------------------------

# Shoulders and hips: any usable frame of a person shows the torso, so their visibility says whether the pose
# model really locked on a body (face landmarks vanish for people seen from behind; legs leave the frame in
# upper-body shots).
_TORSO = (11, 12, 23, 24)


def facing_from_landmarks(lm: np.ndarray, width: int, height: int, softness: float = 0.15) -> float:
    """How much a MediaPipe Pose body faces the camera, from the left/right order of its landmarks.

    The landmark visibilities do not tell a back view apart (the model is confident about a nose it cannot see),
    but the left/right order does: seen from the front, the person's left shoulder/hip/ear is on the image's
    right; seen from behind the order flips, and in profile the two sides overlap. The signed horizontal spans of
    shoulders, hips and ears, in units of the torso length (so the value does not depend on the person's size),
    go through a logistic.

    Args:
        lm: ``[33, >=2]`` landmarks ``(x, y, ...)`` normalised to the image, MediaPipe Pose order.
        width, height: size of the image the landmarks belong to (normalised x and y have different units).
        softness: signed span (torso lengths) that moves the result from 0.5 to ~0.73.

    Returns:
        float in ``(0, 1)``: ~1 facing the camera, 0.5 profile, ~0 seen from behind; NaN for a degenerate body.
    """
    xy = np.asarray(lm, np.float64)[:, :2] * (width, height)
    torso = float(np.linalg.norm((xy[11] + xy[12]) / 2 - (xy[23] + xy[24]) / 2))
    if not np.isfinite(torso) or torso < 1e-6:
        return float("nan")
    # Person's left minus right: shoulders, hips, ears (the head may turn against the body; the ears say where
    # the face is, the torso makes it robust when the head landmarks are unsure).
    span = (xy[11, 0] - xy[12, 0]) + 0.5 * (xy[23, 0] - xy[24, 0]) + (xy[7, 0] - xy[8, 0])
    return float(1.0 / (1.0 + np.exp(-np.clip(span / torso / softness, -50, 50))))


class MediaPipeSegmenter:
    """Offline person segmentation with MediaPipe Pose (landmarks + segmentation head), no download needed.

    A clip is processed in video (tracking) mode, which smooths masks over time and skips person detection while
    the person is tracked. When the person is small in the frame (wide shots), the clip switches to a square crop
    around them, upscaled to ``crop_size``, and the crop's mask is pasted back; the crop follows the person.

    Args:
        model_complexity: MediaPipe Pose landmark model, 0 (lite), 1 (full) or 2 (heavy). mediapipe 0.10.21's wheel
            ships only the full model (1); 0 and 2 are fetched by mediapipe from the internet on first use.
        max_side: frames are downscaled so their long side is at most this before the full-frame pass (speed;
            the model itself sees 256x256); crops for small people are cut from the full-resolution frame and all
            masks are returned at the input size.
        crop_size: side of the upscaled square crop used for small people.
        small_person: person bbox height (fraction of the frame height) below which the crop path is used.
        min_detection_confidence: MediaPipe person detection threshold.
        min_tracking_confidence: MediaPipe landmark tracking threshold (below it, detection runs again).
        reacquire_every: while no person is tracked, run the (slower) HOG people search every this many frames.
        workers: processes a clip is split over (contiguous chunks, one MediaPipe graph each; a chunk re-acquires
            the person on its first frame and its tracker starts fresh, so its masks differ slightly from a
            one-process run: IoU >= 0.97 on the walk example). None or 1 = this process only (the default: on
            the shared 2-core machine, with other jobs running, 2 workers were slower; see bench/bench_cues.py);
            2 = two chunks, worth it where cores are idle. The worker processes are started once ("spawn":
            forking after mediapipe/torch started threads is unsafe) and reused by every later clip.
        parallel_min_frames: clips shorter than this always run in this process (start-up would eat the gain).
    """

    name = "mediapipe"

    def __init__(
        self,
        model_complexity: int = 1,
        max_side: int = 512,
        crop_size: int = 256,
        small_person: float = 0.45,
        min_detection_confidence: float = 0.5,
        min_tracking_confidence: float = 0.5,
        reacquire_every: int = 3,
        workers: int | None = None,
        parallel_min_frames: int = 16,
    ):
        import mediapipe as mp

        if model_complexity not in (0, 1, 2):
            raise InputError(f"model_complexity must be 0, 1 or 2, got {model_complexity}")
        self._mp = mp
        self.model_complexity = model_complexity
        self.max_side = int(max_side)
        self.crop_size = int(crop_size)
        self.small_person = float(small_person)
        self.min_detection_confidence = float(min_detection_confidence)
        self.min_tracking_confidence = float(min_tracking_confidence)
        self.reacquire_every = max(1, int(reacquire_every))
        if workers is not None and int(workers) < 1:
            raise InputError(f"workers must be at least 1, got {workers}")
        self.workers = None if workers is None else int(workers)
        self.parallel_min_frames = int(parallel_min_frames)
        self._static = None
        self._hog = None
        # MediaPipe graphs are not thread-safe (the app may serve two users at once).
        self._lock = threading.Lock()
        try:
            # Built now so that a missing model fails here, before any long work.
            self._static_pose()
        except Exception as exc:  # mediapipe fetches the lite/heavy models over the network (URLError offline)
            raise InputError(
                f"MediaPipe pose model_complexity={model_complexity} is not in the mediapipe wheel and could not be "
                f"downloaded ({type(exc).__name__}); use model_complexity=1, which ships with mediapipe"
            ) from exc

    # -- MediaPipe graphs --------------------------------------------------------------------------------------
    def _pose(self, static: bool):
        return QuietGraph(
            self._mp.solutions.pose.Pose,
            static_image_mode=static,
            model_complexity=self.model_complexity,
            enable_segmentation=True,
            smooth_segmentation=not static,
            min_detection_confidence=self.min_detection_confidence,
            min_tracking_confidence=self.min_tracking_confidence,
        )

    def _static_pose(self):
        if self._static is None:
            self._static = self._pose(static=True)
        return self._static

    def close(self) -> None:
        """Free the MediaPipe graph kept for static images."""
        with self._lock:
            if self._static is not None:
                self._static.close()
                self._static = None

    # -- one MediaPipe call, turned into a clean mask, a person box and a score ---------------------------------
    @staticmethod
    def _run(pose, image: np.ndarray):
        """Run ``pose`` on ``image``; returns (mask [h,w] float32, box in image pixels, score, facing) or None."""
        import cv2

        result = pose.process(image)
        if result.pose_landmarks is None or result.segmentation_mask is None:
            return None
        h, w = image.shape[:2]
        lm = np.array([(p.x, p.y, p.visibility) for p in result.pose_landmarks.landmark], dtype=np.float32)
        # Own copy (the result is a view into MediaPipe's packet); the model's sigmoid keeps it in [0, 1].
        mask = np.array(result.segmentation_mask, dtype=np.float32)
        # Blob analysis on a ~128 px grid: it only decides which blobs to keep, and full-size connected
        # components would cost as much as a fifth of the MediaPipe call.
        step = max(1, min(h, w) // 128)
        coarse = mask[::step, ::step]
        binary = (coarse > 0.5).astype(np.uint8)
        if not binary.any():
            return None
        # Landmarks the model sees: their box says where the tracked person is.
        seen = lm[lm[:, 2] > 0.3] if (lm[:, 2] > 0.3).sum() >= 4 else lm
        lx0, ly0 = seen[:, 0].min() * w, seen[:, 1].min() * h
        lx1, ly1 = seen[:, 0].max() * w, seen[:, 1].max() * h
        # The segmentation head can also light up other people or objects: keep the blobs that touch the
        # (slightly enlarged) landmark box of the tracked person.
        n, labels, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
        if n > 2:
            mx, my = 0.1 * (lx1 - lx0) + 2, 0.1 * (ly1 - ly0) + 2
            keep = np.zeros(n, dtype=bool)
            for i in range(1, n):
                x, y, bw, bh = stats[i, :4] * step
                keep[i] = x <= lx1 + mx and x + bw >= lx0 - mx and y <= ly1 + my and y + bh >= ly0 - my
            if not keep.any():
                return None
            if not keep[1:].all():
                # Soft edges stay: only the far-away blobs (and their soft halo) are cut.
                region = cv2.dilate(keep[labels].astype(np.uint8), np.ones((3, 3), np.uint8))
                region = cv2.resize(region, (w, h), interpolation=cv2.INTER_NEAREST)
                mask *= region
                binary = binary * keep[labels]
        box = _mask_bbox(binary > 0)
        if box is None:
            return None
        box = tuple(v * step for v in box)
        # Quality: how sure the mask is where it says "person", and whether the torso is really seen.
        mask_conf = float(coarse[binary > 0].mean())
        torso = float(np.clip(lm[list(_TORSO), 2], 0, 1).mean())
        score = float(np.clip(0.5 * mask_conf + 0.5 * torso, 0.0, 1.0))
        bx0, by0, bx1, by1 = box
        # Feet/hands the mask misses are still inside the landmark box: use the union for the crop geometry.
        box = (min(bx0, lx0), min(by0, ly0), max(bx1, lx1), max(by1, ly1))
        return mask, box, score, facing_from_landmarks(lm, w, h)

    # -- crop geometry --------------------------------------------------------------------------------------------
    def _crop_affine(self, box, frame_hw):
        """Affine matrix mapping frame pixels to crop pixels for a square crop around ``box``."""
        x0, y0, x1, y1 = box
        side = max(x1 - x0, y1 - y0) * 1.4 + 8
        side = min(max(side, 32.0), 2.0 * max(frame_hw))
        cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
        s = self.crop_size / side
        return np.array([[s, 0, self.crop_size / 2 - s * cx], [0, s, self.crop_size / 2 - s * cy]], np.float32)

    def _segment_crop(self, pose, frame, box):
        """Segment inside an upscaled square crop around ``box``; mask and box come back in frame pixels."""
        import cv2

        h, w = frame.shape[:2]
        a = self._crop_affine(box, (h, w))
        crop = cv2.warpAffine(frame, a, (self.crop_size, self.crop_size), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=(0, 0, 0))
        out = self._run(pose, crop)
        if out is None:
            return None
        cmask, cbox, score, facing = out
        mask = cv2.warpAffine(cmask, a, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                              borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        s, tx, ty = a[0, 0], a[0, 2], a[1, 2]
        fbox = ((cbox[0] - tx) / s, (cbox[1] - ty) / s, (cbox[2] - tx) / s, (cbox[3] - ty) / s)
        if not (mask > 0.5).any():
            return None
        return mask, fbox, score, facing

    def _people(self, frame) -> list[tuple[float, float, float, float]]:
        """Candidate people boxes from OpenCV's HOG detector, best first (run on a ~1.5x upscaled frame)."""
        import cv2

        if self._hog is None:
            self._hog = cv2.HOGDescriptor()
            self._hog.setSVMDetector(cv2.HOGDescriptor_getDefaultPeopleDetector())
        h, w = frame.shape[:2]
        # HOG's window is 64x128: people ~60-130 px tall at 512 px frames need ~1.5x to be found.
        s = 1.5 * 512 / max(h, w)
        big = cv2.resize(frame, (max(64, round(w * s)), max(128, round(h * s))), interpolation=cv2.INTER_LINEAR)
        rects, weights = self._hog.detectMultiScale(big, winStride=(8, 8), padding=(8, 8), scale=1.05)
        if len(rects) == 0:
            return []
        weights = np.ravel(weights)
        order = np.argsort(-(weights * rects[:, 3]))
        return [tuple(float(v) for v in (x / s, y / s, (x + bw) / s, (y + bh) / s)) for x, y, bw, bh in rects[order]]

    def _acquire(self, frame, pose_crop_static):
        """Find a (small) person with HOG and confirm them with a static pose run on the crop."""
        for box in self._people(frame)[:3]:
            out = self._segment_crop(pose_crop_static, frame, box)
            if out is not None:
                return out
        return None

    # -- public API -------------------------------------------------------------------------------------------
    def _work_frame(self, frame):
        import cv2

        h, w = frame.shape[:2]
        s = min(1.0, self.max_side / max(h, w))
        if s >= 1.0:
            return frame, 1.0
        return cv2.resize(frame, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA), s

    def _run_full(self, pose, frame):
        """Full-frame pass on the downscaled frame; mask and box come back at the frame's size."""
        import cv2

        h, w = frame.shape[:2]
        small, s = self._work_frame(frame)
        out = self._run(pose, small)
        if out is None or s >= 1.0:
            return out
        mask, box, score, facing = out
        mask = cv2.resize(mask, (w, h), interpolation=cv2.INTER_LINEAR)
        return mask, tuple(v / s for v in box), score, facing

    def segment_video(self, frames: np.ndarray, progress: Progress = None) -> Segmentation:
        """Segment the main person through a clip (uint8 ``[T, H, W, 3]``) in tracking mode.

        Args:
            frames: the clip; all frames have the same size.
            progress: optional ``progress(fraction, desc)`` callback.
        """
        frames = _check_frames(frames, 4, "frames")
        workers = self._workers_for(len(frames))
        if workers > 1:
            return _segment_parallel(self._params(), frames, workers, progress)
        with self._lock:
            return self._segment_video(frames, progress)

    def _workers_for(self, num_frames: int) -> int:
        workers = self.workers or 1
        if num_frames < self.parallel_min_frames:
            workers = 1
        # Each chunk needs a few frames for the tracker to settle after its (re-)acquisition.
        return max(1, min(workers, num_frames // 8))

    def _params(self) -> tuple:
        """Constructor arguments that rebuild an equivalent segmenter in a worker process."""
        return (self.model_complexity, self.max_side, self.crop_size, self.small_person,
                self.min_detection_confidence, self.min_tracking_confidence, self.reacquire_every)

    def _segment_video(self, frames, progress):
        t_len, h, w = frames.shape[:3]
        masks = np.zeros((t_len, h, w), np.float32)
        scores = np.zeros(t_len, np.float32)
        facing = np.full(t_len, np.nan, np.float32)
        full, crop, crop_static = self._pose(False), self._pose(False), self._static_pose()
        mode, box, lost_for = "full", None, 0
        try:
            for t in range(t_len):
                frame = frames[t]
                out = None
                if mode == "crop":
                    out = self._segment_crop(crop, frame, box)
                    if out is None:
                        mode = "full"
                if mode == "full":
                    out = self._run_full(full, frame)
                    if out is not None and (out[1][3] - out[1][1]) < self.small_person * h:
                        # A small person: switch to the crop that follows them (fresh tracker for the new view).
                        crop.reset()
                        out = self._segment_crop(crop, frame, out[1]) or out
                        mode = "crop"
                    if out is None and lost_for % self.reacquire_every == 0:
                        out = self._acquire(frame, crop_static)
                        if out is not None:
                            crop.reset()
                            mode = "crop"
                if out is None:
                    lost_for += 1
                    mode, box = "full", None
                else:
                    lost_for = 0
                    masks[t], new_box, scores[t], facing[t] = out
                    if not masks[t].max() > 0.5:  # lost in resampling back to the frame
                        scores[t] = 0.0
                    # Damp crop motion so the crop does not chase mask noise.
                    box = new_box if box is None else tuple(0.5 * a + 0.5 * b for a, b in zip(box, new_box))
                    if mode == "crop" and (new_box[3] - new_box[1]) > 1.3 * self.small_person * h:
                        full.reset()
                        mode = "full"
                _report(progress, (t + 1) / t_len, "segmenting (mediapipe)")
        finally:
            full.close()
            crop.close()
        # Masks are in [0, 1] already: MediaPipe's are clipped in _run and bilinear resampling keeps the range.
        return Segmentation(masks=masks, scores=scores, facing=facing)

    def segment_image(self, image: np.ndarray) -> Segmentation:
        """Segment the person in one uint8 ``[H, W, 3]`` RGB image (static mode); returns ``T == 1``."""
        image = _check_frames(image, 3, "image")
        h, w = image.shape[:2]
        with self._lock:
            pose = self._static_pose()
            out = self._run_full(pose, image)
            if out is not None and (out[1][3] - out[1][1]) < self.small_person * h:
                out = self._segment_crop(pose, image, out[1]) or out
            if out is None:
                out = self._acquire(image, pose)
        mask = np.zeros((h, w), np.float32)
        score, facing = 0.0, float("nan")
        if out is not None:
            mask = np.clip(out[0], 0.0, 1.0).astype(np.float32)
            score = out[2] if (mask > 0.5).any() else 0.0
            facing = out[3]
        return Segmentation(masks=mask[None], scores=np.array([score], np.float32),
                            facing=np.array([facing], np.float32))


# -- clip split over worker processes ------------------------------------------------------------------------------
# One MediaPipe graph runs on about one core, so idle cores can segment a clip in contiguous chunks, one per
# process. Threads do not help (measured: two graphs in two threads of one process were slower than one). Each
# chunk pays its graph's start (~170 ms CPU for the first frame after a reset). The processes
# are spawned (forking after mediapipe/torch started their threads is unsafe), kept, and reused for later clips;
# frames and masks travel through shared memory, not pickles.

_POOL = None
_POOL_SIZE = 0
_POOL_LOCK = threading.Lock()
_WORKER_SEGMENTERS: dict[tuple, "MediaPipeSegmenter"] = {}


def _pool(workers: int):
    """The shared worker pool (spawn context), grown to ``workers`` processes."""
    global _POOL, _POOL_SIZE
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    if _POOL is None or _POOL_SIZE < workers:
        if _POOL is not None:
            _POOL.shutdown(wait=False)
        _POOL = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))
        _POOL_SIZE = workers
    return _POOL


def shutdown_workers() -> None:
    """Stop the segmentation worker processes (they are restarted on demand)."""
    global _POOL, _POOL_SIZE
    with _POOL_LOCK:
        if _POOL is not None:
            _POOL.shutdown(wait=True, cancel_futures=True)
        _POOL, _POOL_SIZE = None, 0


def _worker_segmenter(params: tuple) -> "MediaPipeSegmenter":
    if params not in _WORKER_SEGMENTERS:
        _WORKER_SEGMENTERS[params] = MediaPipeSegmenter(*params, workers=1)
    return _WORKER_SEGMENTERS[params]


def _warm_worker(params: tuple) -> float:
    """Import mediapipe and build the graphs in a worker; returns the seconds it took."""
    import time

    start = time.perf_counter()
    _worker_segmenter(params)
    return time.perf_counter() - start


def _segment_chunk(params, names, shape, lo, hi):
    """Worker side: segment frames ``lo:hi`` of the shared clip into the shared mask/score/facing arrays."""
    import time
    from multiprocessing import shared_memory

    start_cpu = time.process_time()
    blocks = [shared_memory.SharedMemory(name=n) for n in names]
    try:
        t_len, h, w = shape
        frames = np.ndarray((t_len, h, w, 3), np.uint8, buffer=blocks[0].buf)
        masks = np.ndarray((t_len, h, w), np.float32, buffer=blocks[1].buf)
        small = np.ndarray((3, t_len), np.float32, buffer=blocks[2].buf)  # scores, facing, done
        seg = _worker_segmenter(params)

        def progress(fraction, desc):
            small[2, lo:lo + int(round(fraction * (hi - lo)))] = 1.0

        out = seg._segment_video(frames[lo:hi], progress)
        masks[lo:hi] = out.masks
        small[0, lo:hi] = out.scores
        small[1, lo:hi] = out.facing
        del frames, masks, small, out
    finally:
        for block in blocks:
            block.close()
    return time.process_time() - start_cpu


_LAST_PARALLEL: dict = {}
"""Timing details of the latest parallel run (``worker_cpu_s``: CPU seconds each worker spent), for benchmarks."""


def _segment_parallel(params: tuple, frames: np.ndarray, workers: int, progress: Progress) -> Segmentation:
    import time
    from concurrent.futures import wait
    from multiprocessing import shared_memory

    t_len, h, w = frames.shape[:3]
    bounds = np.linspace(0, t_len, workers + 1).round().astype(int)
    sizes = (frames.nbytes, t_len * h * w * 4, 3 * t_len * 4)
    blocks = [shared_memory.SharedMemory(create=True, size=max(1, n)) for n in sizes]
    try:
        shared = np.ndarray(frames.shape, np.uint8, buffer=blocks[0].buf)
        shared[:] = frames
        small = np.ndarray((3, t_len), np.float32, buffer=blocks[2].buf)
        small[:] = 0.0
        names = [b.name for b in blocks]
        with _POOL_LOCK:
            pool = _pool(workers)
            futures = [pool.submit(_segment_chunk, params, names, (t_len, h, w), int(lo), int(hi))
                       for lo, hi in zip(bounds[:-1], bounds[1:])]
        pending = set(futures)
        while pending:
            _, pending = wait(pending, timeout=0.1)
            _report(progress, float(small[2].mean()), "segmenting (mediapipe)")
        cpu = [f.result() for f in futures]  # re-raises a worker's error here
        _LAST_PARALLEL.clear()
        _LAST_PARALLEL.update(worker_cpu_s=cpu, workers=workers, time=time.time())
        masks = np.ndarray((t_len, h, w), np.float32, buffer=blocks[1].buf).copy()
        scores, facing = small[0].copy(), small[1].copy()
        del shared, small
    finally:
        for block in blocks:
            block.close()
            block.unlink()
    _report(progress, 1.0, "segmenting (mediapipe)")
    return Segmentation(masks=masks, scores=scores, facing=facing)


def warm_up_workers(workers: int | None = None, **params) -> None:
    """Start the segmentation worker processes now (imports and graphs, ~1-3 s) without waiting for them.

    The app calls this at start so that its first clip does not pay the start-up.

    Args:
        workers: processes to start (default ``min(2, os.cpu_count())``).
        **params: MediaPipeSegmenter constructor arguments the workers will be asked for.
    """
    workers = workers or min(2, os.cpu_count() or 1)
    if workers < 2:
        return
    key = MediaPipeSegmenter._params(_ParamsOnly(**params))
    with _POOL_LOCK:
        pool = _pool(workers)
        for _ in range(workers):
            pool.submit(_warm_worker, key)


class _ParamsOnly:
    """The constructor's defaults without building MediaPipe graphs (for :func:`warm_up_workers`)."""

    def __init__(self, model_complexity=1, max_side=512, crop_size=256, small_person=0.45,
                 min_detection_confidence=0.5, min_tracking_confidence=0.5, reacquire_every=3):
        self.model_complexity, self.max_side, self.crop_size = model_complexity, int(max_side), int(crop_size)
        self.small_person = float(small_person)
        self.min_detection_confidence = float(min_detection_confidence)
        self.min_tracking_confidence = float(min_tracking_confidence)
        self.reacquire_every = max(1, int(reacquire_every))


# ----------------------------------------------------------------------------------------------------------------
# Grounded SAM (the paper's backend): Grounding DINO on a key frame + SAM2 video propagation
# ----------------------------------------------------------------------------------------------------------------

_DOWNLOAD_ROOT = "~/.cache/huggingface/hub"


def resolve_weights(model: str, what: str, cache_dir: str | None = None) -> str:
    """Return a local folder holding ``model`` (a folder path or a Hub repo id already in the HF cache).

    Args:
        model: local folder, or a Hub repo id looked up in the Hugging Face cache (never downloaded here).
        what: the model's name for error messages.
        cache_dir: Hugging Face cache folder (default: the standard one, ``HF_HUB_CACHE``).

    Raises:
        InputError: when the weights are not on this machine, naming the command that downloads them.
    """
    path = os.path.expanduser(model)
    if os.path.isdir(path):
        folder = path
    else:
        from huggingface_hub import snapshot_download
        from huggingface_hub.constants import HF_HUB_CACHE

        cache = cache_dir or HF_HUB_CACHE
        hint = (f"{what} weights '{model}' are not on this machine: run `hf download {model}"
                + (f" --cache-dir {cache}" if cache_dir else "")
                + f"` (or `huggingface-cli download {model}`; saved under {cache}) or pass a local folder")
        if "/" not in model or model.count("/") > 1 or model.startswith((".", "/", "~")):
            raise InputError(f"{what} weights: folder '{model}' does not exist")
        try:
            folder = snapshot_download(model, local_files_only=True, cache_dir=cache_dir)
        except Exception as exc:  # LocalEntryNotFoundError, offline errors, bad repo ids
            raise InputError(hint) from exc
    if not os.path.exists(os.path.join(folder, "config.json")):
        raise InputError(f"{what} weights folder '{folder}' has no config.json: download the full model ({model})")
    if not any(f.endswith(".safetensors") for f in os.listdir(folder)):
        raise InputError(f"{what} weights folder '{folder}' has no .safetensors file; only safetensors are loaded")
    return folder


class GroundedSamSegmenter:
    """The paper's segmentation: text-prompted detection + SAM2 masks propagated through the clip.

    Grounding DINO (``GroundingDinoForObjectDetection``) finds ``prompt`` on a few candidate key frames; the best box
    prompts ``Sam2VideoModel`` on its frame, and the mask is propagated forwards and backwards through the clip.
    A single image is a one-frame clip. Weights are read from local folders or the Hugging Face cache with
    safetensors; nothing is fetched implicitly. transformers' classes are used instead of the ``groundingdino-py``
    and ``segment-anything`` packages, which need torchvision (it does not import beside CPU torch 2.13).

    Args:
        detector: Grounding DINO repo id or local folder (needs the PIL image processor files and the tokenizer).
        sam: SAM2 (2.1) repo id or local folder; the same checkpoint loads into ``Sam2VideoModel``.
        prompt: text prompt for the detector.
        box_threshold: minimum detection score for a person box.
        text_threshold: minimum text-token score (Grounding DINO post-processing).
        key_frames: how many evenly spaced frames are tried as the key frame (the best-scoring box wins).
        device: torch device; default CUDA when available.
        dtype: model dtype (float32 on CPU).
        cache_dir: Hugging Face cache folder to look for repo ids in (default: the standard cache).
    """

    name = "grounded-sam"

    def __init__(
        self,
        detector: str = "IDEA-Research/grounding-dino-tiny",
        sam: str = "facebook/sam2.1-hiera-tiny",
        prompt: str = "person",
        box_threshold: float = 0.35,
        text_threshold: float = 0.25,
        key_frames: int = 4,
        device: str | None = None,
        dtype=None,
        cache_dir: str | None = None,
    ):
        import torch
        from transformers import (AutoTokenizer, GroundingDinoForObjectDetection, GroundingDinoImageProcessorPil,
                                  GroundingDinoProcessor, Sam2VideoModel)

        det_dir = resolve_weights(detector, "Grounding DINO", cache_dir)
        sam_dir = resolve_weights(sam, "SAM2", cache_dir)
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.dtype = dtype or torch.float32
        # The PIL image processor: the default (fast) one needs torchvision.
        self.processor = GroundingDinoProcessor(
            image_processor=GroundingDinoImageProcessorPil.from_pretrained(det_dir),
            tokenizer=AutoTokenizer.from_pretrained(det_dir),
        )
        self.detector = GroundingDinoForObjectDetection.from_pretrained(det_dir, use_safetensors=True)
        self.detector.to(self.device).eval()
        self.sam = Sam2VideoModel.from_pretrained(sam_dir, use_safetensors=True, dtype=self.dtype)
        self.sam.to(self.device).eval()
        self.prompt = prompt.strip().rstrip(".") + "."
        self.box_threshold = float(box_threshold)
        self.text_threshold = float(text_threshold)
        self.key_frames = max(1, int(key_frames))
        self.sam_size = int(self.sam.config.image_size)

    def detect(self, image: np.ndarray) -> tuple[np.ndarray, float] | None:
        """Best ``prompt`` box ``(x0, y0, x1, y1)`` in ``image`` pixels and its score, or None."""
        import torch
        from PIL import Image

        h, w = image.shape[:2]
        inputs = self.processor(images=Image.fromarray(image), text=self.prompt, return_tensors="pt").to(self.device)
        with torch.inference_mode():
            outputs = self.detector(**inputs)
        result = self.processor.post_process_grounded_object_detection(
            outputs, inputs["input_ids"], threshold=self.box_threshold, text_threshold=self.text_threshold,
            target_sizes=[(h, w)],
        )[0]
        if len(result["scores"]) == 0:
            return None
        i = int(torch.argmax(result["scores"]))
        box = result["boxes"][i].float().cpu().numpy()
        box = np.clip(box, 0, [w, h, w, h]).astype(np.float32)
        if box[2] - box[0] < 1 or box[3] - box[1] < 1:
            return None
        return box, float(result["scores"][i])

    def _pixel_values(self, frames: np.ndarray):
        import torch
        import torch.nn.functional as F

        # SAM2's own preprocessing: square resize, [0,1], ImageNet mean/std (done here: its video processor needs
        # torchvision).
        x = torch.from_numpy(frames).permute(0, 3, 1, 2).float().div_(255.0)
        x = F.interpolate(x, size=(self.sam_size, self.sam_size), mode="bilinear", align_corners=False)
        mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
        std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
        return ((x - mean) / std).to(self.dtype)

    def segment_video(self, frames: np.ndarray, progress: Progress = None) -> Segmentation:
        """Detect the person on the best key frame and propagate its SAM2 mask through the clip.

        Args:
            frames: uint8 ``[T, H, W, 3]`` RGB clip.
            progress: optional ``progress(fraction, desc)`` callback.
        """
        import torch
        import torch.nn.functional as F
        from transformers import Sam2VideoInferenceSession

        frames = _check_frames(frames, 4, "frames")
        t_len, h, w = frames.shape[:3]
        masks = np.zeros((t_len, h, w), np.float32)
        scores = np.zeros(t_len, np.float32)
        candidates = sorted(set(np.linspace(0, t_len - 1, min(self.key_frames, t_len)).round().astype(int)))
        best = None
        for i, t in enumerate(candidates):
            found = self.detect(frames[t])
            if found is not None and (best is None or found[1] > best[2]):
                best = (t, found[0], found[1])
            _report(progress, 0.1 * (i + 1) / len(candidates), "detecting person (Grounding DINO)")
        if best is None:
            return Segmentation(masks=masks, scores=scores)
        key, box, _ = best

        session = Sam2VideoInferenceSession(
            video=self._pixel_values(frames), video_height=h, video_width=w, inference_device=self.device,
            inference_state_device=self.device, video_storage_device=self.device, dtype=self.dtype,
        )
        obj_idx = session.obj_id_to_idx(1)
        scale = np.array([self.sam_size / w, self.sam_size / h] * 2, np.float32)
        coords = torch.from_numpy(box * scale).view(1, 1, 2, 2)
        labels = torch.tensor([[[2, 3]]], dtype=torch.int32)  # SAM's labels for a box's two corners
        session.add_point_inputs(obj_idx, key, {"point_coords": coords, "point_labels": labels})
        session.obj_with_new_inputs = [1]

        done = 0

        def keep(output):
            nonlocal done
            t = int(output.frame_idx)
            logits = output.pred_masks[:1].float()
            logits = F.interpolate(logits.reshape(1, 1, *logits.shape[-2:]), size=(h, w), mode="bilinear",
                                   align_corners=False)[0, 0]
            prob = torch.sigmoid(logits).cpu().numpy()
            present = 1.0
            if output.object_score_logits is not None:
                present = float(torch.sigmoid(output.object_score_logits.float().reshape(-1)[0]))
            on = prob > 0.5
            if on.any():
                masks[t] = prob
                # Quality: is the object there (SAM2's occlusion head) and how sure is the mask where it says
                # "person". (The detection score only chose the key frame.)
                scores[t] = np.clip(present * float(prob[on].mean()), 0.0, 1.0)
            else:
                masks[t] = 0.0
                scores[t] = 0.0
            done += 1
            _report(progress, 0.1 + 0.9 * done / t_len, "propagating mask (SAM2)")

        with torch.inference_mode():
            keep(self.sam(inference_session=session, frame_idx=key))
            for output in self.sam.propagate_in_video_iterator(session, start_frame_idx=key):
                if int(output.frame_idx) != key:
                    keep(output)
            if key > 0:
                for output in self.sam.propagate_in_video_iterator(session, start_frame_idx=key, reverse=True):
                    if int(output.frame_idx) != key:
                        keep(output)
        return Segmentation(masks=masks, scores=scores.astype(np.float32))

    def segment_image(self, image: np.ndarray) -> Segmentation:
        """Segment the person in one uint8 ``[H, W, 3]`` RGB image (a one-frame clip); returns ``T == 1``."""
        image = _check_frames(image, 3, "image")
        return self.segment_video(image[None])


# ----------------------------------------------------------------------------------------------------------------

SEGMENTERS: dict[str, type] = {
    "mediapipe": MediaPipeSegmenter,
    "grounded-sam": GroundedSamSegmenter,
}


def get_segmenter(name: str = "mediapipe", **kwargs) -> PersonSegmenter:
    """Build a segmentation backend by name.

    Args:
        name: one of ``SEGMENTERS`` ("mediapipe": offline default; "grounded-sam": the paper's, needs weights).
        **kwargs: passed to the backend's constructor.

    Raises:
        InputError: unknown name, or the backend's weights are missing.
    """
    if name not in SEGMENTERS:
        raise InputError(f"unknown segmenter '{name}': choose one of {', '.join(SEGMENTERS)}")
    return SEGMENTERS[name](**kwargs)


def drop_bad_frames(
    seg: Segmentation, min_score: float = 0.5, min_area: float = 0.002, max_area_jump: float = 0.5, window: int = 2
) -> np.ndarray:
    """Frames whose mask should not drive the pose cue (the paper's frame dropping).

    A frame is dropped when its mask is empty or smaller than ``min_area`` of the frame, when its score is under
    ``min_score``, or when its area differs from the median area of its kept neighbours (``window`` frames each
    side) by more than ``max_area_jump`` relative to that median (a sudden grow/shrink is a segmentation failure,
    bodies do not change size between frames).

    Args:
        seg: the clip's segmentation.
        min_score: minimum per-frame quality score.
        min_area: minimum mask area as a fraction of the frame.
        max_area_jump: maximum relative area change against the neighbours' median.
        window: neighbours considered on each side.

    Returns:
        bool ``[T]``, True = dropped.
    """
    area = seg.areas.astype(np.float64)
    scores = np.asarray(seg.scores, np.float64)
    dropped = (area < max(min_area, 1e-12)) | (scores < min_score) | ~np.isfinite(scores)
    t_len = len(area)
    jump = np.zeros(t_len, dtype=bool)
    for t in np.flatnonzero(~dropped):
        lo, hi = max(0, t - window), min(t_len, t + window + 1)
        neigh = [area[i] for i in range(lo, hi) if i != t and not dropped[i]]
        if len(neigh) < 2 and t_len > 2:
            # With a single neighbour we cannot tell which of the two jumped; widen the search.
            lo, hi = max(0, t - 2 * window), min(t_len, t + 2 * window + 1)
            neigh = [area[i] for i in range(lo, hi) if i != t and not dropped[i]]
        if len(neigh) < 2:
            continue
        med = float(np.median(neigh))
        jump[t] = abs(area[t] - med) > max_area_jump * med
    return dropped | jump
