"""Driving cues (paper section 3.1, appendix A.2): the pose, face and location cues of a driving video.

``extract_cues(reference, driving)`` segments the person in every driving frame and in the reference, finds the
face in every driving frame, and builds

- the **pose cue**: grayscale foreground, frequency low-passed (``pose.py``); frames with a bad mask are zero;
- the **face cue**: the face cropped square, enlarged and centred (``face_cue.py``); frames where the segmenter's
  landmarks show the person from behind (``Segmentation.facing`` < ``MIN_FACING``) are not searched for a face,
  since face detectors take the back of a head for one; they get a zero face frame and the no-face flag;
- the **location cue**: body and face masks of the driving frames aligned to the reference person with one
  similarity transform, the body mask softened on a coarse grid (``location.py``).

Everything lives at one working size that follows the reference image's aspect (``video.working_size``); the
driving frames are fitted into it with the ``pad`` policy (scaled to fit, centred, black bars).

How they are made is one frozen :class:`CueSettings` (``settings.py``); ``variants.cue_inputs`` builds the model's
cue inputs for its ablation modes. ``DrivingCues`` and its folder format live in ``driving_cues.py``, extraction in
``extract.py``.

``extract_cues_to_folder(reference, driving_path, out)`` (``stream.py``) does the same for clips too long for
memory: chunk by chunk, straight into a cue folder, whose per-frame arrays are compact video streams decoded lazily
(``storage.py``); the cue CLI uses it for clips over 300 frames.

``rebuild_cues(cues, ...)`` recomputes the three cues from the stored frames, masks and face boxes with changed
settings or user edits, without segmenting again (the app's live controls use it).
"""

from .driving_cues import DrivingCues, quantize_mask
from .extract import extract_cues, rebuild_cues
from .location import SimilarityTransform
from .settings import CueSettings
from .stream import extract_cues_to_folder
from .variants import cue_inputs

__all__ = ["CueSettings", "DrivingCues", "SimilarityTransform", "cue_inputs", "extract_cues", "extract_cues_to_folder",
           "quantize_mask", "rebuild_cues"]
