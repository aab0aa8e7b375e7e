"""Tiny stand-ins for the evaluation networks' published weight files, in their published formats and layouts,
built at random init: torchvision's AlexNet state dict and the lpips linear layers (``.pth``), an ArcFace ONNX
model (input ``[N, 3, 112, 112]``, 512-d output), an SCRFD ONNX detector with keypoints and the FVD I3D state dict."""

from __future__ import annotations

import numpy as np
import torch

#: The published layout of torchvision's ``alexnet-owt-7be5be79.pth`` (features and classifier).
ALEXNET_LAYOUT = {
    "features.0.weight": (64, 3, 11, 11), "features.0.bias": (64,),
    "features.3.weight": (192, 64, 5, 5), "features.3.bias": (192,),
    "features.6.weight": (384, 192, 3, 3), "features.6.bias": (384,),
    "features.8.weight": (256, 384, 3, 3), "features.8.bias": (256,),
    "features.10.weight": (256, 256, 3, 3), "features.10.bias": (256,),
    "classifier.1.weight": (4096, 9216), "classifier.1.bias": (4096,),
    "classifier.4.weight": (4096, 4096), "classifier.4.bias": (4096,),
    "classifier.6.weight": (1000, 4096), "classifier.6.bias": (1000,),
}
#: The published layout of the lpips wheel's ``weights/v0.1/alex.pth``.
LPIPS_ALEX_LAYOUT = {f"lin{k}.model.1.weight": (1, c, 1, 1) for k, c in enumerate((64, 192, 384, 256, 256))}


def write_lpips_weights(folder, seed: int = 0, classifier: bool = False):
    """Random weights in the published layouts: ``folder/alexnet-owt-7be5be79.pth`` and ``folder/lpips/alex.pth``.
    The classifier (240 MB in the real file, ignored by LPIPS) is left out unless asked for."""
    g = torch.Generator().manual_seed(seed)
    alex = {k: torch.randn(s, generator=g) * 0.05 for k, s in ALEXNET_LAYOUT.items()
            if classifier or k.startswith("features.")}
    lins = {k: torch.rand(s, generator=g) for k, s in LPIPS_ALEX_LAYOUT.items()}
    (folder / "lpips").mkdir(parents=True, exist_ok=True)
    torch.save(alex, folder / "alexnet-owt-7be5be79.pth")
    torch.save(lins, folder / "lpips" / "alex.pth")
    return folder / "alexnet-owt-7be5be79.pth", folder / "lpips" / "alex.pth"


def write_arcface_onnx(path, seed: int = 0, dim: int = 512, batch="N"):
    """An ArcFace-shaped ONNX model: input ``input.1 [N, 3, 112, 112]`` -> 16x16 average pool -> flatten ->
    MatMul with a random ``[147, dim]`` matrix -> output ``[N, dim]``. Returns the matrix (to recompute it)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = np.random.default_rng(seed).normal(size=(3 * 7 * 7, dim)).astype(np.float32)
    nodes = [helper.make_node("AveragePool", ["input.1"], ["pooled"], kernel_shape=[16, 16], strides=[16, 16]),
             helper.make_node("Flatten", ["pooled"], ["flat"], axis=1),
             helper.make_node("MatMul", ["flat", "w"], ["683"])]
    graph = helper.make_graph(nodes, "arcface_like",
                              [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, [batch, 3, 112, 112])],
                              [helper.make_tensor_value_info("683", TensorProto.FLOAT, [batch, dim])],
                              initializer=[numpy_helper.from_array(w, "w")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return w


def arcface_reference_forward(w: np.ndarray, crop: np.ndarray) -> np.ndarray:
    """What ``write_arcface_onnx``'s model gives for one aligned uint8 RGB crop ``[112, 112, 3]``, with
    InsightFace's normalisation ``(x - 127.5) / 127.5``, computed in numpy."""
    x = (crop.astype(np.float64) - 127.5) / 127.5
    pooled = x.transpose(2, 0, 1).reshape(3, 7, 16, 7, 16).mean(axis=(2, 4))
    return pooled.reshape(-1) @ w.astype(np.float64)


def write_scrfd_onnx(path, size: int, keypoints: np.ndarray, stride: int = 16, col: int = 2, row: int = 2,
                     with_keypoints: bool = True):
    """An SCRFD-layout ONNX detector (9 outputs: scores, box distances, 5 keypoints for strides 8/16/32, 2 anchors;
    6 without keypoints) that reports one face, at anchor 0 of cell (col, row) of ``stride``, with ``keypoints`` ``[5, 2]`` (canvas
    pixels) and a box 2 strides around the anchor centre."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    tensors = {}
    for s in (8, 16, 32):
        cells = (size // s) ** 2 * 2
        score, dist, kps = np.full((cells, 1), 0.01, np.float32), np.ones((cells, 4), np.float32), np.zeros((cells, 10), np.float32)
        if s == stride:
            i = (row * (size // s) + col) * 2
            centre = np.array([col * s, row * s], np.float32)
            score[i], dist[i] = 0.9, 2.0
            kps[i] = ((np.asarray(keypoints, np.float32) - centre) / s).reshape(-1)
        tensors.update({f"score_{s}": score, f"bbox_{s}": dist, f"kps_{s}": kps})
    nodes, outputs = [], []
    for kind in ("score", "bbox", "kps") if with_keypoints else ("score", "bbox"):
        for s in (8, 16, 32):
            name = f"{kind}_{s}"
            nodes.append(helper.make_node("Constant", [], [name], value=numpy_helper.from_array(tensors[name])))
            outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, list(tensors[name].shape)))
    graph = helper.make_graph(nodes, "scrfd_like", [helper.make_tensor_value_info(
        "input.1", TensorProto.FLOAT, [1, 3, size, size])], outputs)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))


def write_inception_weights(path, seed: int = 0):
    """Random weights in the layout of pytorch-fid's ``pt_inception-2015-12-05-6726825d.pth`` (no BatchNorm
    counters, the 1008-class fc included), BatchNorm statistics kept near identity so activations stay finite."""
    from directanimator.metrics.inception import FIDInceptionV3

    torch.manual_seed(seed)
    state = {k: v for k, v in FIDInceptionV3().state_dict().items() if not k.endswith("num_batches_tracked")}
    for k, v in state.items():
        if k.endswith("running_var"):
            v.fill_(1.0)
        elif k.endswith("conv.weight"):
            v.mul_(0.5)
    torch.save(state, path)
    return path


def write_i3d_weights(path, seed: int = 0):
    """Random weights in the layout of the plain PyTorch I3D state dict ``i3d_pretrained_400.pt`` (no BatchNorm
    counters), written with ``torch.save``."""
    from directanimator.metrics.i3d import InceptionI3D

    torch.manual_seed(seed)
    state = {k: v for k, v in InceptionI3D().state_dict().items() if not k.endswith("num_batches_tracked")}
    torch.save(state, path)
    return path


def write_yolox_onnx(path, box):
    """A DWPose-detector-layout ONNX model (input ``images [1, 3, 640, 640]``, output ``output [1, 8400, 85]``) that
    reports one person (objectness 0.9, class-0 score 0.9) with ``box`` ``[x1, y1, x2, y2]`` in 640-canvas pixels,
    encoded at the stride-32 cell holding its centre as YOLOX encodes boxes."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    out = np.zeros((1, 8400, 85), np.float32)
    x1, y1, x2, y2 = box
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    col, row = int(cx // 32), int(cy // 32)
    i = 80 * 80 + 40 * 40 + row * 20 + col
    out[0, i, :4] = [cx / 32 - col, cy / 32 - row, np.log((x2 - x1) / 32), np.log((y2 - y1) / 32)]
    out[0, i, 4], out[0, i, 5] = 0.9, 0.9
    node = helper.make_node("Constant", [], ["output"], value=numpy_helper.from_array(out))
    graph = helper.make_graph([node], "yolox_like",
                              [helper.make_tensor_value_info("images", TensorProto.FLOAT, [1, 3, 640, 640])],
                              [helper.make_tensor_value_info("output", TensorProto.FLOAT, [1, 8400, 85])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))


def write_dwpose_onnx(path, fixed: dict):
    """A DWPose-pose-layout ONNX model (input ``input [1, 3, 384, 288]``, outputs ``simcc_x [1, 133, 576]`` and
    ``simcc_y [1, 133, 768]``) whose keypoints follow the image: every keypoint's SimCC vectors are the crop's
    column / row brightness profiles (channel mean, each pixel repeated over its 2 bins, + 10), so it lands on the
    brightest column and row; the keypoints in ``fixed`` (``{index: (x, y)}`` in crop pixels) get a bump of 100 at
    that bin instead, so they stay put."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    const = {}
    for axis, n in (("x", 288), ("y", 384)):
        bias = np.zeros((1, 133, 2 * n), np.float32)
        for k, xy in fixed.items():
            bias[0, k, int(round(xy[0 if axis == "x" else 1] * 2))] = 100.0
        const[f"bias_{axis}"] = bias
        const[f"shape1_{axis}"] = np.array([1, 1, n, 1], np.int64)
        const[f"shape2_{axis}"] = np.array([1, 1, 2 * n], np.int64)
        const[f"expand_{axis}"] = np.array([1, 133, 2 * n], np.int64)
    const["ten"] = np.array(10.0, np.float32)
    nodes = [helper.make_node("ReduceMean", ["input"], ["gray"], axes=[1], keepdims=1),
             helper.make_node("ReduceMean", ["gray"], ["prof_x"], axes=[2], keepdims=0),
             helper.make_node("ReduceMean", ["gray"], ["prof_y"], axes=[3], keepdims=0)]
    for axis in ("x", "y"):
        nodes += [helper.make_node("Reshape", [f"prof_{axis}", f"shape1_{axis}"], [f"col_{axis}"]),
                  helper.make_node("Concat", [f"col_{axis}", f"col_{axis}"], [f"pair_{axis}"], axis=3),
                  helper.make_node("Reshape", [f"pair_{axis}", f"shape2_{axis}"], [f"up_{axis}"]),
                  helper.make_node("Add", [f"up_{axis}", "ten"], [f"lift_{axis}"]),
                  helper.make_node("Expand", [f"lift_{axis}", f"expand_{axis}"], [f"all_{axis}"]),
                  helper.make_node("Add", [f"all_{axis}", f"bias_{axis}"], [f"simcc_{axis}"])]
    graph = helper.make_graph(nodes, "dwpose_like",
                              [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, 384, 288])],
                              [helper.make_tensor_value_info("simcc_x", TensorProto.FLOAT, [1, 133, 576]),
                               helper.make_tensor_value_info("simcc_y", TensorProto.FLOAT, [1, 133, 768])],
                              initializer=[numpy_helper.from_array(v, k) for k, v in const.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))
