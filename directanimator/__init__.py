"""DirectAnimator: human image animation driven directly by the pixels of a driving video.

Public API (imported lazily so that ``import directanimator`` stays cheap):

- ``extract_cues(reference, driving, ...)`` -> ``DrivingCues``  (pose cue, face cue, location cue)
- ``CueFusionTransformer3DModel``  (CogVideoX transformer with CueFusion blocks)
- ``DirectAnimatorPipeline``  (a diffusers ``DiffusionPipeline``)
"""

import importlib

__version__ = "0.1.0"

_LAZY = {
    "InputError": "directanimator.errors",
    "DrivingCues": "directanimator.cues",
    "extract_cues": "directanimator.cues",
    "CueFusionTransformer3DModel": "directanimator.modeling",
    "DirectAnimatorPipeline": "directanimator.pipeline",
}

__all__ = list(_LAZY)


def __getattr__(name):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'directanimator' has no attribute {name!r}")
