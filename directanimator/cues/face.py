"""Deprecated alias of :mod:`directanimator.cues.face_cue` (renamed so that it is not confused with face detection,
:mod:`directanimator.cues.faces`); kept for one release."""

import warnings

from .face_cue import *  # noqa: F401,F403
from .face_cue import __all__  # noqa: F401

warnings.warn("directanimator.cues.face is now directanimator.cues.face_cue", DeprecationWarning, stacklevel=2)
