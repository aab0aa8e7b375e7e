"""The offline default segmentation backend: MediaPipe Pose with its segmentation head (mediapipe 0.10.21's wheel
ships the models, nothing is downloaded). Full-body masks in video (tracking) mode; people that are small in a wide
shot are found with OpenCV's HOG people detector and segmented in an upscaled crop that follows them. The pose
landmarks also say which way the person faces (``facing_from_landmarks``).
"""

from __future__ import annotations

import os
import threading

import cv2
import numpy as np

from directanimator.errors import InputError
from directanimator.quiet import QuietGraph

from .hog import HogPeople
from .protocol import Progress, Segmentation, _check_frames, _mask_bbox, _report
from .workers import segment_parallel, warm_workers

__all__ = ["MediaPipeSegmenter", "facing_from_landmarks", "warm_up_workers"]

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
        # lazy: mediapipe (with the jax it pulls in) costs about a second to import, which a run with another
        # backend, or a CLI's --help, should not pay
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
        if self._hog is None:
            self._hog = HogPeople()
        return self._hog.boxes(frame)

    def _acquire(self, frame, pose_crop_static):
        """Find a (small) person with HOG and confirm them with a static pose run on the crop."""
        for box in self._people(frame)[:3]:
            out = self._segment_crop(pose_crop_static, frame, box)
            if out is not None:
                return out
        return None

    # -- public API -------------------------------------------------------------------------------------------
    def _work_frame(self, frame):
        h, w = frame.shape[:2]
        s = min(1.0, self.max_side / max(h, w))
        if s >= 1.0:
            return frame, 1.0
        return cv2.resize(frame, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA), s

    def _run_full(self, pose, frame):
        """Full-frame pass on the downscaled frame; mask and box come back at the frame's size."""
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
            return segment_parallel(type(self), self._params(), frames, workers, progress)
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
        track = _Track(self)
        try:
            for t in range(t_len):
                masks[t], scores[t], facing[t] = track.step(frames[t])
                _report(progress, (t + 1) / t_len, "segmenting (mediapipe)")
        finally:
            track.close()
        # Masks are in [0, 1] already: MediaPipe's are clipped in _run and bilinear resampling keeps the range.
        return Segmentation(masks=masks, scores=scores, facing=facing)

    def segment_stream(self, chunks):
        """Segment a clip that arrives in chunks (uint8 ``[t, H, W, 3]`` arrays, in order), one
        :class:`Segmentation` per chunk, with one tracker state through the whole clip: the result is the same as
        ``segment_video`` on the whole clip in this process, without holding it (the streaming extraction,
        ``directanimator.cues.stream``)."""
        # The lock is held per chunk, not across the yields: the caller may segment other images in between
        # (the static graph is shared; the tracker's two video graphs are this stream's own).
        with self._lock:
            track = _Track(self)
        try:
            for chunk in chunks:
                chunk = _check_frames(chunk, 4, "frames")
                t_len, h, w = chunk.shape[:3]
                masks = np.zeros((t_len, h, w), np.float32)
                scores = np.zeros(t_len, np.float32)
                facing = np.full(t_len, np.nan, np.float32)
                with self._lock:
                    for t in range(t_len):
                        masks[t], scores[t], facing[t] = track.step(chunk[t])
                yield Segmentation(masks=masks, scores=scores, facing=facing)
        finally:
            track.close()

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
    warm_workers(MediaPipeSegmenter, MediaPipeSegmenter._params(_ParamsOnly(**params)), workers)


class _Track:
    """One clip's tracking state in ``MediaPipeSegmenter``'s video mode: the full-frame and crop graphs, the mode
    (``"full"`` or ``"crop"`` around a small person), the damped crop box, and how long the person has been lost.
    ``step(frame)`` segments the next frame: ``(mask [H, W], score, facing)``."""

    def __init__(self, seg: "MediaPipeSegmenter"):
        self.seg = seg
        self.full, self.crop, self.crop_static = seg._pose(False), seg._pose(False), seg._static_pose()
        self.mode, self.box, self.lost_for = "full", None, 0

    def step(self, frame):
        seg, h = self.seg, frame.shape[0]
        out = None
        if self.mode == "crop":
            out = seg._segment_crop(self.crop, frame, self.box)
            if out is None:
                self.mode = "full"
        if self.mode == "full":
            out = seg._run_full(self.full, frame)
            if out is not None and (out[1][3] - out[1][1]) < seg.small_person * h:
                # A small person: switch to the crop that follows them (fresh tracker for the new view).
                self.crop.reset()
                out = seg._segment_crop(self.crop, frame, out[1]) or out
                self.mode = "crop"
            if out is None and self.lost_for % seg.reacquire_every == 0:
                out = seg._acquire(frame, self.crop_static)
                if out is not None:
                    self.crop.reset()
                    self.mode = "crop"
        if out is None:
            self.lost_for += 1
            self.mode, self.box = "full", None
            return np.zeros(frame.shape[:2], np.float32), 0.0, np.nan
        self.lost_for = 0
        mask, new_box, score, facing = out
        if not mask.max() > 0.5:  # lost in resampling back to the frame
            score = 0.0
        # Damp crop motion so the crop does not chase mask noise.
        self.box = new_box if self.box is None else tuple(0.5 * a + 0.5 * b for a, b in zip(self.box, new_box))
        if self.mode == "crop" and (new_box[3] - new_box[1]) > 1.3 * seg.small_person * h:
            self.full.reset()
            self.mode = "full"
        return mask, score, facing

    def close(self) -> None:
        self.full.close()
        self.crop.close()


class _ParamsOnly:
    """The constructor's defaults without building MediaPipe graphs (for :func:`warm_up_workers`)."""

    def __init__(self, model_complexity=1, max_side=512, crop_size=256, small_person=0.45,
                 min_detection_confidence=0.5, min_tracking_confidence=0.5, reacquire_every=3):
        self.model_complexity, self.max_side, self.crop_size = model_complexity, int(max_side), int(crop_size)
        self.small_person = float(small_person)
        self.min_detection_confidence = float(min_detection_confidence)
        self.min_tracking_confidence = float(min_tracking_confidence)
        self.reacquire_every = max(1, int(reacquire_every))
