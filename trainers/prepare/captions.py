"""Captions of the clips from a vision-language model of the Qwen2-VL family (the paper captions its clips with
Qwen2-VL), loaded with ``transformers`` from a folder or a Hub repo id (``--caption-model``), never with remote
code: a few frames of each clip go in as images, in Qwen2-VL's chat format, and the greedy answer is the caption.
Clips are captioned in batches (one ``generate`` call per batch, left-padded), on the GPU when there is one.

Only the tokenizer, the image processor and the model are loaded (not the multimodal ``AutoProcessor``, whose
video part needs torchvision); the prompt is written here with as many image tokens as the image processor's
patch grid asks for, as Qwen2-VL's own processor does.
"""

from __future__ import annotations


import cv2
import numpy as np

from directanimator.errors import InputError

__all__ = ["CAPTION_FAMILIES", "DEFAULT_PROMPT", "Captioner", "check_caption_model"]

CAPTION_FAMILIES = ("qwen2_vl", "qwen2_5_vl")
"""``model_type`` s of the configs ``--caption-model`` accepts."""

DEFAULT_PROMPT = "Describe the person in these frames of a video and what they are doing, in one sentence."
FRAME_SIDE = 336
"""Long side of the frames shown to the model (Qwen2-VL turns 28x28 pixels into one token: 336 px is 144 a frame)."""


def check_caption_model(name_or_path: str):
    """The config of ``name_or_path`` when it is a Qwen2-VL-family model that can be found, else ``InputError``
    (cheap: only the config is read, so the CLI checks it before writing anything)."""
    from transformers import AutoConfig

    what = f"--caption-model {name_or_path}"
    try:
        config = AutoConfig.from_pretrained(name_or_path)
    except (OSError, ValueError) as exc:
        reason = " ".join(str(exc).split())[:200]
        raise InputError(f"{what} cannot be loaded ({reason}); give a Qwen2-VL model folder or Hub repo id "
                         "(e.g. Qwen/Qwen2-VL-7B-Instruct, downloaded first when offline)") from None
    if config.model_type not in CAPTION_FAMILIES:
        raise InputError(f"{what} is a {config.model_type!r} model; captions need one of the Qwen2-VL family "
                         f"({', '.join(CAPTION_FAMILIES)})")
    return config


class Captioner:
    """A Qwen2-VL-family model that captions clips.

    Args:
        name_or_path: a model folder or Hub repo id (``HF_HUB_OFFLINE`` and the cache apply).
        frames: frames of a clip shown to the model, spread evenly over it.
        max_new_tokens: longest caption in tokens.
        prompt: the question asked about every clip.
        device: where to run (default: CUDA when available, in bfloat16; else the CPU in float32).

    Raises:
        InputError: the model cannot be found or loaded, or is not of the Qwen2-VL family.
    """

    def __init__(self, name_or_path: str, frames: int = 4, max_new_tokens: int = 40, prompt: str = DEFAULT_PROMPT,
                 device: str | None = None):
        import torch
        from transformers import AutoImageProcessor, AutoModelForImageTextToText, AutoTokenizer

        self.frames, self.max_new_tokens, self.prompt = int(frames), int(max_new_tokens), prompt
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        what = f"--caption-model {name_or_path}"
        config = check_caption_model(name_or_path)
        dtype = torch.bfloat16 if self.device.startswith("cuda") else torch.float32
        try:
            self.tokenizer = AutoTokenizer.from_pretrained(name_or_path, padding_side="left")
            self.image_processor = AutoImageProcessor.from_pretrained(name_or_path)
            self.model = AutoModelForImageTextToText.from_pretrained(name_or_path, dtype=dtype).to(self.device).eval()
        except (OSError, ValueError) as exc:
            reason = " ".join(str(exc).split())[:200]
            raise InputError(f"{what} cannot be loaded ({reason}); re-download it or give another folder") from None
        self.merge = int(getattr(self.image_processor, "merge_size", None)
                         or config.vision_config.spatial_merge_size)

    def _images(self, frames: np.ndarray) -> list:
        from PIL import Image

        picks = np.linspace(0, len(frames) - 1, min(self.frames, len(frames))).round().astype(int)
        out = []
        for frame in frames[picks]:
            h, w = frame.shape[:2]
            s = min(1.0, FRAME_SIDE / max(h, w))
            if s < 1.0:
                frame = cv2.resize(frame, (max(28, round(w * s)), max(28, round(h * s))), interpolation=cv2.INTER_AREA)
            out.append(Image.fromarray(np.ascontiguousarray(frame)))
        return out

    def caption(self, clips: list[np.ndarray]) -> list[str]:
        """One caption per clip (``[T, H, W, 3]`` uint8 frames each), in one batch."""
        import torch

        if not clips:
            return []
        images = [self._images(np.asarray(c)) for c in clips]
        pixels = self.image_processor(images=[im for group in images for im in group], return_tensors="pt")
        grids = pixels["image_grid_thw"]
        texts, k = [], 0
        for group in images:
            parts = []
            for _ in group:
                tokens = int(grids[k].prod()) // (self.merge ** 2)
                parts.append("<|vision_start|>" + "<|image_pad|>" * tokens + "<|vision_end|>")
                k += 1
            texts.append("<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
                         + "".join(parts) + self.prompt + "<|im_end|>\n<|im_start|>assistant\n")
        encoded = self.tokenizer(texts, return_tensors="pt", padding=True)
        inputs = {"input_ids": encoded["input_ids"], "attention_mask": encoded["attention_mask"],
                  "pixel_values": pixels["pixel_values"].to(self.model.dtype), "image_grid_thw": grids}
        with torch.no_grad():
            out = self.model.generate(**{k: v.to(self.device) for k, v in inputs.items()},
                                      max_new_tokens=self.max_new_tokens, do_sample=False)
        answers = self.tokenizer.batch_decode(out[:, encoded["input_ids"].shape[1]:], skip_special_tokens=True)
        return [" ".join(a.split()) for a in answers]
