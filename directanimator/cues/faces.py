"""Deprecated alias of :mod:`directanimator.cues.face_detection` (renamed so that it is not confused with the face
cue, :mod:`directanimator.cues.face_cue`); kept for one release."""

import warnings

from .face_detection import *  # noqa: F401,F403
from .face_detection import __all__  # noqa: F401

warnings.warn("directanimator.cues.faces is now directanimator.cues.face_detection", DeprecationWarning, stacklevel=2)
