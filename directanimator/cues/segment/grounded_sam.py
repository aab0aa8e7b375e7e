"""The paper's segmentation backend: Grounding DINO finds "person" on a key frame, SAM2 propagates the mask
through the clip (transformers' classes; the user downloads the weights, nothing is fetched here)."""

from __future__ import annotations

import os

import numpy as np
import torch
import torch.nn.functional as F
from huggingface_hub import snapshot_download
from huggingface_hub.constants import HF_HUB_CACHE
from PIL import Image

from directanimator.errors import InputError

from .protocol import Progress, Segmentation, _check_frames, _report

__all__ = ["GroundedSamSegmenter", "resolve_weights"]

_DOWNLOAD_ROOT = "~/.cache/huggingface/hub"


def resolve_weights(model: str, what: str, cache_dir: str | None = None) -> str:
    """Return a local folder holding ``model`` (a folder path or a Hub repo id already in the HF cache).

    Args:
        model: local folder, or a Hub repo id looked up in the Hugging Face cache (never downloaded here).
        what: the model's name for error messages.
        cache_dir: Hugging Face cache folder (default: the standard one, ``HF_HUB_CACHE``).

    Raises:
        InputError: when the weights are not on this machine, naming the command that downloads them.
    """
    path = os.path.expanduser(model)
    if os.path.isdir(path):
        folder = path
    else:
        cache = cache_dir or HF_HUB_CACHE
        hint = (f"{what} weights '{model}' are not on this machine: run `hf download {model}"
                + (f" --cache-dir {cache}" if cache_dir else "")
                + f"` (or `huggingface-cli download {model}`; saved under {cache}) or pass a local folder")
        if "/" not in model or model.count("/") > 1 or model.startswith((".", "/", "~")):
            raise InputError(f"{what} weights: folder '{model}' does not exist")
        try:
            folder = snapshot_download(model, local_files_only=True, cache_dir=cache_dir)
        except Exception as exc:  # LocalEntryNotFoundError, offline errors, bad repo ids
            raise InputError(hint) from exc
    if not os.path.exists(os.path.join(folder, "config.json")):
        raise InputError(f"{what} weights folder '{folder}' has no config.json: download the full model ({model})")
    if not any(f.endswith(".safetensors") for f in os.listdir(folder)):
        raise InputError(f"{what} weights folder '{folder}' has no .safetensors file; only safetensors are loaded")
    return folder


class GroundedSamSegmenter:
    """The paper's segmentation: text-prompted detection + SAM2 masks propagated through the clip.

    Grounding DINO (``GroundingDinoForObjectDetection``) finds ``prompt`` on a few candidate key frames; the best box
    prompts ``Sam2VideoModel`` on its frame, and the mask is propagated forwards and backwards through the clip.
    A single image is a one-frame clip. Weights are read from local folders or the Hugging Face cache with
    safetensors; nothing is fetched implicitly. transformers' classes are used instead of the ``groundingdino-py``
    and ``segment-anything`` packages, which need torchvision (it does not import beside CPU torch 2.13).

    Args:
        detector: Grounding DINO repo id or local folder (needs the PIL image processor files and the tokenizer).
        sam: SAM2 (2.1) repo id or local folder; the same checkpoint loads into ``Sam2VideoModel``.
        prompt: text prompt for the detector.
        box_threshold: minimum detection score for a person box.
        text_threshold: minimum text-token score (Grounding DINO post-processing).
        key_frames: how many evenly spaced frames are tried as the key frame (the best-scoring box wins).
        device: torch device; default CUDA when available.
        dtype: model dtype (float32 on CPU).
        cache_dir: Hugging Face cache folder to look for repo ids in (default: the standard cache).
    """

    name = "grounded-sam"

    def __init__(
        self,
        detector: str = "IDEA-Research/grounding-dino-tiny",
        sam: str = "facebook/sam2.1-hiera-tiny",
        prompt: str = "person",
        box_threshold: float = 0.35,
        text_threshold: float = 0.25,
        key_frames: int = 4,
        device: str | None = None,
        dtype=None,
        cache_dir: str | None = None,
    ):
        # transformers takes seconds to import and only this optional backend needs it
        from transformers import (AutoTokenizer, GroundingDinoForObjectDetection, GroundingDinoImageProcessorPil,
                                  GroundingDinoProcessor, Sam2VideoModel)

        det_dir = resolve_weights(detector, "Grounding DINO", cache_dir)
        sam_dir = resolve_weights(sam, "SAM2", cache_dir)
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.dtype = dtype or torch.float32
        # The PIL image processor: the default (fast) one needs torchvision.
        self.processor = GroundingDinoProcessor(
            image_processor=GroundingDinoImageProcessorPil.from_pretrained(det_dir),
            tokenizer=AutoTokenizer.from_pretrained(det_dir),
        )
        self.detector = GroundingDinoForObjectDetection.from_pretrained(det_dir, use_safetensors=True)
        self.detector.to(self.device).eval()
        self.sam = Sam2VideoModel.from_pretrained(sam_dir, use_safetensors=True, dtype=self.dtype)
        self.sam.to(self.device).eval()
        self.prompt = prompt.strip().rstrip(".") + "."
        self.box_threshold = float(box_threshold)
        self.text_threshold = float(text_threshold)
        self.key_frames = max(1, int(key_frames))
        self.sam_size = int(self.sam.config.image_size)

    def detect(self, image: np.ndarray) -> tuple[np.ndarray, float] | None:
        """Best ``prompt`` box ``(x0, y0, x1, y1)`` in ``image`` pixels and its score, or None."""

        h, w = image.shape[:2]
        inputs = self.processor(images=Image.fromarray(image), text=self.prompt, return_tensors="pt").to(self.device)
        with torch.inference_mode():
            outputs = self.detector(**inputs)
        result = self.processor.post_process_grounded_object_detection(
            outputs, inputs["input_ids"], threshold=self.box_threshold, text_threshold=self.text_threshold,
            target_sizes=[(h, w)],
        )[0]
        if len(result["scores"]) == 0:
            return None
        i = int(torch.argmax(result["scores"]))
        box = result["boxes"][i].float().cpu().numpy()
        box = np.clip(box, 0, [w, h, w, h]).astype(np.float32)
        if box[2] - box[0] < 1 or box[3] - box[1] < 1:
            return None
        return box, float(result["scores"][i])

    def _pixel_values(self, frames: np.ndarray):

        # SAM2's own preprocessing: square resize, [0,1], ImageNet mean/std (done here: its video processor needs
        # torchvision).
        x = torch.from_numpy(frames).permute(0, 3, 1, 2).float().div_(255.0)
        x = F.interpolate(x, size=(self.sam_size, self.sam_size), mode="bilinear", align_corners=False)
        mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
        std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
        return ((x - mean) / std).to(self.dtype)

    def segment_video(self, frames: np.ndarray, progress: Progress = None) -> Segmentation:
        """Detect the person on the best key frame and propagate its SAM2 mask through the clip.

        Args:
            frames: uint8 ``[T, H, W, 3]`` RGB clip.
            progress: optional ``progress(fraction, desc)`` callback.
        """
        from transformers import Sam2VideoInferenceSession  # lazy: see the constructor

        frames = _check_frames(frames, 4, "frames")
        t_len, h, w = frames.shape[:3]
        masks = np.zeros((t_len, h, w), np.float32)
        scores = np.zeros(t_len, np.float32)
        candidates = sorted(set(np.linspace(0, t_len - 1, min(self.key_frames, t_len)).round().astype(int)))
        best = None
        for i, t in enumerate(candidates):
            found = self.detect(frames[t])
            if found is not None and (best is None or found[1] > best[2]):
                best = (t, found[0], found[1])
            _report(progress, 0.1 * (i + 1) / len(candidates), "detecting person (Grounding DINO)")
        if best is None:
            return Segmentation(masks=masks, scores=scores)
        key, box, _ = best

        session = Sam2VideoInferenceSession(
            video=self._pixel_values(frames), video_height=h, video_width=w, inference_device=self.device,
            inference_state_device=self.device, video_storage_device=self.device, dtype=self.dtype,
        )
        obj_idx = session.obj_id_to_idx(1)
        scale = np.array([self.sam_size / w, self.sam_size / h] * 2, np.float32)
        coords = torch.from_numpy(box * scale).view(1, 1, 2, 2)
        labels = torch.tensor([[[2, 3]]], dtype=torch.int32)  # SAM's labels for a box's two corners
        session.add_point_inputs(obj_idx, key, {"point_coords": coords, "point_labels": labels})
        session.obj_with_new_inputs = [1]

        done = 0

        def keep(output):
            nonlocal done
            t = int(output.frame_idx)
            logits = output.pred_masks[:1].float()
            logits = F.interpolate(logits.reshape(1, 1, *logits.shape[-2:]), size=(h, w), mode="bilinear",
                                   align_corners=False)[0, 0]
            prob = torch.sigmoid(logits).cpu().numpy()
            present = 1.0
            if output.object_score_logits is not None:
                present = float(torch.sigmoid(output.object_score_logits.float().reshape(-1)[0]))
            on = prob > 0.5
            if on.any():
                masks[t] = prob
                # Quality: is the object there (SAM2's occlusion head) and how sure is the mask where it says
                # "person". (The detection score only chose the key frame.)
                scores[t] = np.clip(present * float(prob[on].mean()), 0.0, 1.0)
            else:
                masks[t] = 0.0
                scores[t] = 0.0
            done += 1
            _report(progress, 0.1 + 0.9 * done / t_len, "propagating mask (SAM2)")

        with torch.inference_mode():
            keep(self.sam(inference_session=session, frame_idx=key))
            for output in self.sam.propagate_in_video_iterator(session, start_frame_idx=key):
                if int(output.frame_idx) != key:
                    keep(output)
            if key > 0:
                for output in self.sam.propagate_in_video_iterator(session, start_frame_idx=key, reverse=True):
                    if int(output.frame_idx) != key:
                        keep(output)
        return Segmentation(masks=masks, scores=scores.astype(np.float32))

    def segment_image(self, image: np.ndarray) -> Segmentation:
        """Segment the person in one uint8 ``[H, W, 3]`` RGB image (a one-frame clip); returns ``T == 1``."""
        image = _check_frames(image, 3, "image")
        return self.segment_video(image[None])
