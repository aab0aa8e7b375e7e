"""Checks that two separately built or loaded models hold the same weights and compute the same maths.

Two model instances with bit-identical parameters can give outputs that differ in the last bits: CPU matrix kernels
choose their blocking, and so the order of the float32 additions, by the memory alignment of their operands, and
weights loaded from a safetensors file are views at the file's byte offsets rather than fresh 64-byte-aligned
allocations. Measured on the tiny test models (torch 2.13 CPU): up to 3.6e-7 absolute on transformer outputs of
magnitude ~1, and exactly 0 once the loaded weights are copied into fresh memory.

So a round trip is checked twice: the parameters bitwise (what saving and loading promise) and the outputs within a
tolerance (what the maths promises). Where the code promises bit-identity of one computation run twice (the
sync-free sampler against diffusers' step, a resumed run against an uninterrupted one) the tests keep exact checks.
"""

import numpy as np
import torch

# Measured in the round-trip tests: at most 3.6e-7 on transformer outputs and 9.8e-7 on decoded frames (2 denoising
# steps), for values of magnitude ~1. The smallest real break they guard against that was tried, one base weight
# moved by 1e-3 after loading (transformer_blocks.1.attn1.to_v), moves those outputs by 1.1e-4 to 4.1e-4; cue weights
# left at zero move them by 3.6e-2 to 6.1e-2. 1e-5 sits a decade from each side.
OUTPUT_ATOL = 1e-5


def assert_same_parameters(model, other, keys=None):
    """Every parameter and buffer of ``model`` (or only ``keys``) is present in ``other`` and bitwise equal."""
    ours, theirs = model.state_dict(), other.state_dict()
    keys = sorted(ours) if keys is None else sorted(keys)
    missing = [k for k in keys if k not in theirs]
    assert not missing, f"not in the other model: {missing[:5]}"
    differ = [k for k in keys if not torch.equal(ours[k], theirs[k])]
    assert not differ, f"parameters differ: {differ[:5]}"


def assert_same_outputs(actual, expected, atol=OUTPUT_ATOL):
    """Outputs of the same maths on the same inputs: equal up to float32 re-association (see the module text)."""
    if isinstance(actual, np.ndarray) or isinstance(expected, np.ndarray):
        actual, expected = torch.as_tensor(np.asarray(actual)), torch.as_tensor(np.asarray(expected))
    torch.testing.assert_close(actual, expected, rtol=0, atol=atol)
