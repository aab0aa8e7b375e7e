"""Precompute cache: driving cues, VAE latents and text embeddings per training sample, as safetensors.

Cue extraction (the same ``directanimator.cues.extract_cues`` the app runs), VAE encoding and text encoding are
expensive and do not change during training, so they run once before the loop. Each entry is one safetensors file
named by a hash of everything that produced it (the bytes of the clip / reference / pseudo video, the cue and size
settings, and a fingerprint of the VAE and text encoder), so a changed setting or model never reuses a stale entry,
and entries from different runs or stages share one cache folder safely.

Resumable: existing entries are skipped; each entry is written to a temp file, flushed to disk and renamed, so a run
killed half-way leaves only a temp file that nothing reads, and an entry that is damaged anyway (cut short or
overwritten by something else: its safetensors header no longer covers the file, or tensors are missing) is
found and computed again. With several processes (``accelerate launch``) the samples are split by rank and every
rank then reads the full index.

Same-ID entry (``kind="sample"``) tensors, all on the latent grid of F latent frames and (h, w):
    latents [F,C,h,w] (target clip), image_latents [1,C,h,w] (reference), pose_latents [F,C,h,w],
    face_latents [F,C,h,w], body_mask [F,1,h,w], face_mask [F,1,h,w], prompt_embeds [L,D].
Pseudo entry (``kind="pseudo"``, Same2X): pose_latents and face_latents of a pseudo cross-ID driving video, with the
A.2 synthetic scale/shift misalignment applied to its pose cue; the location masks stay the clip's own (aligned).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from directanimator.cues import extract_cues
from directanimator.cues.faces import get_face_detector
from directanimator.cues.segment import get_segmenter
from directanimator.cues.settings import CueSettings
from directanimator.cues.skeleton_video import SKELETON_VIDEO_MODES, read_skeleton_cue, skeleton_video_path
from directanimator.cues.variants import face_frames, pose_frames
from directanimator.errors import InputError
from directanimator.files import atomic_path, atomic_write_text
from directanimator.latents import (
    check_frame_count,
    encode_image_latents,
    vae_compression,
)
from directanimator.latents import encode_video as _encode
from directanimator.latents import masks_to_latent_grid as _grid
from directanimator.video import read_image, read_video

logger = logging.getLogger(__name__)

CACHE_VERSION = 1
# the tensors of each kind of entry (the loop reads all of them)
ENTRY_TENSORS = {
    "sample": ("latents", "image_latents", "pose_latents", "face_latents", "body_mask", "face_mask", "prompt_embeds"),
    "pseudo": ("pose_latents", "face_latents"),
}


@dataclass
class PrecomputeSettings:
    """Everything that changes a cache entry besides the files and the models.

    Args:
        num_frames: frames per training clip, 4k+1 (49: CogVideoX's length; 81: CogVideoX1.5's).
        long_side: working resolution long side (the short side follows the clip's aspect, multiple of 16);
            clips of different aspect land in different buckets.
        fps: resample clips to this frame rate before taking ``num_frames`` (None: keep the clip's rate).
        segmenter / face_detector: cue backends by name (see ``directanimator.cues``).
        lowpass / face_enlarge / grid: cue settings, as in the app.
        reference_frame: which clip frame is the reference when the metadata gives none ("first" | "middle").
        misalign_scale / misalign_shift: A.2 synthetic misalignment of pseudo pose cues: a random isotropic scale in
            [1-s, 1+s] about the frame centre and a shift of up to this fraction of the frame size.
        max_text_length: T5 tokens (CogVideoX: 226).
        storage_dtype: dtype of cached tensors ("bfloat16" halves the cache, "float32" exact).
        pose_mode: "gray" (the paper's pose cue: grayscale foreground, low-passed), "rgb" (the Table 3 S3
            ablation: the raw colour foreground, ``directanimator.cues.pose.rgb_pose_cue``; ``lowpass`` unused) or
            "skeleton" (the S5 ablation's pose input: the thinned body mask, ``skeleton_pose_cue``) or
            "openpose" / "openpose_noisy" (the skeleton video beside each driving video,
            ``directanimator.cues.skeleton_video``; its bytes enter the cache key).
            Part of the cache key only when not "gray", so existing caches stay valid.
        face_mode: "centred" (the paper's face cue: the face crop enlarged and centred) or "in_place" (the S2
            ablation: the same region left where it is, ``directanimator.cues.face_cue.in_place_face_cue``).
            Part of the cache key only when not "centred".
        alignment: location-cue alignment, "auto" (default: framing-robust, ``directanimator.cues.framing``) or
            "paper" (eqs. 9-10). Part of the cache key unless "paper": entries made before the modes existed were
            made with eqs. 9-10, so the new default gets new keys (correct: a cut-off body aligns differently).
    """

    num_frames: int = 49
    long_side: int = 512
    fps: float | None = None
    segmenter: str = "mediapipe"
    face_detector: str = "mediapipe"
    lowpass: float = CueSettings.lowpass
    face_enlarge: float = CueSettings.face_enlarge
    grid: int = CueSettings.grid
    reference_frame: str = "first"
    misalign_scale: float = 0.15
    misalign_shift: float = 0.1
    max_text_length: int = 226
    storage_dtype: str = "bfloat16"
    pose_mode: str = "gray"
    face_mode: str = "centred"
    alignment: str = CueSettings.alignment

    def key_dict(self) -> dict:
        """The settings as they enter cache keys (``pose_mode`` / ``face_mode`` only when not the default,
        ``alignment`` unless "paper")."""
        s = asdict(self)
        if s["alignment"] == "paper":
            s.pop("alignment")
        if s["pose_mode"] == "gray":
            s.pop("pose_mode")
        if s["face_mode"] == "centred":
            s.pop("face_mode")
        return s

    @property
    def cue_settings(self) -> CueSettings:
        """The cue settings these settings train on (``directanimator.cues.variants`` builds their frames)."""
        return CueSettings(lowpass=self.lowpass, face_enlarge=self.face_enlarge, grid=self.grid,
                           pose_cue=self.pose_mode, face_cue=self.face_mode, alignment=self.alignment)

    def pose_frames(self, cues, driving_path=None) -> np.ndarray:
        """The pose cue video these settings train on (the extracted one, or an ablation's; the skeleton-video
        modes read the skeleton video beside ``driving_path``, fitted like the driving frames)."""
        skeleton = None
        if self.pose_mode in SKELETON_VIDEO_MODES:
            skeleton = read_skeleton_cue(driving_path, self.pose_mode, cues.height, cues.width,
                                         num_frames=self.num_frames, fps=self.fps)
        return pose_frames(cues, self.cue_settings, skeleton)

    def face_frames(self, cues) -> np.ndarray:
        """The face cue video these settings train on (the extracted, centred one, or the in-place ablation)."""
        return face_frames(cues, self.cue_settings)

    def cue_kwargs(self) -> dict:
        """Keyword arguments of ``extract_cues`` that these settings fix."""
        return dict(settings=self.cue_settings, segmenter=self.segmenter, face_detector=self.face_detector)


@dataclass
class CacheEntry:
    """Where one precomputed sample lives and what it is.

    Args:
        clip_index: the clip's index in the dataset.
        path: the safetensors file of the same-ID sample.
        bucket: (num_frames, height, width) of the working video (the sampler groups by it).
        pseudo_paths: safetensors files of the clip's pseudo driving cues (Same2X), possibly empty.
    """

    clip_index: int
    path: Path
    bucket: tuple[int, int, int]
    pseudo_paths: list[Path]


def file_digest(path: str | os.PathLike | None, chunk: int = 1 << 22) -> str:
    """SHA-256 of a file's bytes ("" for None)."""
    if path is None:
        return ""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            h.update(block)
    return h.hexdigest()


def model_fingerprint(module: torch.nn.Module | None, config: dict | None = None) -> str:
    """A cheap fingerprint of a model: its config plus a strided sample of every parameter's values.

    Hashing all weights of a 5B text encoder would take minutes; a few values per tensor change whenever the
    weights do (any fine-tune or a different checkpoint), which is what the cache key needs.
    """
    if module is None:
        return ""
    h = hashlib.sha256()
    cfg = config if config is not None else getattr(module, "config", {})
    cfg = cfg.to_dict() if hasattr(cfg, "to_dict") else dict(cfg)
    # private keys (_name_or_path, _diffusers_version, ...) and library versions say where a model was loaded
    # from, not what it computes
    cfg = {k: v for k, v in cfg.items() if not k.startswith("_") and k != "transformers_version"}
    h.update(json.dumps(cfg, sort_keys=True, default=str).encode())
    with torch.no_grad():
        for name, tensor in module.state_dict().items():
            flat = tensor.detach().reshape(-1)
            step = max(1, flat.numel() // 64)
            sample = flat[::step][:64].float().cpu().numpy()
            h.update(name.encode())
            h.update(str(tuple(tensor.shape)).encode())
            h.update(sample.tobytes())
    return h.hexdigest()


def entry_key(*parts) -> str:
    """A cache key: SHA-256 of the JSON of its parts (first 32 hex digits)."""
    text = json.dumps([CACHE_VERSION, *parts], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def check_num_frames(num_frames: int, temporal_compression: int = 4) -> None:
    """Raise InputError unless ``num_frames`` is 4k+1 (the CogVideoX VAE's rule). An odd latent count under
    CogVideoX1.5 (``patch_size_t=2``) is padded in the loop exactly as the pipeline pads it."""
    check_frame_count(num_frames, temporal_compression, what="--num-frames")


# ------------------------------------------------------------------------------------------------ encoding
# The conversions are directanimator.latents' (shared with the pipeline), so training and inference see the
# same latents, image latent scaling and mask grid.

def encode_video(vae, frames: np.ndarray) -> torch.Tensor:
    """VAE latents [F,C,h,w] of a uint8 video [T,H,W,3] (or grayscale [T,H,W]); posterior mode, scaled."""
    return _encode(vae, frames, sample=False)[0]


def encode_reference(vae, image: np.ndarray) -> torch.Tensor:
    """The CogVideoX I2V reference latent [1,C,h,w] (posterior mode, the pipeline's scaling)."""
    return encode_image_latents(vae, image, sample=False)[0]


def masks_to_latent_grid(masks: np.ndarray, vae=None) -> torch.Tensor:
    """Location masks [T,H,W] -> [F,1,h,w] on ``vae``'s latent grid (its spatial and temporal compression, as the
    pipeline computes them; CogVideoX's 8x and 4x without a VAE)."""
    if vae is None:
        return _grid(masks)
    return _grid(masks, *vae_compression(vae.config))


@torch.no_grad()
def encode_prompt(tokenizer, text_encoder, prompt: str, max_length: int = 226) -> torch.Tensor:
    """T5 embeddings [L, D] of one prompt, padded to ``max_length`` as CogVideoX pipelines do."""
    ids = tokenizer(prompt, padding="max_length", max_length=max_length, truncation=True,
                    add_special_tokens=True, return_tensors="pt").input_ids
    return text_encoder(ids.to(text_encoder.device))[0][0]


def misalign_frames(frames: np.ndarray, scale: float, shift_xy: tuple[float, float]) -> np.ndarray:
    """Scale frames [T,H,W(,C)] about the centre by ``scale`` and move them by ``shift_xy`` pixels (A.2 synthetic
    misalignment); uncovered pixels are 0 (background)."""
    h, w = frames.shape[1:3]
    cx, cy = (w - 1) / 2.0, (h - 1) / 2.0
    matrix = np.array([[scale, 0, cx - scale * cx + shift_xy[0]], [0, scale, cy - scale * cy + shift_xy[1]]],
                      dtype=np.float64)
    out = [cv2.warpAffine(f, matrix, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
           for f in frames]
    return np.stack(out).astype(frames.dtype)


def random_misalignment(key: str, height: int, width: int, max_scale: float, max_shift: float):
    """The (scale, (dx, dy)) of a pseudo entry, drawn from a generator seeded by its key (reproducible)."""
    rng = np.random.default_rng(int(key[:16], 16))
    scale = float(rng.uniform(1 - max_scale, 1 + max_scale))
    dx = float(rng.uniform(-max_shift, max_shift) * width)
    dy = float(rng.uniform(-max_shift, max_shift) * height)
    return scale, (dx, dy)


# ------------------------------------------------------------------------------------------------ the cache

def _atomic_save(tensors: dict, path: Path, metadata: dict) -> None:
    """Write one cache entry (safetensors, JSON metadata) atomically (``directanimator.files``)."""
    with atomic_path(path) as tmp:
        save_file({k: v.contiguous() for k, v in tensors.items()}, str(tmp),
                  metadata={k: json.dumps(v) for k, v in metadata.items()})


def read_metadata(path: str | os.PathLike) -> dict:
    """The JSON metadata stored in a cache entry's header (no tensor is read)."""
    with safe_open(str(path), framework="pt") as fh:
        return {k: json.loads(v) for k, v in (fh.metadata() or {}).items()}


def entry_problem(path: str | os.PathLike, kind: str) -> str | None:
    """Why the cache entry at ``path`` cannot be used ("missing", "damaged (...)", "incomplete (...)"), or None.

    Reads only the header: safetensors refuses a file its header does not exactly cover (cut short, or extended),
    and the entry must hold every tensor of its ``kind`` ("sample" or "pseudo", ``ENTRY_TENSORS``) and its bucket.
    """
    if not os.path.isfile(path):
        return "missing"
    try:
        with safe_open(str(path), framework="pt") as fh:
            keys = set(fh.keys())
            meta = {k: json.loads(v) for k, v in (fh.metadata() or {}).items()}
    except Exception as exc:  # SafetensorError, a bad JSON value, an unreadable file: all mean "compute it again"
        return f"damaged ({' '.join(str(exc).split())[:120]})"
    missing = [k for k in ENTRY_TENSORS[kind] if k not in keys] + [k for k in ("kind", "bucket") if k not in meta]
    if missing:
        return f"incomplete (no {', '.join(missing)})"
    if meta["kind"] != kind:
        return f"damaged (a {meta['kind']!r} entry where a {kind!r} one belongs)"
    return None


def load_entry(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """All tensors of a cache entry (safetensors, CPU)."""
    return load_file(str(path))


def _reference_for(clip, settings: PrecomputeSettings):
    """The reference image (array) of a clip: its own reference file, else a frame of the clip."""
    if clip.reference_path is not None:
        return read_image(str(clip.reference_path))
    video = read_video(str(clip.path))
    index = 0 if settings.reference_frame == "first" else len(video.frames) // 2
    return video.frames[index]


def _extract(reference, driving_path, settings: PrecomputeSettings, backends=None):
    """The app's cue extraction; the working size follows the reference's aspect (long side ``long_side``).

    ``backends``: (segmenter, face detector) objects to reuse across clips (model loading is most of the cost
    of a short clip); by default they are made from the names in ``settings``.
    """
    kwargs = settings.cue_kwargs()
    if backends is not None:
        kwargs["segmenter"], kwargs["face_detector"] = backends
    # shot="all": a training clip's cue frames must stay aligned with its ground-truth frames (the dataset tool
    # is where clips with cuts are split or left out).
    return extract_cues(reference, str(driving_path), size=settings.long_side, fps=settings.fps,
                        num_frames=settings.num_frames, shot="all", **kwargs)


def _storage(t: torch.Tensor, settings: PrecomputeSettings) -> torch.Tensor:
    return t.detach().to("cpu", getattr(torch, settings.storage_dtype))


class Precomputer:
    """Computes and finds cache entries for a dataset with one set of models and settings.

    Args:
        cache_dir: the cache folder (shared between runs and stages; entries never collide).
        settings: ``PrecomputeSettings``.
        vae: ``AutoencoderKLCogVideoX`` (on the device that should encode).
        tokenizer / text_encoder: the T5 tokenizer and encoder of the pipeline.
    """

    def __init__(self, cache_dir, settings: PrecomputeSettings, vae, tokenizer, text_encoder):
        self.cache_dir = Path(cache_dir)
        self.settings = settings
        self.vae = vae
        self.tokenizer = tokenizer
        self.text_encoder = text_encoder
        check_num_frames(settings.num_frames, getattr(vae.config, "temporal_compression_ratio", 4))
        self.models = [model_fingerprint(vae), model_fingerprint(text_encoder),
                       getattr(tokenizer, "name_or_path", type(tokenizer).__name__)]
        self._digests: dict[str, str] = {}
        self._backends = None

    def backends(self):
        """The (segmenter, face detector) pair, made once and reused for every clip."""
        if self._backends is None:
            self._backends = (get_segmenter(self.settings.segmenter), get_face_detector(self.settings.face_detector))
        return self._backends

    def _digest(self, path) -> str:
        if path is None:
            return ""
        key = str(path)
        if key not in self._digests:
            self._digests[key] = file_digest(path)
        return self._digests[key]

    def sample_key(self, clip) -> str:
        """Cache key of a clip's same-ID entry."""
        s = self.settings.key_dict()
        for k in ("misalign_scale", "misalign_shift"):  # only pseudo entries depend on these
            s.pop(k)
        parts = ("sample", self._digest(clip.path), self._digest(clip.reference_path), clip.caption, s, self.models)
        if self.settings.pose_mode in SKELETON_VIDEO_MODES:  # the skeleton video is an input too
            sk = skeleton_video_path(clip.path, self.settings.pose_mode)
            parts += (self._digest(sk) if sk.is_file() else "missing",)  # computing it then says what is missing
        return entry_key(*parts)

    def pseudo_key(self, clip, pseudo) -> str:
        """Cache key of a pseudo driving entry (depends on the clip's key, too: same reference, same grid)."""
        parts = ("pseudo", self.sample_key(clip), self._digest(pseudo.path), self.settings.key_dict())
        if self.settings.pose_mode in SKELETON_VIDEO_MODES:
            sk = skeleton_video_path(pseudo.path, self.settings.pose_mode)
            parts += (self._digest(sk) if sk.is_file() else "missing",)
        return entry_key(*parts)

    def path_for(self, key: str) -> Path:
        return self.cache_dir / key[:2] / f"{key}.safetensors"

    @torch.no_grad()
    def compute_sample(self, clip, path: Path, cues_dir: Path | None = None) -> None:
        """Extract cues of a clip with its own reference and write its same-ID entry."""
        reference = _reference_for(clip, self.settings)
        cues = _extract(reference, clip.path, self.settings, self.backends())
        vae = self.vae
        tensors = {
            "latents": encode_video(vae, cues.driving),
            "image_latents": encode_reference(vae, cues.reference),
            "pose_latents": encode_video(vae, self.settings.pose_frames(cues, clip.path)),
            "face_latents": encode_video(vae, self.settings.face_frames(cues)),
            "body_mask": masks_to_latent_grid(cues.body_location, vae),
            "face_mask": masks_to_latent_grid(cues.face_location, vae),
            "prompt_embeds": encode_prompt(self.tokenizer, self.text_encoder, clip.caption,
                                           self.settings.max_text_length),
        }
        tensors = {k: _storage(v, self.settings) for k, v in tensors.items()}
        meta = {"kind": "sample", "file_name": clip.file_name, "identity": clip.identity,
                "bucket": [int(cues.num_frames), int(cues.height), int(cues.width)],
                "settings": asdict(self.settings)}
        _atomic_save(tensors, path, meta)
        if cues_dir is not None:
            cues.save(str(cues_dir))

    @torch.no_grad()
    def compute_pseudo(self, clip, pseudo, key: str, path: Path) -> None:
        """Cues of a pseudo driving video (the clip's reference, same grid), pose cue misaligned (A.2)."""
        reference = _reference_for(clip, self.settings)
        cues = _extract(reference, pseudo.path, self.settings, self.backends())
        scale, shift = random_misalignment(key, cues.height, cues.width, self.settings.misalign_scale,
                                           self.settings.misalign_shift)
        pose = misalign_frames(self.settings.pose_frames(cues, pseudo.path), scale, shift)
        tensors = {"pose_latents": encode_video(self.vae, pose),
                   "face_latents": encode_video(self.vae, self.settings.face_frames(cues))}
        tensors = {k: _storage(v, self.settings) for k, v in tensors.items()}
        meta = {"kind": "pseudo", "file_name": pseudo.file_name, "identity": pseudo.identity,
                "clip": clip.file_name, "misalign": [scale, *shift],
                "bucket": [int(cues.num_frames), int(cues.height), int(cues.width)]}
        _atomic_save(tensors, path, meta)

    def failure_path(self, key: str) -> Path:
        """Where the reason an entry could not be made is kept (so neither a resume nor another rank retries it)."""
        return self.path_for(key).with_suffix(".failed.txt")

    def run(self, clips, with_pseudo: bool = False, rank: int = 0, world_size: int = 1, progress=None,
            barrier=None, max_failed: float = 0.1) -> list[CacheEntry]:
        """Make sure every entry exists (this rank computes its share), then return the index of the usable clips.

        A clip whose cues cannot be extracted (no person found in its reference, say) is left out with a warning
        instead of stopping the run, and so is a pseudo video of it; the reason is kept beside the cache entry.
        More than ``max_failed`` of the clips failing stops with one error listing them (a wrong setting, not a
        few odd clips).

        Args:
            clips: the clips to cache (usually the train split).
            with_pseudo: also cache each clip's pseudo driving entries (Same2X stage).
            rank / world_size: this process and the number of processes; clip i is computed by rank i % world_size.
            progress: optional ``progress(fraction, desc)`` callback.
            barrier: callable that waits for every process (``accelerator.wait_for_everyone``) before the index is
                read back.
        """
        jobs = []
        for i, clip in enumerate(clips):
            key = self.sample_key(clip)
            jobs.append((i, "sample", clip, None, key))
            if with_pseudo:
                for pseudo in clip.pseudo_driving:
                    jobs.append((i, "pseudo", clip, pseudo, self.pseudo_key(clip, pseudo)))
        mine = [j for j in jobs if j[0] % world_size == rank]
        todo = []
        for job in mine:
            path = self.path_for(job[4])
            problem = entry_problem(path, job[1])
            if problem is not None and problem != "missing":
                logger.warning("precompute: cache entry %s of %s is %s: computing it again", path, job[2].file_name,
                               problem)
                path.unlink()
            if problem is not None:
                todo.append(job)
        for n, (_, kind, clip, pseudo, key) in enumerate(todo):
            if progress is not None:
                progress(n / max(1, len(todo)), f"precompute {kind} {clip.file_name}")
            if self.failure_path(key).is_file():
                continue
            try:
                if kind == "sample":
                    self.compute_sample(clip, self.path_for(key))
                else:
                    self.compute_pseudo(clip, pseudo, key, self.path_for(key))
            except InputError as exc:
                name = clip.file_name if pseudo is None else \
                    f"{pseudo.file_name} (pseudo driving video of {clip.file_name})"
                logger.warning("precompute: leaving out %s: %s", name, exc)
                atomic_write_text(self.failure_path(key), f"{name}: {exc}\n")
        if progress is not None:
            progress(1.0, "precompute done")
        if barrier is not None:
            barrier()
        entries, failed = [], []
        for i, clip in enumerate(clips):
            key = self.sample_key(clip)
            path = self.path_for(key)
            if self.failure_path(key).is_file():
                failed.append(self.failure_path(key).read_text().strip())
                continue
            if not path.is_file():
                raise InputError(f"cache entry for {clip.file_name} is missing after precompute ({path}); rerun")
            problem = entry_problem(path, "sample")
            if problem is not None:  # another rank's entry, damaged since: its rank computes it again next time
                raise InputError(f"cache entry {path} of {clip.file_name} is {problem}; rerun, it is computed again")
            meta = read_metadata(path)
            pseudo_paths = []
            for p in clip.pseudo_driving if with_pseudo else []:
                pkey = self.pseudo_key(clip, p)
                if self.failure_path(pkey).is_file():
                    failed.append(self.failure_path(pkey).read_text().strip())
                elif (problem := entry_problem(self.path_for(pkey), "pseudo")) is not None:
                    raise InputError(f"cache entry {self.path_for(pkey)} of {p.file_name} is {problem}; rerun, it is "
                                     "computed again")
                else:
                    pseudo_paths.append(self.path_for(pkey))
            entries.append(CacheEntry(i, path, tuple(meta["bucket"]), pseudo_paths))
        if failed:
            shown = "; ".join(failed[:5]) + (f"; and {len(failed) - 5} more" if len(failed) > 5 else "")
            if not entries or len(clips) - len(entries) > max_failed * len(clips):
                raise InputError(f"precompute: {len(clips) - len(entries)} of {len(clips)} clips have no usable "
                                 f"cues ({shown}); check the cue settings (--segmenter, --long-side) and the data")
            logger.warning("precompute: %d of %d clips and %d pseudo videos left out: %s", len(clips) - len(entries),
                           len(clips), len(failed) - (len(clips) - len(entries)), shown)
        return entries


class CachedSamples(torch.utils.data.Dataset):
    """Reads cache entries for the loop. Index i -> dict of tensors of entry i.

    For the Same2X stage each item also carries ``pseudo_pose_latents`` / ``pseudo_face_latents`` from one of the
    clip's pseudo entries, chosen by a hash of (seed, epoch, index) so the choice is reproducible on resume. The
    epoch travels with the index (``(index, epoch)`` pairs, see ``trainers.sampler.ContinuousBatches``) because persistent dataloader
    workers hold their own copy of this object.
    """

    def __init__(self, entries: list[CacheEntry], with_pseudo: bool = False, seed: int = 0):
        self.entries = entries
        self.with_pseudo = with_pseudo
        self.seed = seed
        self.epoch = 0

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, index) -> dict[str, torch.Tensor]:
        epoch = self.epoch
        if isinstance(index, tuple):
            index, epoch = index
        entry = self.entries[index]
        item = load_entry(entry.path)
        if self.with_pseudo:
            if entry.pseudo_paths:
                pick = int(hashlib.sha256(f"{self.seed}:{epoch}:{index}".encode()).hexdigest(), 16)
                pseudo = load_entry(entry.pseudo_paths[pick % len(entry.pseudo_paths)])
                item["pseudo_pose_latents"] = pseudo["pose_latents"]
                item["pseudo_face_latents"] = pseudo["face_latents"]
            else:  # a clip without pseudo videos falls back to its own cues (a same-ID sample within stage 2)
                item["pseudo_pose_latents"] = item["pose_latents"]
                item["pseudo_face_latents"] = item["face_latents"]
        return item


def collate(items: list[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """Stack same-shape items (the bucket sampler guarantees one shape per batch)."""
    return {k: torch.stack([it[k] for it in items]) for k in items[0]}
