"""FIS and FTS (paper appendix A.4) on face embeddings: cosine similarities to the reference and between adjacent
frames. The embeddings come from ``directanimator.metrics.arcface``."""

from __future__ import annotations

import numpy as np

from ..errors import InputError

__all__ = ["face_identity_similarity", "face_temporal_similarity"]


def _unit_rows(emb, name: str) -> np.ndarray:
    e = np.asarray(emb, np.float64)
    if e.ndim == 1:
        e = e[None]
    if e.ndim != 2 or e.shape[0] == 0:
        raise InputError(f"{name} must be embeddings [T, D] (or one [D]), got shape {e.shape}")
    norms = np.linalg.norm(e, axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(norms > 0, e / norms, np.nan)


def face_identity_similarity(emb_gen, emb_ref) -> float:
    """FIS: mean cosine similarity between generated-frame face embeddings and the reference face embedding.

    Args:
        emb_gen: ``[T, D]`` embeddings of the generated frames (ArcFace in the paper); rows of NaN mark frames
            without a detected face and are skipped.
        emb_ref: ``[D]`` embedding of the reference image, or ``[T, D]`` for per-frame pairs.
    """
    g, r = _unit_rows(emb_gen, "emb_gen"), _unit_rows(emb_ref, "emb_ref")
    if g.shape[1] != r.shape[1] or r.shape[0] not in (1, g.shape[0]):
        raise InputError(f"emb_gen {g.shape} and emb_ref {r.shape} do not pair up")
    cos = (g * r).sum(1)
    cos = cos[np.isfinite(cos)]
    if cos.size == 0:
        raise InputError("FIS: no frame has a face embedding")
    return float(cos.mean())


def face_temporal_similarity(emb_gen) -> float:
    """FTS: mean cosine similarity between face embeddings of adjacent generated frames.

    Args:
        emb_gen: ``[T, D]`` embeddings, T >= 2; pairs touching a NaN row (no face) are skipped.
    """
    g = _unit_rows(emb_gen, "emb_gen")
    if g.shape[0] < 2:
        raise InputError("FTS needs at least 2 frames of embeddings")
    cos = (g[1:] * g[:-1]).sum(1)
    cos = cos[np.isfinite(cos)]
    if cos.size == 0:
        raise InputError("FTS: no two adjacent frames both have a face embedding")
    return float(cos.mean())
