"""Driving cues (paper section 3.1, appendix A.2): pose cue, face cue and location cue.

Work in progress: ``DrivingCues`` and ``extract_cues`` are filled in by the cues helper.
"""

__all__ = ["DrivingCues", "extract_cues", "rebuild_cues"]


def __getattr__(name):
    # Heavy imports (cv2, torch, safetensors) are deferred so that the backends in this package import cheaply.
    if name in ("DrivingCues", "extract_cues", "rebuild_cues"):
        from . import _cues

        return getattr(_cues, name)
    raise AttributeError(f"module 'directanimator.cues' has no attribute {name!r}")
