"""Streaming decoding: the VAE batch by batch equals one vae.decode call (tiled or not), the pipeline's
iter_frames equals output_type="np", and write_video encodes an iterator of chunks like the whole array."""

import numpy as np
import pytest
import torch

from directanimator.decoding import iter_decode
from directanimator.errors import InputError
from directanimator.tiny import TINY_LATENT_CHANNELS, make_tiny_pipeline, tiny_driving_cues, tiny_vae
from directanimator.video import read_video, to_uint8_frames, write_video


@pytest.mark.parametrize("latent_frames", [1, 2, 3, 4, 7])
def test_iter_decode_equals_vae_decode_bit_for_bit(latent_frames):
    vae = tiny_vae()
    z = torch.randn(1, TINY_LATENT_CHANNELS, latent_frames, 4, 6, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        whole = vae.decode(z).sample
    chunks = list(iter_decode(vae, z))
    assert len(chunks) == max(latent_frames // vae.num_latent_frames_batch_size, 1)
    assert torch.equal(torch.cat(chunks, dim=2), whole)


def test_iter_decode_equals_tiled_decode_bit_for_bit():
    vae = tiny_vae()
    # 32 px tiles (4 latents, stepping by 3) on 8 x 10 latents: a 3 x 4 grid of blended tiles
    vae.enable_tiling(tile_sample_min_height=32, tile_sample_min_width=32)
    z = torch.randn(1, TINY_LATENT_CHANNELS, 5, 8, 10, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        whole = vae.decode(z).sample
    assert whole.shape[2] == 17
    streamed = torch.cat(list(iter_decode(vae, z)), dim=2)
    assert torch.equal(streamed, whole)
    vae.disable_tiling()
    with torch.no_grad():
        untiled = vae.decode(z).sample
    assert not torch.equal(untiled, whole)  # the tiles really were blended: the test sees the tiled path


def test_pipeline_iter_frames_equals_output_type_np():
    pipe = make_tiny_pipeline()
    cues = tiny_driving_cues(num_frames=23)
    kwargs = dict(cues=cues, num_inference_steps=2, num_frames=22, window_frames=13, window_overlap=8)
    frames = pipe(**kwargs, generator=torch.Generator().manual_seed(0), output_type="np").frames[0]
    latents = pipe(**kwargs, generator=torch.Generator().manual_seed(0), output_type="latent").frames
    chunks = list(pipe.iter_frames(latents, num_frames=22))
    # one VAE batch (2 latents: 8 frames, the first 5 + 4) at a time, never the whole video
    assert len(chunks) > 1 and all(c.dtype == np.uint8 and len(c) <= 9 for c in chunks)
    assert np.array_equal(np.concatenate(chunks), to_uint8_frames(frames))
    assert sum(len(c) for c in pipe.iter_frames(latents)) == 25  # the padded 1 + 4k frames without num_frames
    with pytest.raises(InputError, match="one video"):
        next(pipe.iter_frames(latents[0]))


def _frames(n, h=32, w=48, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, h, w, 3), dtype=np.uint8)


def test_write_video_from_an_iterator_equals_the_array(tmp_path):
    frames = _frames(11)
    whole = write_video(tmp_path / "whole.mp4", frames, fps=8)
    seen = []
    streamed = write_video(tmp_path / "streamed.mp4", iter([frames[:4], frames[4:9], frames[9:]]), fps=8,
                           num_frames=11, progress=lambda f, d="": seen.append(f))
    assert open(whole, "rb").read() == open(streamed, "rb").read()
    assert seen and seen[-1] == 1.0 and seen == sorted(seen)
    assert read_video(streamed).frames.shape == (11, 32, 48, 3)


def test_write_video_iterator_errors_leave_no_file(tmp_path):
    out = tmp_path / "bad.mp4"
    with pytest.raises(InputError, match="no frames to write"):
        write_video(out, iter([]), fps=8)
    with pytest.raises(InputError, match="share a size"):
        write_video(out, iter([_frames(3), _frames(2, h=16)]), fps=8)
    with pytest.raises(InputError, match="fps"):
        write_video(out, iter([_frames(3)]), fps=0)
    assert list(tmp_path.iterdir()) == []
