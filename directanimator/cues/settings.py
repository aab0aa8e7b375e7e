"""``CueSettings``: how the driving-cue triplet is made, in one frozen object that every caller builds, passes,
saves (``cues.json``) and hashes (the trainers' cache keys).

The defaults are the paper's method, but for the location cue's alignment: ``"auto"`` is eqs. 9-10 while the whole
body is in the picture and aligns by the face when an image edge cuts it (``directanimator.cues.framing``);
``"paper"`` is eqs. 9-10 always. The other modes are the ablations of the paper's Table 3, built in one place
(``directanimator.cues.variants``): an RGB or skeleton pose cue instead of the low-passed grayscale one (S3, S5),
the face crop left in place instead of enlarged and centred (S2), and dropped cues (the face or location cue left
out, as the model's ``--drop-cues`` does in training).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from directanimator.errors import InputError

__all__ = ["ALIGNMENT_MODES", "CUE_SETTINGS_FIELDS", "CueSettings", "DROPPABLE_CUES", "FACE_CUE_MODES",
           "POSE_CUE_MODES", "add_ablation_arguments", "add_cue_arguments", "cue_settings_from_args"]

POSE_CUE_MODES = ("gray", "rgb", "skeleton", "openpose", "openpose_noisy")
FACE_CUE_MODES = ("centred", "in_place")
DROPPABLE_CUES = ("face", "location")
ALIGNMENT_MODES = ("auto", "paper")


@dataclass(frozen=True)
class CueSettings:
    """How the cues are made from the segmented, face-tracked driving video.

    Args:
        lowpass: pose-cue low-pass strength in [0, 1] (0 = off, 1 = strongest; 0.5: details under ~13 px go).
        face_enlarge: face crop side = ``face_enlarge`` x the face box's longer side, in [1, 4].
        grid: location-cue softening grid, cells along the longer side (0 = hard masks, the S7 ablation), 0..256.
        pose_cue: ``"gray"`` (the paper's: grayscale foreground, low-passed), ``"rgb"`` (S3: the raw colour
            foreground; ``lowpass`` unused), ``"skeleton"`` (S5's pose input: the thinned body mask) or
            ``"openpose"`` / ``"openpose_noisy"`` (an OpenPose-style skeleton video stored beside the driving
            video, clean / with estimator failures: ``directanimator.cues.skeleton_video``).
        face_cue: ``"centred"`` (the paper's: the face crop enlarged and centred) or ``"in_place"`` (S2: the same
            region left where it is).
        drop: cues left out of the model's input, a sorted tuple of ``"face"`` / ``"location"``.
        alignment: how the location cue's similarity transform is estimated (``directanimator.cues.framing``):
            ``"auto"`` (default: the paper's eqs. 9-10 when no person is cut by an image edge, else scale and
            anchor from the face boxes, or from the visible top of the body) or ``"paper"`` (eqs. 9-10 always).
    """

    lowpass: float = 0.5
    face_enlarge: float = 1.6
    grid: int = 16
    pose_cue: str = "gray"
    face_cue: str = "centred"
    drop: tuple[str, ...] = ()
    alignment: str = "auto"

    def __post_init__(self):
        lowpass, enlarge, grid = self.lowpass, self.face_enlarge, self.grid
        if isinstance(lowpass, bool) or not isinstance(lowpass, (int, float)) or not 0.0 <= float(lowpass) <= 1.0:
            raise InputError(f"low-pass strength must be between 0 and 1, got {lowpass}")
        if isinstance(enlarge, bool) or not isinstance(enlarge, (int, float)) or not 1.0 <= float(enlarge) <= 4.0:
            raise InputError(f"face enlarge factor must be between 1 and 4, got {enlarge}")
        if isinstance(grid, bool) or not isinstance(grid, (int, float)) or int(grid) != grid \
                or not 0 <= int(grid) <= 256:
            raise InputError(f"grid must be a whole number between 0 (off) and 256, got {grid}")
        face_cue = str(self.face_cue).replace("-", "_")
        if self.pose_cue not in POSE_CUE_MODES:
            raise InputError(f"pose cue must be one of {', '.join(POSE_CUE_MODES)}, got {self.pose_cue!r}")
        if face_cue not in FACE_CUE_MODES:
            raise InputError(f"face cue must be one of {', '.join(FACE_CUE_MODES)}, got {self.face_cue!r}")
        if self.alignment not in ALIGNMENT_MODES:
            raise InputError(f"alignment must be one of {', '.join(ALIGNMENT_MODES)}, got {self.alignment!r}")
        drop = (self.drop,) if isinstance(self.drop, str) else tuple(self.drop)
        bad = [d for d in drop if d not in DROPPABLE_CUES]
        if bad:
            raise InputError(f"cues that can be dropped are {', '.join(DROPPABLE_CUES)}, got {', '.join(bad)}")
        object.__setattr__(self, "lowpass", float(lowpass))
        object.__setattr__(self, "face_enlarge", float(enlarge))
        object.__setattr__(self, "grid", int(grid))
        object.__setattr__(self, "face_cue", face_cue)
        object.__setattr__(self, "drop", tuple(sorted(set(drop))))

    def replace(self, **changes) -> "CueSettings":
        """A copy with ``changes`` (``None`` values keep the current setting), checked again."""
        return dataclasses.replace(self, **{k: v for k, v in changes.items() if v is not None})

    def to_dict(self) -> dict:
        """The settings as ``cues.json`` and cache keys hold them. The ablation modes appear only when not the
        paper's default, so folders and caches made before they existed keep their meaning (and their keys).
        ``alignment`` is written whenever it is not ``"paper"``: the default ``"auto"`` is not what earlier folders
        and caches were made with, so their keys change for it, which is correct (a cut-off body aligns
        differently); ``"paper"`` writes nothing and keeps the old keys."""
        out = {"lowpass": self.lowpass, "face_enlarge": self.face_enlarge, "grid": self.grid}
        if self.pose_cue != "gray":
            out["pose_cue"] = self.pose_cue
        if self.face_cue != "centred":
            out["face_cue"] = self.face_cue
        if self.drop:
            out["drop"] = list(self.drop)
        if self.alignment != "paper":
            out["alignment"] = self.alignment
        return out

    @classmethod
    def from_dict(cls, values: dict) -> "CueSettings":
        """Read the settings back from a dict holding them (a cue folder's ``settings``; other keys ignored).

        A dict without ``alignment`` was written before the alignment modes existed, with eqs. 9-10: it reads as
        ``"paper"``, not as today's default."""
        given = {f: values[f] for f in CUE_SETTINGS_FIELDS if values.get(f) is not None}
        return cls(**{"alignment": "paper", **given})


CUE_SETTINGS_FIELDS = tuple(f.name for f in dataclasses.fields(CueSettings))


def add_cue_arguments(parser, ablations: bool = False):
    """Add the cue settings' flags to an ``argparse`` parser (their defaults are :class:`CueSettings`'s):
    ``--lowpass``, ``--face-enlarge``, ``--grid``, ``--alignment`` and, with ``ablations``, those of
    :func:`add_ablation_arguments`. :func:`cue_settings_from_args` reads them back. Returns the argument group."""
    d = CueSettings()
    g = parser.add_argument_group("cue settings")
    g.add_argument("--lowpass", type=float, default=d.lowpass,
                   help=f"pose-cue low-pass strength in [0, 1]: 0 = off, 1 = strongest (default {d.lowpass})")
    g.add_argument("--face-enlarge", type=float, default=d.face_enlarge,
                   help=f"face crop side as a multiple of the face box, in [1, 4] (default {d.face_enlarge})")
    g.add_argument("--grid", type=int, default=d.grid,
                   help=f"location-cue softening grid, cells along the long side; 0 = hard masks (default {d.grid})")
    g.add_argument("--alignment", default=d.alignment, choices=list(ALIGNMENT_MODES),
                   help="location-cue alignment: auto (default: the paper's body-height match when no person is cut "
                        "by an image edge, else the face boxes, or the visible top of the body, set the scale and "
                        "put the driving face on the reference face; for portraits and talking heads) or paper "
                        "(always the paper's eqs. 9-10: person box heights and centres)")
    if ablations:
        add_ablation_arguments(g)
    return g


def add_ablation_arguments(group) -> None:
    """The Table 3 ablation flags: ``--pose-cue``, ``--face-cue`` and ``--drop-cues`` (the trainers' and the
    reproduction's, on an argument group or parser)."""
    group.add_argument("--pose-cue", default="gray", choices=list(POSE_CUE_MODES),
                       help="pose cue: gray (the paper's: low-passed grayscale foreground), rgb (Table 3 S3: the raw "
                            "colour foreground) or skeleton (S5-like: the body mask thinned to lines; the paper's S5 "
                            "drops the other cues too: add --drop-cues face,location), openpose / openpose_noisy (an "
                            "OpenPose skeleton video beside each driving video, clean / with estimator failures; "
                            "`python -m trainers.synthetic --skeletons` writes them)")
    group.add_argument("--face-cue", default="centred", choices=["centred", "in-place"],
                       help="face cue: centred (the paper's: enlarged and centred) or in-place (S2: the same region "
                            "left where it is)")
    group.add_argument("--drop-cues", default="",
                       help=f"cues the model never sees, comma list of {', '.join(DROPPABLE_CUES)}: face (the face "
                            "cue and face mask), location (the body and face masks); generate with the same cues "
                            "left out (ablations; default none)")


def cue_settings_from_args(args) -> CueSettings:
    """The :class:`CueSettings` of flags added by :func:`add_cue_arguments` (``InputError`` for bad values)."""
    drop = [d.strip() for d in getattr(args, "drop_cues", "").split(",") if d.strip()]
    return CueSettings(lowpass=args.lowpass, face_enlarge=args.face_enlarge, grid=args.grid,
                       pose_cue=getattr(args, "pose_cue", "gray"), face_cue=getattr(args, "face_cue", "centred"),
                       drop=tuple(drop), alignment=getattr(args, "alignment", CueSettings.alignment))
