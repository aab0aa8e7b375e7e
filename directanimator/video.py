"""Reading and writing images and videos as uint8 RGB arrays; fps, resampling, resizing, audio passthrough.

Conventions (shared by the whole package):

- images are ``np.ndarray [H, W, 3] uint8`` RGB, videos ``[T, H, W, 3] uint8``;
- decoding goes through PyAV (FFmpeg) for videos and Pillow for images, and everything is *downscaled while
  decoding* so that the long side is at most ``max_side`` (default 1024): an 8K input never sits in memory at
  full size (videos are scaled by FFmpeg frame by frame, JPEGs are decoded at a reduced DCT scale; PNG/WebP
  cannot be decoded scaled, so they are decoded once at full size, bounded by Pillow's decompression-bomb limit);
- pixel coordinates are continuous: pixel ``i`` covers ``[i, i + 1)``, so a box edge ``x`` maps through
  :func:`fit_frames` as ``x * scale + offset`` (see :func:`fit_transform`);
- every problem with a user's file is raised as :class:`~directanimator.errors.InputError` with one line that
  names the file, the problem and what to do.

Resize policy (:func:`fit_frames`): ``"pad"`` scales the whole frame to fit inside the target and centres it on
black (nothing is cut off; the default, because cutting off a hand or the feet would lose motion), ``"crop"``
scales to cover the target and centre-crops (no borders, but the edges are lost).

Alpha: transparent pixels of images (and GIF frames) are composited on a neutral gray
(:data:`ALPHA_BACKGROUND`), which keeps a cut-out person separable from the background for segmentation.
"""

from __future__ import annotations

import itertools
import math
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction

import av
import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from directanimator.errors import InputError
from directanimator.progress import ProgressFn
from directanimator.files import atomic_path

#: Reference-image file types, for file pickers (``.gif`` is also read by :func:`read_image`, first frame only).
IMAGE_EXTENSIONS: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff")
#: Driving-video file types, for file pickers.
VIDEO_EXTENSIONS: tuple[str, ...] = (".mp4", ".mov", ".m4v", ".webm", ".mkv", ".avi", ".gif")

#: Inputs whose short side is below this many pixels are rejected (nothing recognisable survives).
MIN_SIDE = 32
#: Inputs whose long side is more than this many times the short side are rejected.
MAX_ASPECT = 4.0
#: Default bound on the long side after decoding; 8K inputs are downscaled to this while decoding.
DEFAULT_MAX_SIDE = 1024
#: Gray used under transparent pixels.
ALPHA_BACKGROUND = (128, 128, 128)
#: A decoded clip may use at most this much memory; longer clips need ``max_frames`` (or a trimmed file).
MAX_VIDEO_BYTES = 4 * 1024**3
#: fps used when a file states none (some GIFs and raw streams).
FALLBACK_FPS = 25.0



@dataclass
class Video:
    """A decoded clip.

    Args:
        frames: ``[T, H, W, 3] uint8`` RGB frames.
        fps: frames per second.
        source: path of the file it came from (used to copy its audio track), or ``None``.
        has_audio: whether ``source`` has an audio stream.
    """

    frames: np.ndarray
    fps: float
    source: str | None = None
    has_audio: bool = False

    @property
    def num_frames(self) -> int:
        """Number of frames ``T``."""
        return int(self.frames.shape[0])

    @property
    def height(self) -> int:
        """Frame height in pixels."""
        return int(self.frames.shape[1])

    @property
    def width(self) -> int:
        """Frame width in pixels."""
        return int(self.frames.shape[2])

    @property
    def duration(self) -> float:
        """Length in seconds (``T / fps``)."""
        return self.num_frames / self.fps


# ----------------------------------------------------------------------------------------------------------------
# shared checks


def _name(path: str) -> str:
    return os.path.basename(path) or path


def _check_path(path, allowed: tuple[str, ...], kind: str) -> str:
    """Return ``path`` as a str after checking it exists, is a file and has an extension we read."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise InputError(f"{path}: no such file; check the path.")
    if os.path.isdir(path):
        raise InputError(f"{path}: is a directory, not a {kind} file; give the path of a file inside it.")
    ext = os.path.splitext(path)[1].lower()
    if ext not in allowed:
        other = None
        if kind == "video" and ext in IMAGE_EXTENSIONS:
            other = "it is an image; the driving input must be a video"
        elif kind == "image" and ext in VIDEO_EXTENSIONS:
            other = "it is a video; the reference must be an image"
        reason = other or f"unsupported {kind} format {ext or '(no extension)'!r}"
        raise InputError(f"{_name(path)}: {reason}; use one of {', '.join(allowed)}.")
    if os.path.getsize(path) == 0:
        raise InputError(f"{_name(path)}: the file is empty (0 bytes); re-export or re-download it.")
    return path


def _check_geometry(width: int, height: int, what: str) -> None:
    """Reject sizes nothing useful can come out of: tiny frames and extreme aspect ratios."""
    if min(width, height) < MIN_SIDE:
        raise InputError(
            f"{what}: {width}x{height} is too small (the short side must be at least {MIN_SIDE} px); "
            "use a larger image or video."
        )
    aspect = max(width, height) / min(width, height)
    if aspect > MAX_ASPECT:
        raise InputError(
            f"{what}: aspect ratio {aspect:.1f}:1 ({width}x{height}) is too extreme (at most {MAX_ASPECT:g}:1); "
            "crop it closer to the person."
        )


def _scaled_size(width: int, height: int, max_side: int | None) -> tuple[int, int]:
    """(width, height) scaled down (never up) so the long side is at most ``max_side``."""
    if max_side is None or max(width, height) <= max_side:
        return width, height
    s = max_side / max(width, height)
    return max(1, round(width * s)), max(1, round(height * s))


def _check_max_side(max_side) -> None:
    if max_side is not None and (not isinstance(max_side, (int, np.integer)) or max_side < MIN_SIDE):
        raise InputError(f"max_side must be an integer of at least {MIN_SIDE} (or None), got {max_side!r}.")


# ----------------------------------------------------------------------------------------------------------------
# images


def _to_8bit_pil(img: Image.Image) -> Image.Image:
    """Bring any Pillow mode to 8-bit ``RGB`` or ``RGBA``."""
    mode = img.mode
    if mode in ("RGB", "RGBA"):
        return img
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        # 16-bit (and 32-bit int / float) grayscale: Pillow's own convert("L") clips instead of scaling.
        a = np.asarray(img)
        if a.dtype.kind == "f":
            a = a.astype(np.float64)
            peak = 1.0 if np.nanmax(a) <= 1.0 else 255.0
            a = np.clip(np.nan_to_num(a) / peak * 255.0, 0, 255)
        else:
            a = a.astype(np.float64)
            peak = 255.0 if a.max() <= 255 else 65535.0
            a = np.clip(a, 0, peak) * (255.0 / peak)
        return Image.fromarray(np.round(a).astype(np.uint8), "L").convert("RGB")
    has_alpha = mode in ("LA", "La", "PA", "RGBa") or (mode == "P" and "transparency" in img.info)
    return img.convert("RGBA" if has_alpha else "RGB")


def _composite_alpha(img: Image.Image) -> Image.Image:
    if img.mode != "RGBA":
        return img
    background = Image.new("RGBA", img.size, ALPHA_BACKGROUND + (255,))
    return Image.alpha_composite(background, img).convert("RGB")


def _array_to_pil(a: np.ndarray) -> Image.Image:
    """An HxW, HxWx1, HxWx3 or HxWx4 array (uint8, uint16, bool or float in [0, 1]) as a Pillow image."""
    a = np.asarray(a)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (3, 4)):
        raise InputError(f"image array must be HxW, HxWx3 or HxWx4, got shape {tuple(a.shape)}.")
    if a.dtype == np.bool_:
        a = a.astype(np.uint8) * 255
    elif a.dtype == np.uint16:
        a = np.round(a / 257.0).astype(np.uint8)
    elif a.dtype.kind == "f":
        a = np.nan_to_num(a.astype(np.float64))
        a = np.clip(a * 255.0 if a.max() <= 1.0 else a, 0, 255).round().astype(np.uint8)
    elif a.dtype != np.uint8:
        raise InputError(f"image array dtype {a.dtype} is not supported; use uint8, uint16 or float in [0, 1].")
    return Image.fromarray(np.ascontiguousarray(a))


def read_image(src, max_side: int | None = DEFAULT_MAX_SIDE) -> np.ndarray:
    """Read a reference image as ``[H, W, 3] uint8`` RGB.

    Handles PNG, JPEG, WebP (plus BMP, TIFF, and the first frame of a GIF); applies the EXIF orientation; turns
    grayscale into RGB; composites alpha on :data:`ALPHA_BACKGROUND` gray; scales 16-bit down to 8-bit.

    Args:
        src: a path, a ``PIL.Image.Image`` or a numpy array (HxW, HxWx3 or HxWx4; uint8, uint16 or float in
            [0, 1]).
        max_side: the long side is scaled down to at most this many pixels (``None``: keep the full size).
            JPEGs are decoded at a reduced scale directly, so an 8K photo never sits in memory at full size.

    Returns:
        ``np.ndarray [H, W, 3] uint8``.

    Raises:
        InputError: missing path, directory, unsupported or corrupt file, short side under 32 px, aspect
            ratio above 4:1.
    """
    _check_max_side(max_side)
    if isinstance(src, Image.Image):
        what, img = "image", src
    elif isinstance(src, np.ndarray):
        what, img = "image array", _array_to_pil(src)
    elif isinstance(src, (str, os.PathLike)):
        path = _check_path(src, IMAGE_EXTENSIONS + (".gif",), "image")
        what = _name(path)
        try:
            img = Image.open(path)
        except UnidentifiedImageError:
            raise InputError(f"{what}: not a readable image (corrupt, or not really an image); re-export it.") from None
        except Image.DecompressionBombError:
            raise InputError(f"{what}: the image is too large to decode safely; scale it down first.") from None
        except OSError as e:
            raise InputError(f"{what}: cannot open the image ({e}); re-export it.") from None
    else:
        raise InputError(f"reference image must be a path, PIL image or numpy array, got {type(src).__name__}.")

    # Geometry is checked on the displayed (EXIF-rotated) size before decoding any pixels.
    width, height = img.size
    try:
        orientation = img.getexif().get(0x0112, 1)
    except Exception:  # a broken EXIF block should not stop us from reading the pixels
        orientation = 1
    shown_w, shown_h = (height, width) if orientation in (5, 6, 7, 8) else (width, height)
    _check_geometry(shown_w, shown_h, what)

    try:
        if img.format == "JPEG" and max_side is not None:
            # Let libjpeg decode at 1/2, 1/4 or 1/8 scale; it never goes below the requested size.
            img.draft(img.mode, _scaled_size(width, height, max_side))
        img.load()
        img = ImageOps.exif_transpose(img)
        img = _composite_alpha(_to_8bit_pil(img))
    except InputError:
        raise
    except Exception as e:  # truncated data, broken chunks: Pillow raises OSError, SyntaxError, ValueError...
        raise InputError(f"{what}: the image data is corrupt or truncated ({e}); re-export it.") from None

    target = _scaled_size(img.width, img.height, max_side)
    if target != img.size:
        img = img.resize(target, Image.Resampling.LANCZOS, reducing_gap=3.0)
    return np.ascontiguousarray(np.asarray(img, dtype=np.uint8))


# ----------------------------------------------------------------------------------------------------------------
# videos


@dataclass
class VideoInfo:
    """What a video file says about itself, read without decoding (see :func:`probe_video`).

    Args:
        width: displayed width in pixels (after sample aspect ratio and rotation).
        height: displayed height in pixels.
        fps: frames per second.
        num_frames: frame count, estimated from the duration when the file does not state it (0 if unknown).
        duration: length in seconds (0 if unknown).
        has_audio: whether there is an audio stream.
    """

    width: int
    height: int
    fps: float
    num_frames: int
    duration: float
    has_audio: bool


def _open_container(path: str, what: str):
    try:
        return av.open(path, metadata_errors="ignore")
    except av.FFmpegError as e:
        raise InputError(
            f"{what}: not a readable video (corrupt, truncated or unsupported: {e.strerror or e}); re-export it "
            "as mp4 (H.264)."
        ) from None


def _require_video_stream(container, what: str) -> None:
    if container.streams.video:
        return
    if container.streams.audio:
        raise InputError(f"{what}: has audio but no video stream; give a video file.")
    # FFmpeg drops a video stream that has no frames at all, so this is also what a zero-frame mp4 looks like
    raise InputError(
        f"{what}: contains no video frames (an empty, truncated or corrupt file); re-export it as mp4 (H.264)."
    )


def _stream_fps(stream) -> float | None:
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        try:
            f = float(rate) if rate else 0.0
        except (TypeError, ZeroDivisionError):
            f = 0.0
        if 0.5 <= f <= 240.0:
            return f
    return None


def _display_size(stream) -> tuple[int, int]:
    """Stored size corrected for non-square pixels (sample aspect ratio); rotation is handled per frame."""
    cc = stream.codec_context
    w, h = int(cc.width or 0), int(cc.height or 0)
    sar = cc.sample_aspect_ratio
    if sar and w and float(sar) > 0 and abs(float(sar) - 1.0) > 1e-3:
        w = max(1, round(w * float(sar)))
    return w, h


def _frame_geometry(frame, stream) -> tuple[int, int, int]:
    """``(width, height, quarter_turns)`` of a decoded frame as shown: the stored width corrected for non-square
    pixels (the stream's sample aspect ratio) and the frame's rotation in quarter turns. Frame sizes are
    authoritative (some containers state none or a wrong one)."""
    width = frame.width
    sar = stream.codec_context.sample_aspect_ratio
    if sar and float(sar) > 0 and abs(float(sar) - 1.0) > 1e-3:
        width = max(1, round(width * float(sar)))
    return width, frame.height, round(float(frame.rotation or 0) / 90.0) % 4


def probe_video(path) -> VideoInfo:
    """Read a video's size, fps, frame count, duration and audio presence without decoding it.

    Args:
        path: the video file.

    Raises:
        InputError: missing, unsupported, corrupt, or without a video stream.
    """
    path = _check_path(path, VIDEO_EXTENSIONS, "video")
    what = _name(path)
    with _open_container(path, what) as container:
        _require_video_stream(container, what)
        stream = container.streams.video[0]
        w, h = _display_size(stream)
        rotation = 0
        try:  # rotation lives on the stream's display matrix; PyAV exposes it per frame, so peek one frame
            for frame in container.decode(stream):
                rotation = int(frame.rotation or 0)
                break
        except av.FFmpegError:
            pass
        if round(rotation / 90) % 2:
            w, h = h, w
        fps = _stream_fps(stream) or FALLBACK_FPS
        duration = 0.0
        if stream.duration and stream.time_base:
            duration = float(stream.duration * stream.time_base)
        elif container.duration:
            duration = container.duration / av.time_base
        frames = int(stream.frames or 0) or int(round(duration * fps))
        return VideoInfo(w, h, fps, frames, duration, bool(container.streams.audio))


def _to_rgb(frame, width: int, height: int) -> np.ndarray:
    """One decoded frame, scaled by FFmpeg to (width, height) and converted to RGB; alpha composited on gray."""
    if frame.format.name == "pal8" or any(c.is_alpha for c in frame.format.components):
        rgba = frame.to_ndarray(width=width, height=height, format="rgba", interpolation="AREA")
        alpha = rgba[..., 3:4].astype(np.float32) / 255.0
        gray = np.asarray(ALPHA_BACKGROUND, np.float32)
        return np.round(rgba[..., :3] * alpha + gray * (1.0 - alpha)).astype(np.uint8)
    return frame.to_ndarray(width=width, height=height, format="rgb24", interpolation="AREA")


def read_video(
    src,
    max_side: int | None = DEFAULT_MAX_SIDE,
    max_frames: int | None = None,
    progress: ProgressFn | None = None,
) -> Video:
    """Decode a driving video into ``[T, H, W, 3] uint8`` RGB frames.

    Reads mp4, mov, m4v, webm, mkv, avi and gif through PyAV. Frames are scaled by FFmpeg while decoding so the
    long side is at most ``max_side`` (an 8K clip is never held at full size); non-square pixels and rotation
    metadata (phone videos) are applied, so frames come out as a player shows them.

    Args:
        src: a path; a :class:`Video` (returned with frames downscaled if needed) or a ``[T, H, W, 3]`` uint8
            array (taken at :data:`FALLBACK_FPS`) are accepted too.
        max_side: bound on the long side after decoding (``None``: full size).
        max_frames: stop after this many frames (``None``: all; a clip that would need more than
            :data:`MAX_VIDEO_BYTES` of memory is rejected with a hint to set this).
        progress: optional ``progress(fraction, desc)`` callback, called while decoding.

    Returns:
        :class:`Video` with ``source`` set to the path (for audio passthrough).

    Raises:
        InputError: missing path, directory, unsupported extension, corrupt or truncated file, no video stream,
            zero decodable frames, short side under 32 px, aspect ratio above 4:1, clip too long for memory.
    """
    _check_max_side(max_side)
    if max_frames is not None and (not isinstance(max_frames, (int, np.integer)) or max_frames < 1):
        raise InputError(f"max_frames must be a positive integer (or None), got {max_frames!r}.")
    if isinstance(src, Video):
        return _video_from_array(src.frames, src.fps, max_side, max_frames, src.source, src.has_audio)
    if isinstance(src, np.ndarray):
        return _video_from_array(src, FALLBACK_FPS, max_side, max_frames, None, False)
    if not isinstance(src, (str, os.PathLike)):
        raise InputError(f"driving video must be a path, Video or array, got {type(src).__name__}.")

    path = _check_path(src, VIDEO_EXTENSIONS, "video")
    what = _name(path)
    with _open_container(path, what) as container:
        _require_video_stream(container, what)
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"  # frame threading: ~2x faster H.264 decoding on 2 cores
        has_audio = bool(container.streams.audio)
        disp_w, disp_h = _display_size(stream)
        if disp_w and disp_h:  # cheap early rejection before decoding anything
            _check_geometry(disp_w, disp_h, what)
        fps = _stream_fps(stream)
        expected = int(stream.frames or 0)
        if not expected and stream.duration and stream.time_base and fps:
            expected = int(round(float(stream.duration * stream.time_base) * fps))
        if max_frames:
            expected = min(expected, max_frames) if expected else max_frames

        frames: list[np.ndarray] = []
        times: list[float] = []
        out_size = None  # (width, height) to decode to, in stored orientation
        k_rot = 0
        error = None
        try:
            for frame in container.decode(stream):
                if out_size is None:
                    w, h, k_rot = _frame_geometry(frame, stream)
                    _check_geometry(w, h, what)
                    out_size = _scaled_size(w, h, max_side)
                    frame_bytes = out_size[0] * out_size[1] * 3
                    if max_frames is None and expected * frame_bytes > MAX_VIDEO_BYTES:
                        raise InputError(
                            f"{what}: {expected} frames at {out_size[0]}x{out_size[1]} need "
                            f"{expected * frame_bytes / 1024**3:.1f} GiB; trim the clip or pass max_frames "
                            "(or a smaller max_side)."
                        )
                rgb = _to_rgb(frame, *out_size)
                if k_rot:
                    rgb = np.ascontiguousarray(np.rot90(rgb, k_rot))
                frames.append(rgb)
                if frame.time is not None:
                    times.append(float(frame.time))
                if max_frames is not None and len(frames) >= max_frames:
                    break
                if len(frames) * frame_bytes > MAX_VIDEO_BYTES:
                    raise InputError(
                        f"{what}: the clip needs more than {MAX_VIDEO_BYTES / 1024**3:.0f} GiB decoded; trim it "
                        "or pass max_frames (or a smaller max_side)."
                    )
                if progress is not None and len(frames) % 8 == 0:
                    progress(min(len(frames) / expected, 1.0) if expected else 0.0, f"decoding {what}")
        except av.FFmpegError as e:
            error = e
    if not frames:
        if error is not None:
            raise InputError(
                f"{what}: no frame could be decoded (corrupt or truncated: {error.strerror or error}); re-export "
                "it as mp4 (H.264)."
            )
        raise InputError(f"{what}: the video has no frames; give a clip with at least one frame.")
    stated = int(stream.frames or 0)
    if max_frames is None or len(frames) < max_frames:
        # A cut-off download decodes silently up to where the data ends; the stated frame count gives it away.
        # Small shortfalls are normal (edit lists, B-frame delay), so only a clear one is an error.
        if stated and len(frames) < 0.9 * stated:
            reason = f" ({error.strerror or error})" if error is not None else ""
            raise InputError(
                f"{what}: truncated or corrupt: only {len(frames)} of {stated} frames could be decoded{reason}; "
                "re-export or re-download it."
            )
        if error is not None:
            warnings.warn(f"{what}: decoding stopped after {len(frames)} frames ({error}); the rest is unreadable.")

    if fps is None and len(times) >= 2 and times[-1] > times[0]:
        fps = (len(times) - 1) / (times[-1] - times[0])
    if progress is not None:
        progress(1.0, f"decoded {what}")
    return Video(np.stack(frames), float(fps or FALLBACK_FPS), path, has_audio)


def iter_video(path, max_side: int | None = DEFAULT_MAX_SIDE, start: int = 0, stop: int | None = None):
    """Decode a video file one frame at a time, as :func:`read_video` does (scaled while decoding, non-square
    pixels and rotation applied), without holding the clip: for clips too long for memory.

    Args:
        path: the video file.
        max_side: bound on the long side after decoding (``None``: full size).
        start, stop: yield frames ``start`` (0-based, in decoding order) up to ``stop`` (exclusive; ``None``: all).

    Yields:
        ``[H, W, 3]`` uint8 RGB frames.

    Raises:
        InputError: as :func:`read_video` for a missing, unsupported or corrupt file (the checks of the whole clip,
            its stated length and memory, are the caller's; a decoding error after the first frame ends the clip).
    """
    _check_max_side(max_side)
    path = _check_path(path, VIDEO_EXTENSIONS, "video")
    what = _name(path)
    with _open_container(path, what) as container:
        _require_video_stream(container, what)
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        out_size, k_rot, index = None, 0, 0
        try:
            for frame in container.decode(stream):
                if stop is not None and index >= stop:
                    break
                if out_size is None:
                    w, h, k_rot = _frame_geometry(frame, stream)
                    _check_geometry(w, h, what)
                    out_size = _scaled_size(w, h, max_side)
                if index >= start:
                    rgb = _to_rgb(frame, *out_size)
                    yield np.ascontiguousarray(np.rot90(rgb, k_rot)) if k_rot else rgb
                index += 1
        except av.FFmpegError as e:
            if index == 0:
                raise InputError(f"{what}: no frame could be decoded (corrupt or truncated: {e.strerror or e}); "
                                 "re-export it as mp4 (H.264).") from None
            warnings.warn(f"{what}: decoding stopped after {index} frames ({e}); the rest is unreadable.")


def _video_from_array(frames, fps, max_side, max_frames, source, has_audio) -> Video:
    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise InputError(f"video frames must be a [T, H, W, 3] uint8 array, got {frames.dtype} {frames.shape}.")
    if frames.shape[0] == 0:
        raise InputError("the video has no frames; give a clip with at least one frame.")
    _check_geometry(frames.shape[2], frames.shape[1], "video frames")
    if max_frames is not None:
        frames = frames[:max_frames]
    w, h = _scaled_size(frames.shape[2], frames.shape[1], max_side)
    if (w, h) != (frames.shape[2], frames.shape[1]):
        frames = np.stack([cv2.resize(f, (w, h), interpolation=cv2.INTER_AREA) for f in frames])
    return Video(frames, float(fps), source, has_audio)


def resample_video(video: Video, fps: float | None = None, num_frames: int | None = None) -> Video:
    """Change a clip's frame rate and/or frame count by picking frames (no interpolation).

    - ``fps`` only: same duration at the new rate; output frame ``i`` (at time ``i / fps``) is the source frame
      shown at that moment.
    - ``num_frames`` only: the same duration covered by ``num_frames`` evenly picked frames; ``fps`` becomes
      ``num_frames / duration``.
    - both: resample to ``fps``, then keep the first ``num_frames``; a clip that is too short holds its last
      frame to reach ``num_frames``.

    Args:
        video: the clip.
        fps: target frames per second.
        num_frames: target number of frames.

    Returns:
        a new :class:`Video` (``source``/``has_audio`` kept, so the audio still lines up from the start).
    """
    if fps is not None and not (isinstance(fps, (int, float)) and math.isfinite(fps) and fps > 0):
        raise InputError(f"fps must be a positive number, got {fps!r}.")
    if num_frames is not None and (not isinstance(num_frames, (int, np.integer)) or num_frames < 1):
        raise InputError(f"num_frames must be a positive integer, got {num_frames!r}.")
    if fps is None and num_frames is None:
        return video
    idx, out_fps = resample_indices(video.num_frames, float(video.fps), fps, num_frames)
    return Video(video.frames[idx], out_fps, video.source, video.has_audio)


def resample_indices(total: int, src_fps: float, fps: float | None = None,
                     num_frames: int | None = None) -> tuple[np.ndarray, float]:
    """The source frames :func:`resample_video` picks from a clip of ``total`` frames at ``src_fps`` (in order,
    repeated when the rate goes up) and the new frame rate; the streaming cue extraction picks the same ones."""
    T = int(total)
    if fps is None and num_frames is None:
        return np.arange(T, dtype=np.int64), float(src_fps)
    if fps is not None:
        n = max(1, math.ceil(T * fps / src_fps - 1e-9))
        idx = np.floor(np.arange(n) * (src_fps / fps) + 1e-6).astype(np.int64)
        out_fps = float(fps)
        if num_frames is not None:
            idx = idx[:num_frames]
            if len(idx) < num_frames:
                idx = np.concatenate([idx, np.full(num_frames - len(idx), idx[-1])])
    else:
        idx = np.floor(np.arange(num_frames) * (T / num_frames) + 1e-6).astype(np.int64)
        out_fps = src_fps * num_frames / T
    return np.clip(idx, 0, T - 1), out_fps


# ----------------------------------------------------------------------------------------------------------------
# resizing to the working resolution


def _fit_geometry(src_hw, dst_hw, policy: str):
    """Scale, resized (h, w) and placement shared by :func:`fit_frames` and :func:`fit_transform`."""
    if policy not in ("pad", "crop"):
        raise InputError(f"resize policy must be 'pad' or 'crop', got {policy!r}.")
    sh, sw = int(src_hw[0]), int(src_hw[1])
    dh, dw = int(dst_hw[0]), int(dst_hw[1])
    if min(sh, sw, dh, dw) < 1:
        raise InputError(f"cannot fit a {sw}x{sh} frame into {dw}x{dh}.")
    if policy == "pad":
        scale = min(dh / sh, dw / sw)
        nh, nw = min(dh, max(1, round(sh * scale))), min(dw, max(1, round(sw * scale)))
    else:
        scale = max(dh / sh, dw / sw)
        nh, nw = max(dh, round(sh * scale)), max(dw, round(sw * scale))
    # pad: position of the resized frame inside the target; crop: minus the cut-off margin
    off_y, off_x = (dh - nh) // 2, (dw - nw) // 2
    if policy == "crop":
        off_y, off_x = -((nh - dh) // 2), -((nw - dw) // 2)
    return scale, nh, nw, off_y, off_x


def fit_transform(src_hw, dst_hw, policy: str = "pad") -> tuple[float, float, float]:
    """The coordinate map of :func:`fit_frames`: a point ``(x, y)`` of the source goes to
    ``(x * scale + offset_x, y * scale + offset_y)`` in the fitted frame.

    Coordinates are continuous (pixel ``i`` spans ``[i, i + 1)``; a pixel centre is ``i + 0.5``), which is how
    box edges are stored. Along the side that does not set the scale the resized length is rounded to whole
    pixels, so the map is exact to within half a pixel there.

    Args:
        src_hw: ``(height, width)`` of the source frames.
        dst_hw: ``(height, width)`` of the target.
        policy: ``"pad"`` or ``"crop"`` (see :func:`fit_frames`).

    Returns:
        ``(scale, offset_x, offset_y)``.
    """
    scale, _, _, off_y, off_x = _fit_geometry(src_hw, dst_hw, policy)
    return float(scale), float(off_x), float(off_y)


def fit_frames(frames: np.ndarray, height: int, width: int, policy: str = "pad") -> np.ndarray:
    """Resize frames or masks to ``height x width`` keeping the aspect ratio.

    ``"pad"`` scales the frame to fit inside the target and centres it, filling the borders with 0 (black
    frames, empty masks): nothing is cut off, which matters for limbs at the frame edge. ``"crop"`` scales it to
    cover the target and cuts the overflow equally on both sides. Downscaling uses area averaging, upscaling
    bilinear interpolation. Use :func:`fit_transform` to map boxes and points the same way.

    Args:
        frames: ``[T, H, W, C]`` or ``[H, W, C]`` frames, or ``[T, H, W]`` / ``[H, W]`` masks (any dtype cv2
            resizes: uint8, float32, ...; bool masks are resized as float and thresholded at 0.5).
        height: target height.
        width: target width.
        policy: ``"pad"`` (default) or ``"crop"``.

    Returns:
        an array of the same rank and dtype with the spatial size replaced by ``(height, width)``.
    """
    a = np.asarray(frames)
    if a.ndim not in (2, 3, 4):
        raise InputError(f"fit_frames expects [T,H,W,C], [H,W,C], [T,H,W] or [H,W], got shape {a.shape}.")
    # [H,W,C] and [T,H,W] are both rank 3: a trailing axis of 1, 3 or 4 means channels
    is_batch = a.ndim == 4 or (a.ndim == 3 and a.shape[-1] not in (1, 3, 4))
    batch = a if is_batch else a[None]
    has_channels = batch.ndim == 4
    was_bool = batch.dtype == np.bool_
    if was_bool:
        batch = batch.astype(np.float32)
    T, sh, sw = batch.shape[:3]
    scale, nh, nw, off_y, off_x = _fit_geometry((sh, sw), (height, width), policy)
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    out = np.zeros((T, height, width) + batch.shape[3:], batch.dtype)
    if policy == "pad":
        dst = (slice(off_y, off_y + nh), slice(off_x, off_x + nw))
        src = (slice(0, nh), slice(0, nw))
    else:
        dst = (slice(0, height), slice(0, width))
        src = (slice(-off_y, -off_y + height), slice(-off_x, -off_x + width))
    for t in range(T):
        r = batch[t] if (nh, nw) == (sh, sw) else cv2.resize(batch[t], (nw, nh), interpolation=interp)
        if has_channels and r.ndim == 2:  # cv2 drops a single channel axis
            r = r[:, :, None]
        out[t][dst] = r[src]
    if was_bool:
        out = out >= 0.5
    return out if is_batch else out[0]


def working_size(height: int, width: int, long_side: int = 512, multiple: int = 16) -> tuple[int, int]:
    """The working resolution for a frame of this aspect: long side ``long_side``, both sides multiples of
    ``multiple`` (the VAE and patch grid need them), aspect kept as closely as that allows.

    Args:
        height: source height.
        width: source width.
        long_side: target length of the long side (rounded to a multiple of ``multiple``).
        multiple: both output sides are multiples of this.

    Returns:
        ``(h, w)``.
    """
    if min(height, width, long_side, multiple) < 1:
        raise InputError(f"working_size needs positive sizes, got {height}x{width}, {long_side}, {multiple}.")
    s = long_side / max(height, width)
    h = max(multiple, int(round(height * s / multiple)) * multiple)
    w = max(multiple, int(round(width * s / multiple)) * multiple)
    return h, w


# ----------------------------------------------------------------------------------------------------------------
# writing


def to_uint8_frames(frames) -> np.ndarray:
    """Frames as ``[T, H, W, 3] uint8`` RGB, the package's convention: the one conversion of float and gray frames.

    Args:
        frames: a :class:`Video` or an array ``[T, H, W, 3]``; also ``[T, H, W]`` / ``[T, H, W, 1]`` gray (repeated
            to three channels) and ``[T, H, W, 4]`` RGBA (alpha dropped); uint8, or float in [0, 1] (what
            pipelines return, and masks): scaled by 255 and rounded, NaN as 0, out-of-range values clipped.
            A single frame goes in as ``frame[None]``.

    Returns:
        The frames; uint8 RGB input comes back as it is (not copied).

    Raises:
        InputError: another shape, or a dtype other than uint8 and float.
    """
    if isinstance(frames, Video):
        frames = frames.frames
    a = np.asarray(frames)
    if a.ndim == 3:  # [T, H, W] grayscale
        a = a[..., None]
    if a.ndim != 4 or a.shape[-1] not in (1, 3, 4):
        raise InputError(f"frames must be [T, H, W, 3] (or [T, H, W] / [T, H, W, 1|4]), got shape {a.shape}.")
    if a.dtype.kind == "f":
        # pipelines return floats in [0, 1]
        a = np.clip(np.nan_to_num(a) * 255.0, 0, 255).round().astype(np.uint8)
    elif a.dtype != np.uint8:
        raise InputError(f"frames must be uint8 (or float in [0, 1]), got {a.dtype}.")
    if a.shape[-1] == 1:
        a = np.repeat(a, 3, axis=-1)
    elif a.shape[-1] == 4:
        a = a[..., :3]
    return a


def _as_uint8_frames(frames) -> np.ndarray:
    """``to_uint8_frames`` for encoding: at least one frame, even sizes, contiguous."""
    a = np.asarray(frames.frames if isinstance(frames, Video) else frames)
    # An empty clip of a valid shape says so, whatever its dtype (the shape is checked first, as ever).
    if a.ndim in (3, 4) and a.shape[0] == 0 and (a.ndim == 3 or a.shape[-1] in (1, 3, 4)):
        raise InputError("no frames to write.")
    a = to_uint8_frames(a)
    # H.264 with yuv420p needs even sizes: repeat the last row/column instead of dropping content
    pad_h, pad_w = a.shape[1] % 2, a.shape[2] % 2
    if pad_h or pad_w:
        a = np.pad(a, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")
    return np.ascontiguousarray(a)


def _open_audio_source(audio_from):
    """(container, audio stream, video start time) of ``audio_from``, or ``None`` when it has no audio."""
    if isinstance(audio_from, Video):
        audio_from = audio_from.source
        if audio_from is None:
            return None
    path = os.fspath(audio_from)
    if not os.path.isfile(path):
        raise InputError(f"{path}: audio source not found; check the path (or pass audio_from=None).")
    try:
        container = av.open(path, metadata_errors="ignore")
    except av.FFmpegError as e:
        # The frames are still worth writing: the result is silent rather than nothing.
        warnings.warn(f"{_name(path)}: cannot read audio from it ({e}); writing a silent video.")
        return None
    if not container.streams.audio:
        container.close()
        return None
    video_start = 0.0
    if container.streams.video:
        vs = container.streams.video[0]
        if vs.start_time is not None and vs.time_base:
            video_start = float(vs.start_time * vs.time_base)
    return container, container.streams.audio[0], video_start


def _add_audio_stream(out, source):
    """Add an AAC stream matching ``source`` to ``out`` (streams must all exist before the first packet)."""
    in_stream = source[1]
    rate = int(in_stream.rate or 48000)
    if rate not in (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000, 64000, 88200, 96000):
        rate = 48000
    layout = "mono" if (in_stream.channels or 2) == 1 else "stereo"
    out_stream = out.add_stream("aac", rate=rate)
    out_stream.layout = layout
    out_stream.bit_rate = 160_000
    return out_stream


def _mux_audio(out, out_stream, source, duration: float) -> None:
    """Re-encode the source's first audio track as AAC into ``out``, aligned to the video and cut at ``duration``."""
    container, in_stream, video_start = source
    rate, layout = out_stream.rate, out_stream.layout.name
    resampler = av.AudioResampler(format="fltp", layout=layout, rate=rate)
    total = int(round(duration * rate))
    written, skip, pts = 0, 0, None

    def encode(frames):
        nonlocal written, skip, pts
        for rf in frames:
            a = rf.to_ndarray()  # [channels, samples] float32
            if pts is None:
                # Audio that starts before the video is cut, audio that starts after it is delayed.
                start = float(rf.time) if rf.time is not None else 0.0
                lead = int(round((start - video_start) * rate))
                pts, skip = max(lead, 0), max(-lead, 0)
                written = pts
            if skip:
                cut = min(skip, a.shape[1])
                a, skip = a[:, cut:], skip - cut
            a = a[:, : max(total - written, 0)]
            if a.shape[1] == 0:
                continue
            f = av.AudioFrame.from_ndarray(np.ascontiguousarray(a), format="fltp", layout=layout)
            f.sample_rate = rate
            f.pts = written
            f.time_base = Fraction(1, rate)
            written += a.shape[1]
            out.mux(out_stream.encode(f))

    try:
        for frame in container.decode(in_stream):
            encode(resampler.resample(frame))
            if pts is not None and written >= total:
                break
        encode(resampler.resample(None))
    except av.FFmpegError as e:
        warnings.warn(f"audio track partly unreadable ({e}); kept {written / rate:.2f} s of it.")
    out.mux(out_stream.encode(None))


def write_audio(path, audio_from, duration: float) -> str | None:
    """Write the first audio track of ``audio_from`` as an AAC ``.m4a`` file, aligned to its video's start and cut
    at ``duration`` seconds (what a cue folder keeps of the driving video, so a result made from the folder alone
    still has its sound). Returns ``path``, or ``None`` (nothing written) when the source has no audio."""
    audio = _open_audio_source(audio_from)
    if audio is None:
        return None
    path = os.fspath(path)
    try:
        with atomic_path(path, suffix=".m4a") as tmp, av.open(str(tmp), "w", format="mp4") as out:
            _mux_audio(out, _add_audio_stream(out, audio), audio, float(duration))
    except av.FFmpegError as e:
        raise InputError(f"{path}: could not write the audio track ({e}); check the folder.") from None
    finally:
        audio[0].close()
    return path


# x264 options that keep an encoding a function of the frames alone (see write_video).
#
# x264's macroblock-tree rate control (mbtree, on in every preset but ultrafast) reads an uninitialised stack value:
# valgrind (memcheck --track-origins) on the x264 (core 165) of PyAV 18.1 reports "use of uninitialised value of
# size 8 ... created by a stack allocation" inside x264_encoder_encode, and none with mbtree=0. The value is whatever
# an earlier call left on that stack, so the same frames encoded twice in one process gave different files: the demo
# model's 48x64 videos 1-1.7/255 apart on average (up to 21 levels), trainers.pseudo's 64x64 candidates up to 20
# levels. Under valgrind (which runs x264's AVX2 code, not the AVX-512 code of this CPU) it shows at widths of an odd
# number of macroblocks (16, 48, 80, 112, 144 px); natively 64 px wide videos varied too, so it is off everywhere.
# Without it the lookahead still picks frame types and the quality per frame stays that of the crf; files of
# mostly static content are somewhat larger.
X264_DETERMINISTIC = {"x264-params": "mbtree=0"}


def write_video(
    path,
    frames,
    fps: float,
    audio_from=None,
    crf: int = 18,
    preset: str = "medium",
    progress: ProgressFn | None = None,
    num_frames: int | None = None,
) -> str:
    """Write frames as an H.264 mp4 (yuv420p, BT.601 tagged, fast start), optionally with an audio track.

    Odd sizes are padded by one repeated row/column (yuv420p needs even sizes). The file is written to a
    temporary name next to ``path`` and moved into place at the end, so a failure never leaves half a file.

    Args:
        path: output path (written as mp4 whatever the extension; parent folders are created).
        frames: ``[T, H, W, 3] uint8`` (also ``[T, H, W]`` gray, RGBA, or float in [0, 1]), or a :class:`Video`;
            or an iterator of such arrays (``[n, H, W, 3]`` chunks of one size, e.g.
            ``DirectAnimatorPipeline.iter_frames``), encoded as they come: a long video is never held whole.
        fps: frames per second.
        audio_from: path (or :class:`Video` with a ``source``) whose first audio track is re-encoded to AAC,
            aligned to its video start and trimmed to this video's duration. A file without audio gives a silent
            video, not an error.
        crf: x264 quality (0 = lossless, 18 = visually lossless, 23 = x264 default, 51 = worst).
        preset: x264 speed/size trade-off (``"ultrafast"`` ... ``"veryslow"``). Always without x264's mbtree,
            which reads uninitialised memory (``X264_DETERMINISTIC``): the same frames give the same file.
        progress: optional ``progress(fraction, desc)`` callback.
        num_frames: the frame count of an iterator (for ``progress``; arrays know theirs).

    Returns:
        ``path`` as a string.
    """
    if not (isinstance(fps, (int, float, np.floating, np.integer)) and math.isfinite(fps) and 0 < fps <= 1000):
        raise InputError(f"fps must be a positive number, got {fps!r}.")
    if not (isinstance(crf, (int, np.integer)) and 0 <= crf <= 51):
        raise InputError(f"crf must be an integer in 0..51, got {crf!r}.")
    if isinstance(frames, Iterator):
        chunks = (_as_uint8_frames(c) for c in frames)
        try:
            a = next(chunks)
        except StopIteration:
            raise InputError("no frames to write.") from None
        total = int(num_frames) if num_frames else None
    else:
        a = _as_uint8_frames(frames)
        chunks, total = iter(()), len(a)
    path = os.fspath(path)
    audio = _open_audio_source(audio_from) if audio_from is not None else None

    H, W = a.shape[1:3]
    rate = Fraction(float(fps)).limit_denominator(1001)
    try:
        # built beside the target and moved into place when complete (directanimator.files)
        with atomic_path(path, suffix=".mp4") as tmp, \
                av.open(str(tmp), "w", format="mp4", options={"movflags": "+faststart"}) as out:
            vs = out.add_stream("libx264", rate=rate)
            vs.width, vs.height, vs.pix_fmt = W, H, "yuv420p"
            vs.options = {"crf": str(int(crf)), "preset": preset, **X264_DETERMINISTIC}
            aus = _add_audio_stream(out, audio) if audio is not None else None
            # swscale's rgb->yuv uses BT.601 limited range; say so, so players do not assume BT.709
            cc = vs.codec_context
            cc.colorspace, cc.color_primaries, cc.color_trc, cc.color_range = 6, 6, 6, 1
            t = 0
            for block in itertools.chain([a], chunks):
                if block.shape[1:3] != (H, W):
                    raise InputError(f"frames of one video must share a size: got {block.shape[2]}x{block.shape[1]} "
                                     f"after {W}x{H}.")
                for frame in block:
                    vf = av.VideoFrame.from_ndarray(frame, format="rgb24").reformat(format="yuv420p")
                    vf.pts = t
                    vf.time_base = 1 / rate
                    out.mux(vs.encode(vf))
                    t += 1
                    if progress is not None and total and (t % 8 == 1 or t == total):
                        progress(min(t / total, 1.0), "encoding video")
            out.mux(vs.encode(None))
            if audio is not None:
                _mux_audio(out, aus, audio, t / float(rate))
    except av.FFmpegError as e:
        raise InputError(f"{path}: could not write the video ({e}); check the folder and the frame size.") from None
    finally:
        if audio is not None:
            audio[0].close()
    return path
