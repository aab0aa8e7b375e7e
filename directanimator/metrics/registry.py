"""What the evaluator can measure: every metric of the paper's Tables 1 and 2 (plus moving L1), what each needs
(inputs, weight files), and the ones this project cannot compute yet with the reason.

``METRICS`` is the single list the evaluator, ``--check``, ``results.json`` and the tables are built from.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import InputError
from .weights import WEIGHT_FILES, find_weight, how_to_get

__all__ = ["ESTIMATORS", "LANDMARK_WEIGHTS", "METRICS", "NOT_AVAILABLE", "MetricSpec", "landmark_estimator",
           "metric_status"]


@dataclass(frozen=True)
class MetricSpec:
    """One metric.

    Args:
        key: its name in ``results.json``.
        label: its column title (the paper's).
        table: the paper table it belongs to (1 or 2; 0: not in the paper).
        higher_is_better: direction (the arrow in the title).
        needs: inputs besides the generated videos: ``"ground_truth"``, ``"reference"`` (``--references``).
        weights: keys of ``weights.WEIGHT_FILES`` it loads.
        scale: factor the table shows it with (L1 is shown x1e4, the paper's "E-04").
        digits: decimals in the table.
        per_set: computed over a dataset's frames (FID) or 16-frame clips (FVD) at once, not as a mean over videos.
    """

    key: str
    label: str
    table: int
    higher_is_better: bool
    needs: tuple[str, ...] = ("ground_truth",)
    weights: tuple[str, ...] = ()
    scale: float = 1.0
    digits: int = 3
    per_set: bool = False

    @property
    def title(self) -> str:
        return f"{self.label} {'↑' if self.higher_is_better else '↓'}"


METRICS: tuple[MetricSpec, ...] = (
    MetricSpec("fid", "FID", 1, False, weights=("inception",), digits=2, per_set=True),
    MetricSpec("ssim", "SSIM", 1, True),
    MetricSpec("psnr", "PSNR", 1, True, digits=2),
    MetricSpec("lpips", "LPIPS", 1, False, weights=("alexnet", "lpips_alex")),
    MetricSpec("l1", "L1(E-04)", 1, False, scale=1e4, digits=2),
    MetricSpec("fis", "FIS", 1, True, needs=("reference",), weights=("arcface", "scrfd")),
    MetricSpec("fts", "FTS", 1, True, needs=(), weights=("arcface", "scrfd")),
    MetricSpec("fvd", "FVD", 1, False, weights=("i3d",), digits=2, per_set=True),
    MetricSpec("plc", "PLC", 2, False),
    MetricSpec("flc", "FLC", 2, False),
    MetricSpec("moving_l1", "moving L1(E-04)", 0, False, needs=("ground_truth", "reference"), scale=1e4, digits=1),
)

#: Paper metrics this project does not compute yet, with why (they show as absent, never as a number). Empty now:
#: every metric of Tables 1 and 2 has an implementation.
NOT_AVAILABLE: dict[str, str] = {}
#: Column order of the paper's Table 1 (FID first, FVD last) and Table 2.
TABLE_COLUMNS = {1: ("fid", "ssim", "psnr", "lpips", "l1", "fis", "fts", "fvd"), 2: ("plc", "flc"), 0: ("moving_l1",)}
TITLES: dict[str, str] = {}
#: The landmark estimators PLC/FLC can come from (each result says which one produced it).
ESTIMATORS = {
    "dwpose": "DWPose (yolox_l + dw-ll_ucoco_384, COCO-WholeBody body / face keypoints, the paper's estimator)",
    "mediapipe": "MediaPipe Pose / Face Mesh (the paper used DWPose: not comparable with its Table 2)",
}
#: DWPose's weight files; without them PLC/FLC fall back to MediaPipe (in its wheel).
LANDMARK_WEIGHTS = ("dwpose_det", "dwpose_pose")


def landmark_estimator(weights_dirs=(), choice: str = "auto") -> tuple[str, dict[str, str], str]:
    """Which estimator PLC/FLC use: ``(name, {weight key: path}, missing)``. ``choice``: ``"auto"`` (DWPose when
    its two files are present, else MediaPipe), ``"dwpose"`` (``missing`` says what to download when absent) or
    ``"mediapipe"``."""
    if choice not in ("auto", *ESTIMATORS):
        raise InputError(f"unknown landmark estimator {choice!r}; choose auto, dwpose or mediapipe")
    if choice == "mediapipe":
        return "mediapipe", {}, ""
    files = {key: find_weight(key, weights_dirs) for key in LANDMARK_WEIGHTS}
    absent = [WEIGHT_FILES[key] for key, path in files.items() if path is None]
    if absent and choice == "auto":
        return "mediapipe", {}, ""
    return "dwpose", {k: str(p) for k, p in files.items() if p is not None}, how_to_get(absent) if absent else ""


def metric_status(weights_dirs=(), landmarks: str = "auto") -> dict[str, dict]:
    """For every metric: ``{"ready": bool, "files": {key: path}, "missing": what to download and where, or ""}``
    (presence only; loading happens in ``Evaluator``; PLC/FLC also say their ``estimator``, see
    ``landmark_estimator``), and the not-available ones with their reason."""
    out = {}
    for spec in METRICS:
        files = {key: find_weight(key, weights_dirs) for key in spec.weights}
        absent = [WEIGHT_FILES[key] for key, path in files.items() if path is None]
        out[spec.key] = {"ready": not absent, "files": {k: str(p) for k, p in files.items() if p is not None},
                         "missing": how_to_get(absent) if absent else ""}
    name, files, missing = landmark_estimator(weights_dirs, landmarks)
    for key in ("plc", "flc"):
        out[key].update(estimator=name, ready=not missing, files=files, missing=missing)
    for key, reason in NOT_AVAILABLE.items():
        out[key] = {"ready": False, "files": {}, "missing": "", "reason": reason}
    return out
