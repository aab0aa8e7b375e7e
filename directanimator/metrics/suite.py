"""Every metric of one generated video at once (``Evaluator``), with the networks loaded once for a whole folder.

A metric that cannot run for a video (its weights are missing, an input it needs was not given, no face was found)
is left out of ``metrics`` and its reason is put in ``skipped``: never a 0 or a NaN in its place.
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch

from ..errors import InputError
from ..progress import ProgressFn, report, sub_progress
from .frechet import frechet_distance
from .identity import face_identity_similarity, face_temporal_similarity
from .landmarks import face_landmark_consistency, pose_landmark_consistency
from .pixels import as_video, l1, moving_l1, psnr, ssim
from .registry import ESTIMATORS, METRICS, NOT_AVAILABLE, metric_status

__all__ = ["Evaluator", "check_weights", "evaluate"]


class Evaluator:
    """Loads the networks whose weights are present (once) and scores videos with every metric that can run.

    Args:
        weights_dirs: folders to look for weight files in (see ``directanimator.metrics.weights``).
        device: torch device for LPIPS, FID and FVD (default: CUDA when available).
        metrics: keys of ``registry.METRICS`` to compute (default: all).
        landmarks: PLC/FLC's estimator: ``"auto"`` (DWPose when its weights are present, else MediaPipe),
            ``"dwpose"`` or ``"mediapipe"``; ``self.landmarks`` says which one runs.

    Raises:
        InputError: a weight file that is present but cannot be loaded (one line naming it), an unknown metric.
    """

    def __init__(self, weights_dirs=(), device: str | None = None, metrics=None, landmarks: str = "auto"):
        known = {m.key for m in METRICS}
        wanted = list(metrics) if metrics else [m.key for m in METRICS]
        unknown = [k for k in wanted if k not in known and k not in NOT_AVAILABLE]
        if unknown:
            raise InputError(f"unknown metric {unknown[0]!r}; choose from {', '.join(sorted(known | set(NOT_AVAILABLE)))}")
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.status = metric_status(weights_dirs, landmarks)
        self.landmarks = self.status["plc"]["estimator"]
        self.wanted = [k for k in wanted if k in known]
        self.unavailable = {k: NOT_AVAILABLE[k] for k in (wanted if metrics else NOT_AVAILABLE) if k in NOT_AVAILABLE}
        self.lpips = self.arcface = self.inception = self.i3d = self.dwpose = None
        if self.landmarks == "dwpose" and {"plc", "flc"} & set(self.wanted) and self.status["plc"]["ready"]:
            from .dwpose import DWPose

            files = self.status["plc"]["files"]
            self.dwpose = DWPose(files["dwpose_det"], files["dwpose_pose"])
        if "fid" in self.wanted and self.status["fid"]["ready"]:
            from .inception import load_inception

            self.inception = load_inception(self.status["fid"]["files"]["inception"], self.device)
        if "fvd" in self.wanted and self.status["fvd"]["ready"]:
            from .i3d import load_i3d

            self.i3d = load_i3d(self.status["fvd"]["files"]["i3d"], self.device)
        if "lpips" in self.wanted and self.status["lpips"]["ready"]:
            from .lpips import load_lpips

            files = self.status["lpips"]["files"]
            self.lpips = load_lpips(files["alexnet"], files["lpips_alex"], self.device)
        if {"fis", "fts"} & set(self.wanted) and self.status["fis"]["ready"]:
            from .arcface import ArcFaceEmbedder

            files = self.status["fis"]["files"]
            self.arcface = ArcFaceEmbedder(files["arcface"], files["scrfd"])

    def missing_weights(self) -> dict[str, str]:
        """``{metric: what to download and where}`` for the wanted metrics whose weights are absent."""
        return {k: self.status[k]["missing"] for k in self.wanted if self.status[k]["missing"]}

    def evaluate_video(self, generated, ground_truth=None, driving=None, reference=None,
                       progress: ProgressFn | None = None) -> dict:
        """Score one generated video.

        Args:
            generated: uint8 ``[T, H, W, 3]``.
            ground_truth: uint8 video of the same shape (SSIM, PSNR, LPIPS, L1; PLC/FLC when no driving is given).
            driving: uint8 ``[T, H', W', 3]`` driving video for PLC/FLC (frames may differ in size).
            reference: uint8 ``[H', W', 3]`` reference image (FIS; moving L1 when it has the frames' size).
            progress: optional ``progress(fraction, desc)``.

        Returns:
            ``{"metrics": {key: float}, "details": {key: dict}, "skipped": {key: reason}, "seconds": {stage: s},
            "features": {"fid": (generated [T, 2048], ground truth [T, 2048]), "fvd": (generated [clips, 400],
            ground truth [clips, 400])}}``: FID and FVD are a dataset's numbers, made from these features by
            ``per_set_of`` (a key is absent from ``features`` when its metric does not run).
        """
        gen = as_video(generated, "generated")
        metrics, details, skipped, seconds, features = {}, {}, {}, {}, {}
        missing = self.missing_weights()
        for key in self.wanted:
            if key in missing:
                skipped[key] = f"weights missing: {missing[key]}"
        gt = None if ground_truth is None else as_video(ground_truth, "ground_truth")
        if gt is not None and gt.shape != gen.shape:
            raise InputError(f"generated {gen.shape} and ground truth {gt.shape} differ; trim and resize them to one shape")
        ref = None if reference is None else np.asarray(reference)[..., :3]

        def want(key, needs_gt=True):
            if key not in self.wanted or key in skipped:
                return False
            if needs_gt and gt is None:
                skipped[key] = "no ground truth given"
                return False
            return True

        start = time.perf_counter()
        for key, fn in (("ssim", ssim), ("psnr", psnr), ("l1", l1)):
            if want(key):
                metrics[key] = float(fn(gen, gt))
        if want("moving_l1"):
            if ref is None:
                skipped["moving_l1"] = "no reference image given (--references)"
            elif ref.shape[:2] != gen.shape[1:3]:
                skipped["moving_l1"] = f"the reference is {ref.shape[1]}x{ref.shape[0]}, not the frames' size"
            else:
                value = moving_l1(gen, gt, ref)
                if math.isnan(value):
                    skipped["moving_l1"] = "nothing moves: the ground truth never differs from the reference"
                else:
                    metrics["moving_l1"] = value
        seconds["pixels"] = time.perf_counter() - start
        report(progress, 0.05, "pixel metrics")

        if want("fid") and self.inception is not None:
            start = time.perf_counter()
            features["fid"] = (self.inception.video_features(gen, progress=sub_progress(progress, 0.05, 0.15)),
                               self.inception.video_features(gt, progress=sub_progress(progress, 0.15, 0.25)))
            seconds["fid_features"] = time.perf_counter() - start

        if want("fvd") and self.i3d is not None:
            start = time.perf_counter()
            try:
                features["fvd"] = (self.i3d.video_features(gen, progress=sub_progress(progress, 0.05, 0.15)),
                                   self.i3d.video_features(gt, progress=sub_progress(progress, 0.15, 0.25)))
            except InputError as exc:  # shorter than one 16-frame clip
                skipped["fvd"] = str(exc)
            seconds["fvd_features"] = time.perf_counter() - start

        if want("lpips") and self.lpips is not None:
            start = time.perf_counter()
            metrics["lpips"] = float(self.lpips.video_distance(gen, gt, progress=sub_progress(progress, 0.05, 0.3)).mean())
            seconds["lpips"] = time.perf_counter() - start

        if self.arcface is not None and (want("fis", False) or want("fts", False)):
            start = time.perf_counter()
            emb = self.arcface.embed(gen, progress=sub_progress(progress, 0.3, 0.6))
            details["faces"] = {"frames_with_face": int(np.isfinite(emb).all(1).sum()), "frames": len(gen)}
            if want("fis", False):
                ref_emb = None if ref is None else self.arcface.embed(ref)
                if ref is None:
                    skipped["fis"] = "no reference image given (--references)"
                elif not np.isfinite(ref_emb).all():
                    skipped["fis"] = "no face found in the reference image"
                else:
                    self._store("fis", lambda: face_identity_similarity(emb, ref_emb[0]), metrics, skipped)
            if want("fts", False):
                self._store("fts", lambda: face_temporal_similarity(emb), metrics, skipped)
            seconds["faces"] = time.perf_counter() - start

        against = driving if driving is not None else gt
        self._landmark_metrics(gen, against, "driving" if driving is not None else "ground_truth",
                               metrics, details, skipped, seconds, progress)
        for key, reason in self.unavailable.items():
            skipped[key] = reason
        report(progress, 1.0, "done")
        return {"metrics": metrics, "details": details, "skipped": skipped, "seconds": seconds, "features": features}

    @staticmethod
    def per_set_of(results: list[dict], key: str = "fid") -> tuple[float | None, str]:
        """FID (over the frames) or FVD (over the 16-frame clips) of some videos' ``evaluate_video`` results:
        ``(value, "")`` or ``(None, why)``."""
        pairs = [r["features"][key] for r in results if key in r.get("features", {})]
        if not pairs:
            reasons = [r["skipped"][key] for r in results if key in r["skipped"]]
            return None, reasons[0] if reasons else "not computed"
        try:
            return frechet_distance(np.concatenate([p[0] for p in pairs]), np.concatenate([p[1] for p in pairs])), ""
        except InputError as exc:
            unit = "16-frame clips" if key == "fvd" else "frames"
            return None, f"{key.upper()} over {sum(len(p[0]) for p in pairs)} {unit}: {exc}"

    def _landmark_metrics(self, gen, against, against_name, metrics, details, skipped, seconds, progress):
        """PLC/FLC with ``self.landmarks``' estimator (DWPose: one pass gives both body and face keypoints)."""
        keys = [k for k in ("plc", "flc") if k in self.wanted and k not in skipped]
        if not keys:
            return
        if against is None:
            for key in keys:
                skipped[key] = "neither a driving video nor a ground truth given"
            return
        results = {}
        if self.dwpose is not None:
            from .dwpose import BODY, FACE, dwpose_consistency

            start = time.perf_counter()
            vd = as_video(against, "driving")
            if len(vd) != len(gen):
                for key in keys:
                    skipped[key] = f"generated has {len(gen)} frames but driving has {len(vd)}; trim them to the same frames"
                return
            kg = self.dwpose.video_keypoints(gen, progress=sub_progress(progress, 0.6, 0.8))
            kd = self.dwpose.video_keypoints(vd, progress=sub_progress(progress, 0.8, 1.0))
            for key in keys:
                results[key] = dwpose_consistency(kg, kd, BODY if key == "plc" else FACE, gen.shape[2:0:-1],
                                                  vd.shape[2:0:-1])
            seconds["dwpose"] = time.perf_counter() - start
        else:
            for i, key in enumerate(keys):
                fn = pose_landmark_consistency if key == "plc" else face_landmark_consistency
                start = time.perf_counter()
                try:
                    results[key] = fn(gen, against, progress=sub_progress(progress, 0.6 + 0.2 * i, 0.8 + 0.2 * i))
                except InputError as exc:
                    skipped[key] = str(exc)
                seconds[key] = time.perf_counter() - start
        for key, res in results.items():
            if res["frames_used"] == 0:
                skipped[key] = f"no frame had {'a body' if key == 'plc' else 'a face'} found in both videos ({self.landmarks})"
            else:
                metrics[key] = res["nme"]
                details[key] = {**res, "against": against_name, "estimator": self.landmarks}

    @staticmethod
    def _store(key, fn, metrics, skipped):
        try:
            metrics[key] = float(fn())
        except InputError as exc:  # e.g. no frame with a face
            skipped[key] = str(exc)


def evaluate(generated, ground_truth, driving=None, reference=None, weights_dirs=(),
             progress: ProgressFn | None = None) -> dict:
    """Every metric available for one video (see ``Evaluator.evaluate_video``); loads the networks each call, so
    use an ``Evaluator`` for many videos. Returns ``{"metrics", "details", "skipped", "seconds"}``."""
    return Evaluator(weights_dirs).evaluate_video(generated, ground_truth, driving, reference, progress)


def check_weights(weights_dirs=(), landmarks: str = "auto") -> dict[str, dict]:
    """For ``--check``: ``{metric: {"state": "ready" | "missing" | "broken" | "n/a", "detail": str}}``. Weight files
    that are present are loaded, so a damaged one shows as broken with the reason."""
    status = metric_status(weights_dirs, landmarks)
    loaded: dict[tuple, str | None] = {}

    def load_error(spec) -> str | None:
        files = status[spec.key]["files"]
        key = tuple(sorted(files.items()))
        if key not in loaded:
            try:
                if spec.key == "fid":
                    from .inception import load_inception

                    load_inception(files["inception"])
                elif spec.key == "fvd":
                    from .i3d import load_i3d

                    load_i3d(files["i3d"])
                elif spec.key in ("plc", "flc"):
                    from .dwpose import DWPose

                    DWPose(files["dwpose_det"], files["dwpose_pose"])
                elif spec.key == "lpips":
                    from .lpips import load_lpips

                    load_lpips(files["alexnet"], files["lpips_alex"])
                else:
                    from .arcface import ArcFaceEmbedder

                    ArcFaceEmbedder(files["arcface"], files["scrfd"])
                loaded[key] = None
            except InputError as exc:
                loaded[key] = str(exc)
        return loaded[key]

    rows = {}
    for spec in METRICS:
        st = status[spec.key]
        if not st["ready"]:
            rows[spec.key] = {"state": "missing", "detail": st["missing"]}
        elif st["files"] and (error := load_error(spec)):
            rows[spec.key] = {"state": "broken", "detail": error}
        else:
            needs = {"reference": " (needs --references)", "ground_truth": ""}
            extra = "".join(needs.get(n, "") for n in spec.needs)
            what = ", ".join(st["files"].values()) if st["files"] else "no weights needed"
            if spec.key in ("plc", "flc"):
                what += f"; {st['estimator']}: {ESTIMATORS[st['estimator']]}"
            rows[spec.key] = {"state": "ready", "detail": what + extra}
    for key, reason in NOT_AVAILABLE.items():
        rows[key] = {"state": "n/a", "detail": reason}
    return rows
