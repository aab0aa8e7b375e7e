"""How a cue folder stores its per-frame arrays compactly: chunked video streams, read back lazily.

Every per-frame array of :class:`~directanimator.cues.DrivingCues` (driving frames, masks, pose cue, face cue,
location masks) is cut into chunks of ``CHUNK`` frames; chunk ``k`` of array ``name`` is the Matroska file
``frames/<name>/<k:06d>.mkv`` holding frames ``k * CHUNK`` up to ``(k + 1) * CHUNK``, each starting with a key
frame, so any frame range is decoded from the chunks it touches only, and a writer only holds one chunk.

Codecs, measured on the walk example at 512 x 512 (49 frames; ``bench/bench_storage.py`` repeats it):

- one-channel arrays (pose cue, masks on their 1/255 grid, location masks): **FFV1**, lossless (exact round trip):
  pose cue 4.4 kB/frame, person masks 4.2, body location 16.1, face location 0.2 (raw: 262 kB each).
- RGB arrays (driving frames, face cue): **H.264 (libx264) in 4:4:4 at qp 0**: lossless in YUV, so the only loss
  is the RGB <-> YUV rounding: max abs error 2, mean 0.28 gray levels; 76 kB/frame (raw 786 kB). At qp 0 the
  preset changes only the size and the speed, never the frames: ``ultrafast`` (no CABAC) encodes in 5.4 and
  decodes in 6.9 ms of CPU per frame against ``veryfast``'s 11.1 and 12.9 (66 kB/frame), one thread, 32 walk frames,
  ``time.process_time`` on a shared machine; a frame is encoded once and decoded two or three times. The other choices
  measured: x264 4:4:4 crf 12 10 kB/frame but max error 32; RGB x264 (libx264rgb) qp 0 lossless 143-157 kB; FFV1
  RGB lossless 123 kB; PNG 302 kB; zlib 361 kB. ``lossless=True`` stores RGB losslessly (libx264rgb qp 0).

Each writer measures the loss of what it wrote (it decodes its lossy chunks again) and reports it in the folder's
``cues.json`` (``storage.arrays.<name>.max_abs_error`` / ``mean_abs_error``).
"""

from __future__ import annotations

import io
from collections import OrderedDict
from pathlib import Path

import av
import numpy as np

from ..errors import InputError

__all__ = ["CHUNK", "FRAMES_DIR", "FrameArray", "FrameWriter", "iter_chunks"]

CHUNK = 32
"""Frames per chunk file: a window of the pipeline (49 frames) touches 2-3 chunks; a writer buffers one."""

FRAMES_DIR = "frames"

_CODECS = {
    # kind -> (codec, pixel format, options); "gray": uint8 [H, W], "rgb": uint8 [H, W, 3]
    "gray": ("ffv1", "gray", {}),
    "rgb": ("libx264", "yuv444p", {"qp": "0", "preset": "ultrafast"}),
    "rgb-lossless": ("libx264rgb", "rgb24", {"qp": "0", "preset": "ultrafast"}),
}


def _encode(frames: np.ndarray, kind: str) -> bytes:
    codec, pix_fmt, options = _CODECS[kind]
    height, width = frames.shape[1:3]
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="matroska") as container:
        stream = container.add_stream(codec, rate=25)
        stream.width, stream.height, stream.pix_fmt = width, height, pix_fmt
        stream.options = {**options, "g": str(max(1, len(frames)))}
        source = "gray" if kind == "gray" else "rgb24"
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format=source)):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buffer.getvalue()


def _decode(source, gray: bool, expected: int, where: str) -> np.ndarray:
    try:
        with av.open(source) as container:
            frames = [f.to_ndarray(format="gray" if gray else "rgb24") for f in container.decode(video=0)]
    except (av.error.FFmpegError, OSError, ValueError) as exc:
        raise InputError(f"{where} is corrupt ({exc}); re-extract the cues") from None
    if len(frames) != expected:
        raise InputError(f"{where} holds {len(frames)} frames, expected {expected}; re-extract the cues")
    return np.stack(frames)


class FrameWriter:
    """Writes one per-frame array as chunk files, a chunk as soon as it is full (streams: holds one chunk).

    Args:
        folder: the cue folder being written (``frames/<name>/`` is created in it).
        name: the array's name.
        dtype: ``np.uint8`` (frames, cues) or ``np.float32`` (masks in [0, 1], stored on the 1/255 grid).
        channels: 1 (``[T, H, W]``) or 3 (``[T, H, W, 3]``, uint8 only).
        lossless: store RGB losslessly (bigger; see the module docstring).
    """

    def __init__(self, folder, name: str, dtype, channels: int, lossless: bool = False):
        self.name, self.dtype, self.channels = name, np.dtype(dtype), int(channels)
        self.kind = "gray" if channels == 1 else ("rgb-lossless" if lossless else "rgb")
        self.dir = Path(folder) / FRAMES_DIR / name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.count, self.bytes, self.chunks = 0, 0, 0
        self.shape: tuple[int, ...] | None = None
        self._pending: list[np.ndarray] = []
        self._err_max, self._err_sum = 0, 0.0

    def append(self, frames) -> None:
        """Add frames ``[t, H, W]`` / ``[t, H, W, 3]`` (any ``t``, also lazily read ones) at the end."""
        frames = np.asarray(frames)
        if frames.ndim != (3 if self.channels == 1 else 4):
            raise ValueError(f"{self.name}: frames of shape {frames.shape} for a {self.channels}-channel array")
        if self.shape is None:
            self.shape = tuple(frames.shape[1:])
        elif tuple(frames.shape[1:]) != self.shape:
            raise ValueError(f"{self.name}: frame shape {frames.shape[1:]} after {self.shape}")
        if self.dtype == np.float32:
            frames = np.round(np.clip(frames, 0.0, 1.0) * 255.0).astype(np.uint8)
        elif self.dtype == np.bool_:
            frames = frames.astype(np.uint8) * 255
        else:
            frames = np.asarray(frames, dtype=np.uint8)
        for frame in frames:
            self._pending.append(frame)
            if len(self._pending) == CHUNK:
                self._flush()

    def _flush(self) -> None:
        if not self._pending:
            return
        block = np.stack(self._pending)
        self._pending = []
        data = _encode(block, self.kind)
        if self.kind == "rgb":  # the lossy codec: measure what it lost
            back = _decode(io.BytesIO(data), False, len(block), f"{self.name} chunk {self.chunks}")
            diff = np.abs(back.astype(np.int16) - block.astype(np.int16))
            self._err_max = max(self._err_max, int(diff.max()))
            self._err_sum += float(diff.mean()) * len(block)
        (self.dir / f"{self.chunks:06d}.mkv").write_bytes(data)
        self.count += len(block)
        self.bytes += len(data)
        self.chunks += 1

    def close(self) -> dict:
        """Write the last chunk; returns what ``cues.json`` records of the array (``storage.arrays.<name>``)."""
        self._flush()
        record = {"codec": _CODECS[self.kind][0], "kind": self.kind, "dtype": self.dtype.name,
                  "frame_shape": list(self.shape or ()), "num_frames": self.count, "chunk": CHUNK,
                  "bytes": self.bytes}
        if self.kind == "rgb":
            record["max_abs_error"] = self._err_max
            record["mean_abs_error"] = round(self._err_sum / max(self.count, 1), 4)
        else:
            record["max_abs_error"] = 0
        return record


class FrameArray:
    """A per-frame array of a cue folder, decoded on demand: ``shape``, ``dtype``, ``len``, indexing (an index, a
    slice or a list of frame indices, then the other axes) and ``frames(start, stop)`` decode the chunks they touch
    only; ``np.asarray`` decodes everything. The last ``cache`` decoded chunks are kept.

    ``decoded`` counts the frames decoded so far (what a caller really read).
    """

    def __init__(self, folder, name: str, record: dict, cache: int = 2):
        self.folder = Path(folder)
        self.name = name
        self.dir = self.folder / FRAMES_DIR / name
        self.dtype = np.dtype(record["dtype"])
        self.kind = record["kind"]
        self.chunk = int(record["chunk"])
        self.shape = (int(record["num_frames"]),) + tuple(int(v) for v in record["frame_shape"])
        self.max_abs_error = record.get("max_abs_error")
        self.decoded = 0
        self._cache: OrderedDict[int, np.ndarray] = OrderedDict()
        self._cache_size = max(1, int(cache))
        missing = [k for k in range(self.num_chunks) if not self._path(k).is_file()]
        if missing:
            raise InputError(f"{self.dir} is incomplete (chunk {missing[0]} of {self.num_chunks} is missing); "
                             "re-extract the cues")

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    @property
    def num_chunks(self) -> int:
        return (self.shape[0] + self.chunk - 1) // self.chunk

    def __len__(self) -> int:
        return self.shape[0]

    def __repr__(self) -> str:
        return f"FrameArray({self.name!r}, shape={self.shape}, dtype={self.dtype.name}, {self.kind})"

    def _path(self, k: int) -> Path:
        return self.dir / f"{k:06d}.mkv"

    def _chunk(self, k: int) -> np.ndarray:
        if k in self._cache:
            self._cache.move_to_end(k)
            return self._cache[k]
        count = min(self.chunk, self.shape[0] - k * self.chunk)
        raw = _decode(str(self._path(k)), self.kind == "gray", count, str(self._path(k)))
        if self.dtype == np.float32:
            block = raw.astype(np.float32) / np.float32(255.0)  # the same operation as quantize_mask
        elif self.dtype == np.bool_:
            block = raw > 127
        else:
            block = raw
        self.decoded += count
        self._cache[k] = block
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return block

    def frames(self, start: int, stop: int) -> np.ndarray:
        """Frames ``start`` to ``stop`` (clipped to the array, like a slice) as a new ndarray."""
        start, stop, _ = slice(start, stop).indices(self.shape[0])
        stop = max(start, stop)
        out = np.empty((stop - start,) + self.shape[1:], self.dtype)
        t = start
        while t < stop:
            k = t // self.chunk
            block = self._chunk(k)
            end = min(stop, (k + 1) * self.chunk)
            out[t - start:end - start] = block[t - k * self.chunk:end - k * self.chunk]
            t = end
        return out

    def _take(self, index: np.ndarray) -> np.ndarray:
        out = np.empty((len(index),) + self.shape[1:], self.dtype)
        for i, t in enumerate(index):
            k = int(t) // self.chunk
            out[i] = self._chunk(k)[int(t) - k * self.chunk]
        return out

    def __getitem__(self, key):
        rest, kept = (), 1  # kept: the leading axes that indexing the frames leaves (then ``rest`` applies)
        if isinstance(key, tuple):
            key, rest = (key[0], key[1:]) if key else (slice(None), ())
        if isinstance(key, (int, np.integer)):
            t = int(key) + (self.shape[0] if key < 0 else 0)
            if not 0 <= t < self.shape[0]:
                raise IndexError(f"frame {key} out of range for {self.shape[0]} frames")
            out, kept = self.frames(t, t + 1)[0], 0
        elif isinstance(key, slice):
            start, stop, step = key.indices(self.shape[0])
            if step == 1:
                out = self.frames(start, stop)
            else:
                out = self._take(np.arange(start, stop, step))
        elif key is Ellipsis:
            out, rest, kept = np.asarray(self), (Ellipsis,) + rest, 0
        else:
            index = np.asarray(key)
            if index.dtype == np.bool_:
                index = np.flatnonzero(index)
            index = np.where(index < 0, index + self.shape[0], index).astype(np.int64)
            if index.size and (index.min() < 0 or index.max() >= self.shape[0]):
                raise IndexError(f"frame index out of range for {self.shape[0]} frames")
            out, kept = self._take(index.reshape(-1)).reshape(index.shape + self.shape[1:]), index.ndim
        return out[(slice(None),) * kept + rest] if rest else out

    def __iter__(self):
        for start, block in iter_chunks(self, self.chunk):
            yield from block

    def __array__(self, dtype=None, copy=None):
        out = self.frames(0, self.shape[0])
        return out if dtype is None else out.astype(dtype, copy=False)

    def copy(self) -> np.ndarray:
        """All frames as a new ndarray."""
        return np.asarray(self)

    def astype(self, dtype, copy: bool = True) -> np.ndarray:
        return np.asarray(self).astype(dtype, copy=copy)


def iter_chunks(array, size: int = CHUNK):
    """``(start, frames)`` of an ndarray or a :class:`FrameArray`, ``size`` frames at a time."""
    for start in range(0, len(array), size):
        yield start, np.asarray(array[start:start + size])

