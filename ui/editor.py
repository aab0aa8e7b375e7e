"""The mask editors' values (``gr.ImageEditor``): an image with its mask as a painted layer, and the edited mask
read back. Plain arrays in and out."""

from __future__ import annotations

import numpy as np

# directanimator.cues imports torch (about a second): imported where used, so the page starts without it; the
# editors only fill once cues exist, and by then it is loaded.


def editor_value(image: np.ndarray, mask: np.ndarray, color=None, alpha: int = 140) -> dict:
    """An ImageEditor value: the image as background and the mask as a painted RGBA layer (``color``, default the
    mask colour of the cue views), both padded to a centred square. Users add to the mask with the brush and remove
    with the eraser; ``mask_from_editor`` reads the layer back. The square matches the editor's square canvas:
    gradio 6 draws a layer off-place when the background is smaller than the canvas."""
    from directanimator.cues.preview import MASK_COLOUR

    side = max(image.shape[:2])
    top, left = (side - image.shape[0]) // 2, (side - image.shape[1]) // 2
    background = np.full((side, side, 3), 255, np.uint8)
    background[top : top + image.shape[0], left : left + image.shape[1]] = image
    layer = np.zeros((side, side, 4), np.uint8)
    on = np.zeros((side, side), bool)
    on[top : top + image.shape[0], left : left + image.shape[1]] = np.asarray(mask) > 0.5
    layer[on, :3] = MASK_COLOUR if color is None else color
    layer[on, 3] = alpha
    return {"background": background, "layers": [layer], "composite": None}


def mask_from_editor(value, hw) -> np.ndarray | None:
    """The edited mask [H,W] float32 in {0,1} from an ImageEditor value (union of the alpha of all layers, the
    centred square of ``editor_value`` cropped back to ``hw``); None when the editor holds no layers."""
    from directanimator.cues.preview import fit_to

    if not value or not value.get("layers"):
        return None
    alpha = None
    for layer in value["layers"]:
        if layer is None:
            continue
        a = np.asarray(layer)
        a = a[..., 3] if a.ndim == 3 and a.shape[2] == 4 else (a.max(axis=-1) if a.ndim == 3 else a)
        alpha = a if alpha is None else np.maximum(alpha, fit_to(a, alpha.shape))
    if alpha is None:
        return None
    h, w = int(hw[0]), int(hw[1])
    side = max(h, w)
    alpha = fit_to(alpha.astype(np.uint8), (side, side))
    top, left = (side - h) // 2, (side - w) // 2
    return (alpha[top : top + h, left : left + w] > 0).astype(np.float32)
