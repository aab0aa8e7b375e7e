"""The training dataset format (a folder or a Hugging Face Hub dataset repo), its validation and its card.

A dataset is a folder, or a Hub dataset repo holding the same files::

    README.md          dataset card (YAML front matter) describing the schema
    metadata.jsonl     one JSON object per clip (the Hub's "folder" convention: file_name is relative to the folder)
    <any subfolders>/*.mp4|*.png

Each metadata line::

    {"file_name": "clips/000001.mp4",      # required: the clip (same-ID driving video = ground truth)
     "identity": "id_0003",                  # required: identity id of the person in the clip
     "caption": "a person dancing",          # optional
     "reference": "refs/000001.png",         # optional: reference image; default = a frame of the clip
     "split": "train",                       # optional: train | test (default train)
     "pseudo_driving": [                     # optional, needed by the Same2X stage
         {"file_name": "pseudo/000001_id_0007.mp4", "identity": "id_0007"}]}

``load_dataset(id_or_dir)`` resolves the source (local folder, or repo id through ``huggingface_hub``, which
honours ``HF_HUB_OFFLINE`` and an already-filled cache), then checks everything at once and raises ONE
``InputError`` listing every missing/unreadable file and every schema problem before any training starts.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from directanimator.errors import InputError
from directanimator.files import atomic_write_text

VIDEO_SUFFIXES = (".mp4", ".mov", ".webm", ".avi", ".gif", ".mkv")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
SPLITS = ("train", "test")
_KNOWN_KEYS = {"file_name", "identity", "caption", "reference", "split", "pseudo_driving"}
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*/[\w.\-]+$")
UNFINISHED_MARKER = "PREPARING"
"""A file that ``python -m trainers.prepare`` keeps in a dataset folder while it is being made: a folder holding
it is refused until the run that made it is finished (rerun the same command)."""


@dataclass
class PseudoDriving:
    """A pseudo cross-ID driving video: another identity performing the clip's motion.

    Args:
        file_name: path relative to the dataset folder.
        identity: identity id of the person shown in the pseudo video.
        path: absolute path (filled in by the loader).
    """

    file_name: str
    identity: str
    path: Path | None = None


@dataclass
class Clip:
    """One training clip of a dataset.

    Args:
        index: line number in metadata.jsonl (0-based); a stable sample id within one dataset.
        file_name: the clip, relative to the dataset folder.
        identity: identity id of the person in the clip.
        caption: text prompt ("" when absent).
        reference: reference image relative to the folder, or None (use a frame of the clip).
        split: "train" or "test".
        pseudo_driving: pseudo cross-ID driving videos for the Same2X stage.
        path / reference_path: absolute paths (filled in by the loader).
    """

    index: int
    file_name: str
    identity: str
    caption: str = ""
    reference: str | None = None
    split: str = "train"
    pseudo_driving: list[PseudoDriving] = field(default_factory=list)
    path: Path | None = None
    reference_path: Path | None = None


@dataclass
class VideoDataset:
    """A validated dataset: its folder and its clips in metadata order.

    Args:
        root: the local folder (a Hub snapshot folder for repo ids).
        clips: every clip of metadata.jsonl.
        source: what the user passed (folder or repo id), for messages and run metadata.
    """

    root: Path
    clips: list[Clip]
    source: str = ""

    def split(self, name: str) -> list[Clip]:
        """The clips of one split ("train" or "test")."""
        return [c for c in self.clips if c.split == name]


def _is_repo_id(text: str) -> bool:
    return bool(_REPO_ID.match(text)) and not text.startswith((".", "/"))


def resolve_dataset(id_or_dir: str | os.PathLike, revision: str | None = None, cache_dir: str | None = None) -> Path:
    """Return the local folder of a dataset given as a folder or a Hub dataset repo id.

    Args:
        id_or_dir: an existing folder, or ``"org/name"`` of a Hub dataset repo.
        revision: branch, tag or commit of the repo (default: main).
        cache_dir: HF cache folder (default: ``HF_HUB_CACHE`` / ``~/.cache/huggingface/hub``).

    Repo ids go through ``huggingface_hub.snapshot_download(repo_type="dataset")``: with ``HF_HUB_OFFLINE=1`` or
    no network it uses the files already in the cache and never touches the network.
    """
    text = os.fspath(id_or_dir)
    local = Path(text).expanduser()
    if local.is_dir():
        return local.resolve()
    if not _is_repo_id(text):
        raise InputError(
            f"dataset {text!r} is neither an existing folder nor a Hub repo id like 'org/name'; "
            "pass a dataset folder or a Hub dataset repo id"
        )
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import (
        GatedRepoError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    try:
        folder = snapshot_download(text, repo_type="dataset", revision=revision, cache_dir=cache_dir)
    except GatedRepoError as exc:
        raise InputError(f"Hub dataset {text!r} is gated: accept its terms on the Hub and log in (hf auth login)") from exc
    except RepositoryNotFoundError as exc:
        raise InputError(f"Hub dataset {text!r} was not found (or is private) and there is no folder of that name: "
                         "check the path or the repo id, or log in") from exc
    except RevisionNotFoundError as exc:
        raise InputError(f"Hub dataset {text!r} has no revision {revision!r}: check --hub-revision") from exc
    except LocalEntryNotFoundError as exc:
        raise InputError(
            f"Hub dataset {text!r} is not in the local HF cache and cannot be fetched (offline or no network), and "
            f"there is no folder of that name; check the path, or download it first with `hf download --repo-type "
            f"dataset {text}` or unset HF_HUB_OFFLINE"
        ) from exc
    except OSError as exc:  # network failures surface as OSError subclasses in huggingface_hub
        raise InputError(f"could not fetch Hub dataset {text!r}: {exc}") from exc
    return Path(folder)


def _check_readable_video(path: Path) -> str | None:
    """Open the container and decode one frame; return a problem description or None."""
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                return "has no video stream"
            for _ in container.decode(video=0):
                return None
            return "has no decodable frame"
    except Exception as exc:  # any decoder failure means the file cannot be trained on
        return f"cannot be decoded ({type(exc).__name__})"


def _check_readable_image(path: Path) -> str | None:
    from PIL import Image

    try:
        with Image.open(path) as img:
            img.verify()
        return None
    except Exception as exc:
        return f"cannot be read as an image ({type(exc).__name__})"


def _check_file(root: Path, rel, where: str, kinds: tuple, check_readable: bool, problems: list) -> Path | None:
    if not isinstance(rel, str) or not rel:
        problems.append(f"{where}: must be a non-empty relative path string")
        return None
    rel_path = Path(rel)
    if rel_path.is_absolute() or ".." in rel_path.parts:
        problems.append(f"{where}: {rel!r} must be relative to the dataset folder (no absolute path, no '..')")
        return None
    if rel_path.suffix.lower() not in kinds:
        problems.append(f"{where}: {rel!r} has unsupported extension (expected one of {', '.join(kinds)})")
        return None
    path = root / rel_path
    if not path.is_file():
        problems.append(f"{where}: missing file {rel!r}")
        return None
    if check_readable:
        check = _check_readable_video if kinds == VIDEO_SUFFIXES else _check_readable_image
        problem = check(path)
        if problem:
            problems.append(f"{where}: {rel!r} {problem}")
            return None
    return path


def _parse_line(root: Path, number: int, raw: str, check_readable: bool, problems: list) -> Clip | None:
    where = f"metadata.jsonl line {number + 1}"
    try:
        row = json.loads(raw)
    except json.JSONDecodeError as exc:
        problems.append(f"{where}: not valid JSON ({exc.msg})")
        return None
    if not isinstance(row, dict):
        problems.append(f"{where}: must be a JSON object")
        return None
    unknown = sorted(set(row) - _KNOWN_KEYS)
    if unknown:
        problems.append(f"{where}: unknown keys {unknown} (allowed: {sorted(_KNOWN_KEYS)})")
    for key in ("file_name", "identity"):
        if key not in row:
            problems.append(f"{where}: required key {key!r} is missing")
    identity = row.get("identity")
    if "identity" in row and (not isinstance(identity, str) or not identity):
        problems.append(f"{where}: 'identity' must be a non-empty string")
    caption = row.get("caption", "")
    if caption is None:
        caption = ""
    if not isinstance(caption, str):
        problems.append(f"{where}: 'caption' must be a string")
    split = row.get("split", "train")
    if split not in SPLITS:
        problems.append(f"{where}: 'split' must be one of {list(SPLITS)}, got {split!r}")
    path = None
    if "file_name" in row:
        path = _check_file(root, row["file_name"], f"{where} file_name", VIDEO_SUFFIXES, check_readable, problems)
    reference, reference_path = row.get("reference"), None
    if reference is not None:
        reference_path = _check_file(root, reference, f"{where} reference", IMAGE_SUFFIXES, check_readable, problems)
    pseudo = []
    raw_pseudo = row.get("pseudo_driving", [])
    if raw_pseudo is None:
        raw_pseudo = []
    if not isinstance(raw_pseudo, list):
        problems.append(f"{where}: 'pseudo_driving' must be a list of {{file_name, identity}} objects")
        raw_pseudo = []
    for j, item in enumerate(raw_pseudo):
        pwhere = f"{where} pseudo_driving[{j}]"
        if not isinstance(item, dict) or "file_name" not in item or "identity" not in item:
            problems.append(f"{pwhere}: must be an object with 'file_name' and 'identity'")
            continue
        ppath = _check_file(root, item["file_name"], pwhere, VIDEO_SUFFIXES, check_readable, problems)
        if not isinstance(item["identity"], str) or not item["identity"]:
            problems.append(f"{pwhere}: 'identity' must be a non-empty string")
        pseudo.append(PseudoDriving(str(item["file_name"]), str(item["identity"]), ppath))
    if not isinstance(row.get("file_name"), str) or not isinstance(identity, str):
        return None
    return Clip(
        index=number,
        file_name=row["file_name"],
        identity=identity,
        caption=caption if isinstance(caption, str) else "",
        reference=reference if isinstance(reference, str) else None,
        split=split if split in SPLITS else "train",
        pseudo_driving=pseudo,
        path=path,
        reference_path=reference_path,
    )


def validate_dataset(
    root: str | os.PathLike, require_pseudo: bool = False, check_readable: bool = True, source: str = ""
) -> VideoDataset:
    """Parse and check a dataset folder; raise ONE InputError that lists every problem found.

    Args:
        root: the dataset folder.
        require_pseudo: the Same2X stage needs at least one train clip with ``pseudo_driving`` entries.
        check_readable: also open every clip/image (decode one frame) to catch corrupt files up front.
        source: how the user named the dataset (for the error message).
    """
    root = Path(root)
    name = source or str(root)
    problems: list[str] = []
    meta = root / "metadata.jsonl"
    if (root / UNFINISHED_MARKER).exists():
        raise InputError(
            f"dataset {name!r} is unfinished: `python -m trainers.prepare` is still making it or was interrupted "
            f"({UNFINISHED_MARKER} is there); rerun the same trainers.prepare command to finish it"
        )
    if not meta.is_file():
        raise InputError(
            f"dataset {name!r} has no metadata.jsonl; see the dataset format in the README (trainers/dataset.py)"
        )
    clips = []
    seen = {}
    try:
        raw_lines = meta.read_bytes().splitlines()
    except OSError as exc:
        raise InputError(f"dataset {name!r}: metadata.jsonl cannot be read ({exc.strerror or exc}); check the file "
                         "and its permissions") from None
    for number, raw_bytes in enumerate(raw_lines):
        try:
            raw = raw_bytes.decode("utf-8")
        except UnicodeDecodeError:
            problems.append(f"metadata.jsonl line {number + 1}: not UTF-8 text (save the file as UTF-8)")
            continue
        if not raw.strip():
            continue
        clip = _parse_line(root, number, raw, check_readable, problems)
        if clip is None:
            continue
        if clip.file_name in seen:
            problems.append(
                f"metadata.jsonl line {number + 1}: file_name {clip.file_name!r} repeats line {seen[clip.file_name] + 1}"
            )
        seen[clip.file_name] = number
        clips.append(clip)
    if not clips and not problems:
        problems.append("metadata.jsonl has no clips")
    if clips and not any(c.split == "train" for c in clips):
        problems.append("no clip has split 'train'")
    if require_pseudo and clips and not any(c.pseudo_driving for c in clips if c.split == "train"):
        problems.append(
            "no train clip has 'pseudo_driving' entries, which the Same2X stage needs; make them with "
            "`python -m trainers.pseudo`"
        )
    if len(problems) == 1:
        raise InputError(f"dataset {name!r}: {problems[0]}; fix it and rerun")
    if problems:
        listing = "\n".join(f"  - {p}" for p in problems)
        raise InputError(f"dataset {name!r} has {len(problems)} problem(s); fix them and rerun:\n{listing}")
    return VideoDataset(root=root, clips=clips, source=name)


def load_dataset(
    id_or_dir: str | os.PathLike,
    require_pseudo: bool = False,
    check_readable: bool = True,
    revision: str | None = None,
    cache_dir: str | None = None,
) -> VideoDataset:
    """Resolve (folder or Hub repo id) and validate a dataset. See ``resolve_dataset`` and ``validate_dataset``."""
    root = resolve_dataset(id_or_dir, revision=revision, cache_dir=cache_dir)
    return validate_dataset(root, require_pseudo=require_pseudo, check_readable=check_readable, source=str(id_or_dir))


def clip_to_row(clip: Clip) -> dict:
    """The metadata.jsonl object of a clip (optional keys only when set)."""
    row = {"file_name": clip.file_name, "identity": clip.identity}
    if clip.caption:
        row["caption"] = clip.caption
    if clip.reference:
        row["reference"] = clip.reference
    if clip.split != "train":
        row["split"] = clip.split
    if clip.pseudo_driving:
        row["pseudo_driving"] = [{"file_name": p.file_name, "identity": p.identity} for p in clip.pseudo_driving]
    return row


def write_metadata(directory: str | os.PathLike, rows: list[dict]) -> Path:
    """Write ``metadata.jsonl`` atomically (one JSON object per line, in order)."""
    path = Path(directory) / "metadata.jsonl"
    atomic_write_text(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows))
    return path


def write_dataset_card(
    directory: str | os.PathLike,
    pretty_name: str = "DirectAnimator training clips",
    description: str = "",
    license: str = "other",
    num_clips: int | None = None,
    num_identities: int | None = None,
    num_pseudo: int | None = None,
    tags: list[str] | None = None,
    extra_sections: str = "",
) -> Path:
    """Write the dataset card ``README.md`` (YAML front matter + schema description) atomically.

    Args:
        directory: the dataset folder.
        pretty_name: title shown on the Hub.
        description: a paragraph on where the clips come from.
        license: a Hub licence id (e.g. "cc-by-4.0"), "other" when the clips carry their own terms.
        num_clips / num_identities / num_pseudo: counts shown in the card (computed from metadata.jsonl when None).
        tags: extra Hub tags.
        extra_sections: Markdown appended at the end (e.g. how a synthetic set was generated).
    """
    directory = Path(directory)
    meta = directory / "metadata.jsonl"
    if meta.is_file() and (num_clips is None or num_identities is None or num_pseudo is None):
        rows = [json.loads(line) for line in meta.read_text(encoding="utf-8").splitlines() if line.strip()]
        num_clips = len(rows) if num_clips is None else num_clips
        num_identities = len({r.get("identity") for r in rows}) if num_identities is None else num_identities
        num_pseudo = sum(len(r.get("pseudo_driving") or []) for r in rows) if num_pseudo is None else num_pseudo
    n = num_clips or 0
    size = "n<1K" if n < 1000 else "1K<n<10K" if n < 10000 else "10K<n<100K" if n < 100000 else "n>100K"
    all_tags = ["directanimator", "human-image-animation", "video"] + list(tags or [])
    front = [
        "---",
        f"pretty_name: {json.dumps(pretty_name)}",
        f"license: {license}",
        "task_categories:",
        "- image-to-video",
        "tags:",
        *[f"- {t}" for t in all_tags],
        "size_categories:",
        f"- {size}",
        "---",
    ]
    body = f"""
# {pretty_name}

{description}

| clips | identities | pseudo driving videos |
|---|---|---|
| {num_clips if num_clips is not None else "?"} | {num_identities if num_identities is not None else "?"} | {num_pseudo if num_pseudo is not None else "?"} |

## Format (DirectAnimator training dataset)

Video clips plus a `metadata.jsonl` in the Hub's folder convention (`file_name` is relative to this folder).
One JSON object per clip:

| key | required | meaning |
|---|---|---|
| `file_name` | yes | the clip (mp4); in the same-ID stage it is both the driving video and the ground truth |
| `identity` | yes | identity id of the person in the clip |
| `caption` | no | text prompt |
| `reference` | no | reference image (png/jpg); default: a frame of the clip |
| `split` | no | `train` or `test` (default `train`) |
| `pseudo_driving` | no | list of `{{"file_name", "identity"}}`: other identities performing this clip's motion (Same2X stage) |

Train with `python -m trainers.same_id --hub-dataset <this repo or folder> ...`, then
`python -m trainers.same2x --hub-dataset ...` (the Same2X stage needs `pseudo_driving` entries, made with
`python -m trainers.pseudo`).
"""
    path = directory / "README.md"
    atomic_write_text(path, "\n".join(front) + "\n" + body + (("\n" + extra_sections.strip() + "\n") if extra_sections else ""))
    return path
