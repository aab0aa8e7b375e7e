"""Tests for directanimator.video: real files written and decoded with PyAV / Pillow in tmp_path."""

import os
import wave

import av
import numpy as np
import pytest
from PIL import Image

from directanimator import video as vid
from directanimator.errors import InputError
from directanimator.video import (
    ALPHA_BACKGROUND,
    IMAGE_EXTENSIONS,
    VIDEO_EXTENSIONS,
    Video,
    fit_frames,
    fit_transform,
    probe_video,
    read_image,
    read_video,
    resample_video,
    working_size,
    write_video,
)

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(__file__)), "examples")


# ------------------------------------------------------------------------------------------------ helpers


def gradient_clip(t=12, h=48, w=64):
    """Smooth frames (compress well, so decoded values stay close) that differ per frame."""
    y, x = np.mgrid[0:h, 0:w]
    frames = []
    for i in range(t):
        r = (x * 255 // max(w - 1, 1) + 10 * i) % 256
        g = y * 255 // max(h - 1, 1)
        b = np.full_like(x, (20 * i) % 256)
        frames.append(np.stack([r, g, b], -1).astype(np.uint8))
    return np.stack(frames)


def encode_with_av(path, fmt, codec, frames, fps, pix_fmt="yuv420p"):
    with av.open(str(path), "w", format=fmt) as c:
        s = c.add_stream(codec, rate=fps)
        s.width, s.height, s.pix_fmt = frames.shape[2], frames.shape[1], pix_fmt
        for f in frames:
            c.mux(s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")))
        c.start_encoding()  # writes the header even when there are no frames
        c.mux(s.encode(None))
    return str(path)


def write_tone(path, seconds, rate=44100, freq=440.0):
    t = np.arange(int(seconds * rate)) / rate
    pcm = np.round(0.3 * np.sin(2 * np.pi * freq * t) * 32767).astype("<i2")
    with wave.open(str(path), "wb") as f:
        f.setnchannels(2)
        f.setsampwidth(2)
        f.setframerate(rate)
        f.writeframes(np.repeat(pcm[:, None], 2, axis=1).tobytes())
    return str(path)


def audio_of(path):
    """(duration in seconds, RMS) of the first audio stream, or None when there is none."""
    with av.open(str(path)) as c:
        if not c.streams.audio:
            return None
        chunks = [f.to_ndarray().astype(np.float64) for f in c.decode(c.streams.audio[0])]
        rate = c.streams.audio[0].rate
    samples = np.concatenate(chunks, axis=1)
    return samples.shape[1] / rate, float(np.sqrt(np.mean(samples**2)))


# ------------------------------------------------------------------------------------------------ write / read


def test_roundtrip_frame_count_size_fps(tmp_path):
    frames = gradient_clip(12, 48, 64)
    out = write_video(tmp_path / "a.mp4", frames, 12.5)
    assert out == str(tmp_path / "a.mp4")
    v = read_video(out)
    assert v.frames.shape == (12, 48, 64, 3) and v.frames.dtype == np.uint8
    assert v.fps == pytest.approx(12.5)
    assert v.source == out and not v.has_audio
    assert np.abs(v.frames.astype(int) - frames).mean() < 4  # crf 18 on smooth content
    info = probe_video(out)
    assert (info.width, info.height, info.num_frames) == (64, 48, 12)
    assert info.fps == pytest.approx(12.5) and info.duration == pytest.approx(12 / 12.5, abs=0.01)
    assert not info.has_audio
    assert os.listdir(tmp_path) == ["a.mp4"]  # no temp file left behind


def test_write_odd_size_float_frames_and_new_folder(tmp_path):
    frames = gradient_clip(4, 33, 47).astype(np.float32) / 255.0  # pipelines return floats in [0, 1]
    out = write_video(tmp_path / "new" / "b.mp4", frames, 30000 / 1001)
    v = read_video(out)
    assert v.frames.shape == (4, 34, 48, 3)  # padded to even sizes by repeating the last row/column
    assert v.fps == pytest.approx(29.97, abs=0.01)


def test_to_uint8_frames_one_conversion_for_every_frame_kind():
    floats = np.array([0.0, 0.5, 1.0, 1.5, -1.0, np.nan, 0.25], np.float32).reshape(1, 1, 7)
    np.testing.assert_array_equal(vid.to_uint8_frames(floats)[0, 0], np.repeat([[0, 128, 255, 255, 0, 0, 64]], 3, 0).T)
    rgb = np.zeros((2, 4, 6, 3), np.uint8)
    assert vid.to_uint8_frames(rgb) is rgb  # uint8 RGB as it is
    assert vid.to_uint8_frames(vid.Video(rgb, 10.0)) is rgb
    rgba = np.full((2, 4, 6, 4), 7, np.uint8)
    assert vid.to_uint8_frames(rgba).shape == (2, 4, 6, 3)
    assert vid.to_uint8_frames(np.zeros((2, 4, 6, 1), np.uint8)).shape == (2, 4, 6, 3)
    with pytest.raises(InputError, match="uint8"):
        vid.to_uint8_frames(np.zeros((2, 4, 6, 3), np.int64))
    with pytest.raises(InputError, match="shape"):
        vid.to_uint8_frames(np.zeros((4, 6), np.uint8))


def test_write_rejects_bad_arguments_and_writes_nothing(tmp_path):
    frames = gradient_clip(2)
    for kwargs, needle in [({"fps": 0}, "fps"), ({"fps": 10, "crf": 99}, "crf")]:
        with pytest.raises(InputError, match=needle):
            write_video(tmp_path / "c.mp4", frames, **kwargs)
    with pytest.raises(InputError, match="no frames"):
        write_video(tmp_path / "c.mp4", frames[:0], 10)
    with pytest.raises(InputError, match="audio source not found"):
        write_video(tmp_path / "c.mp4", frames, 10, audio_from=tmp_path / "missing.wav")
    assert os.listdir(tmp_path) == []


def test_audio_kept_and_trimmed_to_video(tmp_path):
    wav = write_tone(tmp_path / "tone.wav", 3.0)
    frames = gradient_clip(15)
    with_audio = write_video(tmp_path / "with_audio.mp4", frames, 10, audio_from=wav)  # 1.5 s of video
    duration, rms = audio_of(with_audio)
    assert duration == pytest.approx(1.5, abs=0.05)
    assert rms > 0.1  # the tone, not silence
    v = read_video(with_audio)
    assert v.has_audio and probe_video(with_audio).has_audio

    # from a video that has audio (the driving clip case), via the Video's source; shorter again
    again = write_video(tmp_path / "again.mp4", frames[:8], 10, audio_from=v)
    duration, rms = audio_of(again)
    assert duration == pytest.approx(0.8, abs=0.05) and rms > 0.1


def test_no_audio_in_source_gives_silent_video(tmp_path):
    silent_src = write_video(tmp_path / "silent_src.mp4", gradient_clip(5), 10)
    out = write_video(tmp_path / "out.mp4", gradient_clip(5), 10, audio_from=silent_src)
    assert audio_of(out) is None
    assert not read_video(out).has_audio


def test_example_clips_decode():
    v = read_video(os.path.join(EXAMPLES, "driving_synthetic.mp4"))
    assert v.has_audio and v.num_frames == 49 and v.fps == pytest.approx(16)
    w = read_video(os.path.join(EXAMPLES, "driving_walk.mp4"))
    assert w.frames.shape == (49, 512, 512, 3) and not w.has_audio
    for name in ("reference_astronaut.jpg", "reference_grace_hopper.jpg", "reference_synthetic.png"):
        img = read_image(os.path.join(EXAMPLES, name))
        assert img.ndim == 3 and img.shape[2] == 3 and img.dtype == np.uint8


@pytest.mark.parametrize(
    "name, fmt, codec",
    [("clip.webm", "webm", "libvpx-vp9"), ("clip.avi", "avi", "mpeg4"), ("clip.mov", "mov", "libx264"),
     ("clip.mkv", "matroska", "libx264")],
)
def test_other_containers(tmp_path, name, fmt, codec):
    path = encode_with_av(tmp_path / name, fmt, codec, gradient_clip(6), 12)
    v = read_video(path)
    assert v.frames.shape == (6, 48, 64, 3)
    assert v.fps == pytest.approx(12)


def test_gif_frames_fps_and_transparency(tmp_path):
    frames = [Image.new("RGBA", (64, 48), (255, 0, 0, 0))]  # first frame fully transparent
    frames += [Image.new("RGBA", (64, 48), (0, 0, 255 - 40 * i, 255)) for i in range(3)]  # distinct: not merged
    frames[0].save(tmp_path / "a.gif", save_all=True, append_images=frames[1:], duration=100, loop=0, disposal=2)
    v = read_video(tmp_path / "a.gif")
    assert v.frames.shape == (4, 48, 64, 3)
    assert v.fps == pytest.approx(10)
    assert tuple(v.frames[0, 20, 20]) == ALPHA_BACKGROUND  # transparency composited on gray
    assert tuple(v.frames[1, 20, 20]) == (0, 0, 255)


def test_rotation_and_pixel_aspect_metadata_are_applied(tmp_path):
    imageio_ffmpeg = pytest.importorskip("imageio_ffmpeg")
    import subprocess

    frames = np.zeros((3, 64, 96, 3), np.uint8)
    frames[:, :16, :16] = 255  # white top-left corner
    src = write_video(tmp_path / "src.mp4", frames, 10)
    rotated = tmp_path / "rot.mp4"
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-y", "-display_rotation", "90", "-i", src,
                    "-c", "copy", str(rotated)], check=True)
    v = read_video(rotated)
    assert v.frames.shape == (3, 96, 64, 3)  # portrait, as a player shows it
    ys, xs = np.nonzero(v.frames[0, :, :, 0] > 128)
    assert ys.mean() > 80 and xs.mean() < 16  # 90 deg counter-clockwise: top-left went to bottom-left
    info = probe_video(rotated)
    assert (info.width, info.height) == (64, 96)

    # non-square pixels (e.g. DV/anamorphic): a 2:1 sample aspect ratio doubles the displayed width
    wide = tmp_path / "sar.mp4"
    subprocess.run([imageio_ffmpeg.get_ffmpeg_exe(), "-v", "error", "-y", "-i", src, "-c", "copy", "-bsf:v",
                    "h264_metadata=sample_aspect_ratio=2/1", str(wide)], check=True)
    assert read_video(wide).frames.shape == (3, 64, 192, 3)


def test_8k_video_downscaled_while_decoding(tmp_path):
    frame = np.zeros((1, 4320, 7680, 3), np.uint8)
    frame[:, 1000:3000, 2000:5000] = 200
    path = write_video(tmp_path / "8k.mp4", frame, 10, preset="ultrafast")
    del frame
    v = read_video(path)
    assert v.frames.shape == (1, 576, 1024, 3)  # default max_side 1024
    assert read_video(path, max_side=256).frames.shape == (1, 144, 256, 3)


def test_max_frames_progress_and_memory_guard(tmp_path, monkeypatch):
    path = write_video(tmp_path / "a.mp4", gradient_clip(20), 10)
    calls = []
    v = read_video(path, max_frames=9, progress=lambda f, d: calls.append(f))
    assert v.num_frames == 9
    assert calls and calls[-1] == 1.0 and all(0 <= f <= 1 for f in calls)
    monkeypatch.setattr(vid, "MAX_VIDEO_BYTES", 10 * 48 * 64 * 3)  # room for 10 frames
    with pytest.raises(InputError, match="max_frames"):
        read_video(path)
    assert read_video(path, max_frames=10).num_frames == 10


def test_array_and_video_inputs():
    frames = gradient_clip(3, 48, 64)
    v = read_video(frames, max_side=32)
    assert v.frames.shape == (3, 24, 32, 3) and v.fps == vid.FALLBACK_FPS
    assert read_video(Video(frames, 8.0)).fps == 8.0


# ------------------------------------------------------------------------------------------------ bad videos


def test_bad_videos_are_rejected_with_clear_messages(tmp_path):
    good = write_video(tmp_path / "good.mp4", np.random.default_rng(0).integers(0, 255, (30, 64, 64, 3), np.uint8), 10)
    data = open(good, "rb").read()
    cases = []

    (tmp_path / "random.mp4").write_bytes(np.random.default_rng(1).bytes(5000))
    cases.append(("random.mp4", "not a readable video"))
    (tmp_path / "half.mp4").write_bytes(data[: len(data) // 2])  # a cut-off download
    cases.append(("half.mp4", "truncated"))
    (tmp_path / "head.mp4").write_bytes(data[:200])
    cases.append(("head.mp4", "truncated"))
    encode_with_av(tmp_path / "zero.avi", "avi", "mpeg4", np.zeros((0, 48, 64, 3), np.uint8), 10)
    cases.append(("zero.avi", "no frames"))
    encode_with_av(tmp_path / "zero.mp4", "mp4", "libx264", np.zeros((0, 48, 64, 3), np.uint8), 10)
    cases.append(("zero.mp4", "no video frames"))
    (tmp_path / "empty.mp4").write_bytes(b"")
    cases.append(("empty.mp4", "empty"))
    encode_with_av(tmp_path / "tiny.mp4", "mp4", "libx264", np.zeros((2, 2, 2, 3), np.uint8), 10)
    cases.append(("tiny.mp4", "too small"))
    encode_with_av(tmp_path / "wide.mp4", "mp4", "libx264", np.zeros((2, 40, 400, 3), np.uint8), 10)
    cases.append(("wide.mp4", "aspect ratio"))
    (tmp_path / "clip.flv").write_bytes(b"FLV")
    cases.append(("clip.flv", "unsupported video format '.flv'"))
    Image.new("RGB", (64, 64)).save(tmp_path / "still.png")
    cases.append(("still.png", "it is an image"))
    with av.open(str(tmp_path / "sound.mp4"), "w") as c:
        s = c.add_stream("aac", rate=44100)
        for i in range(5):
            f = av.AudioFrame.from_ndarray(np.zeros((2, 1024), np.float32), format="fltp", layout="stereo")
            f.sample_rate, f.pts = 44100, i * 1024
            c.mux(s.encode(f))
        c.mux(s.encode(None))
    cases.append(("sound.mp4", "no video stream"))
    cases.append(("missing.mp4", "no such file"))

    for name, needle in cases:
        with pytest.raises(InputError) as e:
            read_video(tmp_path / name)
        msg = str(e.value)
        assert needle in msg, (name, msg)
        assert name in msg and "\n" not in msg, msg
    with pytest.raises(InputError, match="is a directory"):
        read_video(tmp_path)


# ------------------------------------------------------------------------------------------------ images


def test_exif_rotated_jpeg(tmp_path):
    img = np.zeros((48, 64, 3), np.uint8)
    img[:12, :12] = (255, 0, 0)  # red top-left corner as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    Image.fromarray(img).save(tmp_path / "r.jpg", exif=exif, quality=95)
    out = read_image(tmp_path / "r.jpg")
    assert out.shape == (64, 48, 3)
    ys, xs = np.nonzero(out[:, :, 0] > 128)
    assert ys.mean() < 12 and xs.mean() > 36  # stored top-left is shown top-right


def test_grayscale_rgba_palette_and_16bit(tmp_path):
    Image.fromarray(np.full((40, 50), 77, np.uint8), "L").save(tmp_path / "g.png")
    g = read_image(tmp_path / "g.png")
    assert g.shape == (40, 50, 3) and (g == 77).all()

    rgba = np.zeros((40, 50, 4), np.uint8)
    rgba[:, :25] = (255, 0, 0, 255)  # left opaque red, right fully transparent
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    a = read_image(tmp_path / "a.png")
    assert tuple(a[5, 5]) == (255, 0, 0) and tuple(a[5, 45]) == ALPHA_BACKGROUND

    la = Image.fromarray(np.stack([np.full((40, 50), 200, np.uint8), np.zeros((40, 50), np.uint8)], -1), "LA")
    la.save(tmp_path / "la.png")
    assert tuple(read_image(tmp_path / "la.png")[0, 0]) == ALPHA_BACKGROUND

    p = Image.fromarray(rgba, "RGBA").quantize(colors=4)
    p.info["transparency"] = p.getpixel((45, 5))
    p.save(tmp_path / "p.png", transparency=p.getpixel((45, 5)))
    pp = read_image(tmp_path / "p.png")
    assert tuple(pp[5, 45]) == ALPHA_BACKGROUND and pp[5, 5, 0] > 200

    sixteen = np.zeros((40, 50), np.uint16)
    sixteen[:, :25] = 65535
    sixteen[:, 25:] = 32896  # = 128 * 257
    Image.fromarray(sixteen).save(tmp_path / "s.png")
    assert Image.open(tmp_path / "s.png").mode.startswith("I")
    s = read_image(tmp_path / "s.png")
    assert s.dtype == np.uint8 and tuple(s[0, 0]) == (255, 255, 255) and tuple(s[0, 45]) == (128, 128, 128)


def test_webp_gif_bmp_and_in_memory_inputs(tmp_path):
    base = gradient_clip(1, 48, 64)[0]
    Image.fromarray(base).save(tmp_path / "w.webp", lossless=True)
    assert (read_image(tmp_path / "w.webp") == base).all()
    Image.fromarray(base).save(tmp_path / "b.bmp")
    assert (read_image(tmp_path / "b.bmp") == base).all()
    Image.fromarray(base).convert("P").save(tmp_path / "g.gif")
    assert read_image(tmp_path / "g.gif").shape == (48, 64, 3)
    assert (read_image(Image.fromarray(base)) == base).all()
    assert (read_image(base) == base).all()
    assert (read_image(base.astype(np.float32) / 255.0) == base).all()
    assert (read_image(base.astype(np.uint16) * 257) == base).all()
    assert read_image(base[:, :, 0]).shape == (48, 64, 3)


def test_large_images_are_downscaled(tmp_path):
    small = np.random.default_rng(0).integers(0, 255, (54, 96, 3), np.uint8)
    Image.fromarray(small).resize((7680, 4320)).save(tmp_path / "8k.jpg", quality=70)
    out = read_image(tmp_path / "8k.jpg")
    assert out.shape == (576, 1024, 3)
    Image.fromarray(small).resize((2000, 1000)).save(tmp_path / "big.png")
    assert read_image(tmp_path / "big.png").shape == (512, 1024, 3)
    assert read_image(tmp_path / "big.png", max_side=None).shape == (1000, 2000, 3)
    assert read_image(small, max_side=48).shape == (27, 48, 3)


def test_bad_images_are_rejected_with_clear_messages(tmp_path):
    cases = []
    Image.new("RGB", (1, 1)).save(tmp_path / "one.png")
    cases.append(("one.png", "too small"))
    Image.new("RGB", (400, 50)).save(tmp_path / "strip.png")
    cases.append(("strip.png", "aspect ratio"))
    (tmp_path / "noise.png").write_bytes(np.random.default_rng(0).bytes(4000))
    cases.append(("noise.png", "not a readable image"))
    Image.fromarray(gradient_clip(1, 200, 200)[0]).save(tmp_path / "full.png")
    data = (tmp_path / "full.png").read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    cases.append(("cut.png", "corrupt or truncated"))
    Image.fromarray(gradient_clip(1, 200, 200)[0]).save(tmp_path / "full.jpg")
    data = (tmp_path / "full.jpg").read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 3])
    cases.append(("cut.jpg", "corrupt or truncated"))
    (tmp_path / "notes.txt").write_text("hello")
    cases.append(("notes.txt", "unsupported image format '.txt'"))
    write_video(tmp_path / "clip.mp4", gradient_clip(2), 10)
    cases.append(("clip.mp4", "it is a video"))
    cases.append(("missing.png", "no such file"))
    for name, needle in cases:
        with pytest.raises(InputError) as e:
            read_image(tmp_path / name)
        msg = str(e.value)
        assert needle in msg and name in msg and "\n" not in msg, (name, msg)
    with pytest.raises(InputError, match="is a directory"):
        read_image(tmp_path)
    with pytest.raises(InputError, match="too small"):
        read_image(np.zeros((1, 1, 3), np.uint8))
    with pytest.raises(InputError, match="shape"):
        read_image(np.zeros((4, 4, 2), np.uint8))


def test_extension_constants():
    assert ".png" in IMAGE_EXTENSIONS and ".jpg" in IMAGE_EXTENSIONS and ".webp" in IMAGE_EXTENSIONS
    for ext in (".mp4", ".mov", ".webm", ".gif", ".avi"):
        assert ext in VIDEO_EXTENSIONS
    assert all(e.startswith(".") and e == e.lower() for e in IMAGE_EXTENSIONS + VIDEO_EXTENSIONS)


# ------------------------------------------------------------------------------------------------ resampling / fitting


def numbered(t, fps):
    frames = np.zeros((t, 32, 32, 3), np.uint8)
    frames[:, 0, 0, 0] = np.arange(t)  # frame index in a pixel
    return Video(frames, fps)


def test_resample_video():
    v = numbered(31, 30.0)
    half = resample_video(v, fps=15)
    assert half.fps == 15 and list(half.frames[:, 0, 0, 0]) == list(range(0, 31, 2))
    r24 = resample_video(numbered(30, 30.0), fps=24)
    assert r24.num_frames == 24 and list(r24.frames[:5, 0, 0, 0]) == [0, 1, 2, 3, 5]
    assert r24.duration == pytest.approx(1.0)
    n = resample_video(numbered(30, 30.0), num_frames=10)
    assert list(n.frames[:, 0, 0, 0]) == list(range(0, 30, 3)) and n.fps == pytest.approx(10)
    both = resample_video(numbered(10, 10.0), fps=5, num_frames=8)  # 5 frames available, last one held
    assert list(both.frames[:, 0, 0, 0]) == [0, 2, 4, 6, 8, 8, 8, 8] and both.fps == 5
    up = resample_video(numbered(10, 10.0), fps=20)
    assert list(up.frames[:6, 0, 0, 0]) == [0, 0, 1, 1, 2, 2]
    assert resample_video(v) is v
    with pytest.raises(InputError, match="fps"):
        resample_video(v, fps=-1)
    with pytest.raises(InputError, match="num_frames"):
        resample_video(v, num_frames=0)


def test_fit_frames_pad_geometry():
    src = np.full((2, 40, 80, 3), 200, np.uint8)  # wide frames into a square
    out = fit_frames(src, 64, 64, "pad")
    assert out.shape == (2, 64, 64, 3) and out.dtype == np.uint8
    assert (out[:, :16] == 0).all() and (out[:, 48:] == 0).all()  # black bars top and bottom
    assert (out[:, 16:48] == 200).all()
    assert fit_transform((40, 80), (64, 64), "pad") == (0.8, 0.0, 16.0)


def test_fit_frames_crop_geometry():
    src = np.zeros((40, 80), np.float32)
    src[:, 40:] = 1.0  # right half on: a mask
    out = fit_frames(src, 64, 64, "crop")
    assert out.shape == (64, 64) and out.dtype == np.float32
    assert (out[:, :31] == 0).all() and (out[:, 33:] == 1).all()  # the cut is in the middle
    assert fit_transform((40, 80), (64, 64), "crop") == (1.6, -32.0, 0.0)


@pytest.mark.parametrize("policy", ["pad", "crop"])
@pytest.mark.parametrize("src_hw, dst_hw", [((40, 80), (64, 64)), ((90, 60), (48, 96)), ((30, 30), (60, 90))])
def test_fit_transform_maps_a_point(policy, src_hw, dst_hw):
    src = np.zeros(src_hw, np.float32)
    y0, x0 = src_hw[0] // 3, src_hw[1] // 2  # a 4x4 dot, inside the crop window in every case
    src[y0 : y0 + 4, x0 : x0 + 4] = 1.0
    out = fit_frames(src, *dst_hw, policy=policy)
    scale, ox, oy = fit_transform(src_hw, dst_hw, policy)
    ys, xs = np.mgrid[0 : dst_hw[0], 0 : dst_hw[1]]
    # centroid in continuous coordinates (pixel centres at i + 0.5)
    cy, cx = ((ys + 0.5) * out).sum() / out.sum(), ((xs + 0.5) * out).sum() / out.sum()
    assert cx == pytest.approx((x0 + 2) * scale + ox, abs=0.5)
    assert cy == pytest.approx((y0 + 2) * scale + oy, abs=0.5)


def test_fit_frames_shapes_and_dtypes():
    assert fit_frames(np.zeros((40, 80, 3), np.uint8), 64, 64).shape == (64, 64, 3)
    assert fit_frames(np.zeros((5, 40, 80), np.float32), 64, 64).shape == (5, 64, 64)
    assert fit_frames(np.zeros((40, 80, 1), np.float32), 64, 64).shape == (64, 64, 1)
    m = fit_frames(np.ones((2, 40, 80), bool), 64, 64)
    assert m.dtype == bool and m[:, 32].all() and not m[:, 0].any()
    same = np.random.default_rng(0).integers(0, 255, (2, 64, 64, 3), np.uint8)
    assert (fit_frames(same, 64, 64) == same).all()
    with pytest.raises(InputError, match="policy"):
        fit_frames(same, 64, 64, "stretch")


def test_working_size():
    assert working_size(576, 768) == (384, 512)
    assert working_size(1080, 1920) == (288, 512)
    assert working_size(1920, 1080) == (512, 288)
    assert working_size(512, 512) == (512, 512)
    assert working_size(100, 100, long_side=64) == (64, 64)
    h, w = working_size(333, 1000, long_side=480, multiple=32)
    assert h % 32 == 0 and w == 480


def _x264_options(path) -> str:
    data = open(path, "rb").read()
    start = data.index(b"x264 - core")
    return data[start:data.index(b"\0", start)].decode()


@pytest.mark.parametrize("width", [48, 64])
def test_same_frames_same_file_without_mbtree(tmp_path, width):
    # x264's mbtree reads an uninitialised stack value (valgrind; see video.X264_DETERMINISTIC): the same frames
    # then gave different files within one process, so write_video turns it off
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (9, 32, width, 3), dtype=np.uint8)
    first = write_video(tmp_path / "a.mp4", frames, fps=8)
    assert " mbtree=0 " in _x264_options(first)
    second = write_video(tmp_path / "b.mp4", frames, fps=8)
    assert open(first, "rb").read() == open(second, "rb").read()
