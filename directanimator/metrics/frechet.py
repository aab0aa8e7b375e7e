"""The maths of FID and FVD: the Fréchet distance between two Gaussians fitted to feature sets."""

from __future__ import annotations

import numpy as np

from ..errors import InputError

__all__ = ["feature_stats", "frechet_distance", "frechet_distance_from_stats"]


def _sqrtm_psd(m: np.ndarray) -> np.ndarray:
    vals, vecs = np.linalg.eigh((m + m.T) / 2)
    return (vecs * np.sqrt(np.clip(vals, 0, None))) @ vecs.T


def frechet_distance_from_stats(mu1, sigma1, mu2, sigma2) -> float:
    """Fréchet distance between Gaussians N(mu1, sigma1) and N(mu2, sigma2).

    ``|mu1 - mu2|^2 + tr(sigma1 + sigma2 - 2 (sigma1 sigma2)^(1/2))``. The trace term is computed as
    ``tr((sqrt(sigma1) sigma2 sqrt(sigma1))^(1/2))`` from symmetric eigendecompositions, which is stable for
    singular covariances (fewer samples than feature dimensions) and needs no scipy.

    Args:
        mu1: mean ``[D]`` of the first set.
        sigma1: covariance ``[D, D]`` of the first set.
        mu2: mean ``[D]`` of the second set.
        sigma2: covariance ``[D, D]`` of the second set.
    """
    mu1, mu2 = np.atleast_1d(np.asarray(mu1, np.float64)), np.atleast_1d(np.asarray(mu2, np.float64))
    s1, s2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    if mu1.shape != mu2.shape or s1.shape != s2.shape or s1.shape != (mu1.size, mu1.size):
        raise InputError(f"Fréchet statistics do not match: means {mu1.shape}/{mu2.shape}, covariances {s1.shape}/{s2.shape}")
    r1 = _sqrtm_psd(s1)
    inner = r1 @ s2 @ r1
    tr_covmean = np.sqrt(np.clip(np.linalg.eigvalsh((inner + inner.T) / 2), 0, None)).sum()
    diff = mu1 - mu2
    return float(max(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * tr_covmean, 0.0))


def feature_stats(feats) -> tuple[np.ndarray, np.ndarray]:
    """Mean and (unbiased, N-1) covariance of a feature set ``[N, D]`` with N >= 2."""
    f = np.asarray(feats, np.float64)
    if f.ndim != 2 or f.shape[0] < 2 or not np.isfinite(f).all():
        raise InputError(f"features must be a finite [N, D] array with N >= 2, got shape {f.shape}")
    return f.mean(0), np.cov(f, rowvar=False).reshape(f.shape[1], f.shape[1])


def frechet_distance(feats_a, feats_b) -> float:
    """Fréchet distance between two feature sets ``[N, D]`` and ``[M, D]`` (FID on Inception pool features, FVD on
    I3D logits). Each set is summarised by its mean and covariance; see ``frechet_distance_from_stats``."""
    return frechet_distance_from_stats(*feature_stats(feats_a), *feature_stats(feats_b))
