"""Evaluation metrics for generated videos (paper section 4.1 and appendix A.4), one module per concept:

- ``pixels``: PSNR, SSIM, L1 and moving L1 (no weights);
- ``frechet``: the Fréchet distance of FID / FVD on feature sets; ``inception``: FID's Inception-v3; ``i3d``: FVD's
  I3D (16-frame clips);
- ``identity``: FIS / FTS on face embeddings; ``arcface``: those embeddings (InsightFace's ``w600k_r50.onnx`` on
  SCRFD-aligned faces);
- ``lpips``: LPIPS v0.1 (AlexNet) in pure torch with the published weights;
- ``landmarks``: PLC / FLC on MediaPipe landmarks (offline fallback); ``dwpose``: PLC / FLC on DWPose's
  COCO-WholeBody keypoints (the paper's estimator, ONNX);
- ``weights``: where weight files are found (``--weights-dir``, ``$DIRECTANIMATOR_WEIGHTS``, their usual homes),
  never downloaded; ``registry``: which metrics exist and what each needs; ``suite``: all of them on one video.

The folder-level evaluator with its tables is ``python -m directanimator.evaluate``. Videos are uint8 arrays
``[T, H, W, 3]`` (a single ``[H, W, 3]`` image counts as one frame).
"""

from .frechet import feature_stats, frechet_distance, frechet_distance_from_stats
from .identity import face_identity_similarity, face_temporal_similarity
from .landmarks import (face_landmark_consistency, face_landmarks, landmark_consistency, pose_landmark_consistency,
                        pose_landmarks)
from .pixels import MOVING_THRESHOLD, as_video, l1, moving_l1, psnr, ssim
from .registry import METRICS, NOT_AVAILABLE, metric_status
from .suite import Evaluator, evaluate

__all__ = [
    "METRICS", "MOVING_THRESHOLD", "NOT_AVAILABLE", "Evaluator", "as_video", "evaluate", "face_identity_similarity",
    "face_landmark_consistency", "face_landmarks", "face_temporal_similarity", "feature_stats", "frechet_distance",
    "frechet_distance_from_stats", "l1", "landmark_consistency", "metric_status", "moving_l1",
    "pose_landmark_consistency", "pose_landmarks", "psnr", "ssim",
]
