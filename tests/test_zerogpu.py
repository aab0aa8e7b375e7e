"""ZeroGPU without ZeroGPU: the duration the app asks spaces.GPU for (ui.generation.gpu_duration), and the GPU
function's arguments crossing a process boundary (ZeroGPU pickles them into its worker process)."""

import pickle

import numpy as np

from directanimator.tiny import tiny_driving_cues
from ui.generation import DEMO_MODEL, FOLDER_MODEL, TINY_MODEL, gpu_duration

KEY = (FOLDER_MODEL, "/models/directanimator", "", "group offload")


def _settings(**kw):
    base = dict(prompt="a person dancing", negative_prompt="blurry", num_frames=49, height=512, width=512,
                num_inference_steps=50, guidance_scale=6.0, cue_scale=(1.0, 1.0), seed=3, cache=None)
    return {**base, **kw}


def test_gpu_duration_follows_the_work():
    cues = tiny_driving_cues(num_frames=9)
    assert gpu_duration((DEMO_MODEL, "", "", "none"), cues, _settings()) == 60
    assert gpu_duration((TINY_MODEL, "", "", "none"), cues, _settings()) == 60
    base = gpu_duration(KEY, cues, _settings(num_frames=81, height=720, width=720))
    assert 60 < base < 300
    assert gpu_duration(KEY, cues, _settings(num_frames=81, height=720, width=720, num_inference_steps=100)) > base
    assert gpu_duration(KEY, cues, _settings(num_frames=81, height=720, width=720, guidance_scale=1.0)) < base
    assert gpu_duration(KEY, cues, _settings(num_frames=49, height=720, width=720)) < base
    assert gpu_duration(KEY, cues, _settings(num_frames=121, height=720, width=1280)) == 300  # capped


def test_gpu_function_arguments_cross_a_process_boundary():
    cues = tiny_driving_cues(num_frames=9)
    args = (KEY, cues, _settings(cache="first-block"))
    key, back, settings = pickle.loads(pickle.dumps(args))
    assert key == KEY and settings == args[2]
    np.testing.assert_array_equal(back.pose_cue, cues.pose_cue)
    np.testing.assert_array_equal(back.reference, cues.reference)
    assert gpu_duration(key, back, settings) == gpu_duration(*args)
