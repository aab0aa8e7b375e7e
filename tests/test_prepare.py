"""``python -m trainers.prepare``: raw footage to a training dataset, on synthetic-world clips with known cuts and a
known number of people, OpenCV's real vtest.avi (a street: several people) and the walk example (one person).

The synthetic sources are drawn dancers composited on a 128x256 canvas (one or two of them), cut together with
shots that must be dropped for a known reason; the test checks each shot's fate, the cuts, the written dataset
(validation, then 2 training steps with the tiny models), resume after a stop and 2 workers against 1.
"""

import json
import shutil
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from directanimator.errors import InputError
from directanimator.video import read_video, write_video
from trainers.dataset import UNFINISHED_MARKER, load_dataset, validate_dataset
from trainers.prepare.__main__ import main as prepare_main
from trainers.synthetic.draw import background
from trainers.synthetic.world import _as_identity, render_clip

ROOT = Path(__file__).resolve().parents[1]
WALK = ROOT / "examples" / "driving_walk.mp4"  # real footage: one woman walking, 4.9 s at 10 fps
VTEST = Path("/usr/share/doc/opencv-doc/examples/data/vtest.avi")  # OpenCV's sample: a street with passers-by
needs_vtest = pytest.mark.skipif(not VTEST.is_file(), reason="opencv-doc's vtest.avi is not installed")
SIZE, FPS = 128, 8.0
# a clip of 2 to 2.5 s at 8 fps, at most 256 px
FAST = ["--min-seconds", "2", "--max-seconds", "2.5", "--fps", "8", "--long-side", "256", "--crf", "23", "--quiet"]


def dancers(first, second=None, frames=32, motion=None):
    """A 128x256 shot of synthetic-world dancer ``first`` (left) and optionally ``second`` (right), composited
    over ``first``'s own background (mirrored to fill the width)."""
    fa, ma, _ = render_clip(first, first if motion is None else motion, frames=frames, size=SIZE)
    bg = background(_as_identity(first, 0), SIZE)
    canvas = np.repeat(np.concatenate([bg, bg[:, ::-1]], 1)[None], frames, 0).astype(np.float32)
    canvas[:, :, :SIZE] = fa * ma[..., None] + canvas[:, :, :SIZE] * (1 - ma[..., None])
    if second is not None:
        fb, mb, _ = render_clip(second, second, frames=frames, size=SIZE)
        canvas[:, :, SIZE:] = fb * mb[..., None] + canvas[:, :, SIZE:] * (1 - mb[..., None])
    return np.clip(canvas.round(), 0, 255).astype(np.uint8)


def empty_room(frames=32, seed=0):
    """A sharp, moving shot with nobody in it: coloured blocks panning 3 px a frame."""
    blocks = np.random.default_rng(seed).integers(40, 220, (16, 48, 3)).astype(np.uint8)
    strip = cv2.resize(blocks, (3 * 2 * SIZE, SIZE), interpolation=cv2.INTER_NEAREST)
    return np.stack([strip[:, 3 * t:3 * t + 2 * SIZE] for t in range(frames)])


# the mixed source: (shot frames, expected fate)
MIXED = [
    (lambda: dancers(0, frames=32), None),
    (lambda: dancers(1, 2, frames=24), "several people"),
    (lambda: dancers(3, frames=8), "too short"),
    (lambda: dancers(4, frames=24) // 6, "too dark"),
    (lambda: np.stack([cv2.GaussianBlur(f, (9, 9), 0) for f in dancers(5, frames=24)]), "too blurry"),
    (lambda: np.repeat(dancers(10, frames=1), 24, 0), "static"),
    (lambda: empty_room(24), "no person"),
    (lambda: dancers(0, frames=32, motion=7), None),
]


def _audio_only(path: Path) -> None:
    """An mp4 with an AAC track and no video stream."""
    with av.open(str(path), "w", format="mp4") as out:
        stream = out.add_stream("aac", rate=16000)
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 8000), np.float32), format="fltp", layout="mono")
        frame.sample_rate, frame.pts = 16000, 0
        out.mux(stream.encode(frame))
        out.mux(stream.encode(None))


@pytest.fixture(scope="module")
def raw(tmp_path_factory):
    """RAW_DIR/<identity>/ with the mixed source, one more dancer, the walk, an excerpt of vtest.avi, a room
    with nobody in it, and files that are no video (text, garbage with a video extension, audio only)."""
    root = tmp_path_factory.mktemp("raw")
    shots = [make() for make, _ in MIXED]
    write_video(root / "ann" / "mixed.mp4", np.concatenate(shots), FPS, crf=18)
    write_video(root / "bob" / "dance.mp4", dancers(8, frames=32), FPS, crf=18)
    (root / "walker").mkdir()
    shutil.copy(WALK, root / "walker" / "walk.mp4")
    if VTEST.is_file():
        street = read_video(VTEST, max_frames=40, max_side=384)
        write_video(root / "street" / "vtest.mp4", street.frames, street.fps, crf=18)
    write_video(root / "nobody" / "room.mp4", empty_room(32, seed=1), FPS, crf=18)
    (root / "notes.txt").write_text("shot list\n")
    (root / "broken").mkdir()
    (root / "broken" / "bad.mp4").write_bytes(b"\x00not a video" * 100)
    (root / "audio").mkdir()
    _audio_only(root / "audio" / "voice.mp4")
    return root, [len(s) for s in shots]


@pytest.fixture(scope="module")
def prepared(raw, tmp_path_factory):
    root, _ = raw
    out = tmp_path_factory.mktemp("prepared") / "ds"
    assert prepare_main([str(root), "--out", str(out), *FAST]) == 0
    return out


def _report(out: Path, name: str) -> dict:
    found = [json.loads(p.read_text()) for p in (out / "reports").glob("*.json")]
    return next(r for r in found if r["source"] == name)


@pytest.mark.slow
def test_shots_are_cut_within_one_frame_and_dropped_for_the_right_reason(raw, prepared):
    _, lengths = raw
    report = _report(prepared, "ann/mixed.mp4")
    starts = [s["frames"][0] for s in report["shots"][1:]]
    expected = list(np.cumsum(lengths)[:-1])
    assert len(starts) == len(expected) and all(abs(a - b) <= 1 for a, b in zip(starts, expected)), starts
    assert [s["reason"] for s in report["shots"]] == [fate for _, fate in MIXED]
    assert [s["kept"] for s in report["shots"]] == [fate is None for _, fate in MIXED]
    first = report["shots"][0]
    # 2.5 s of the 32-frame shot are the clip; its reference comes from the rest of the shot, with a face
    assert first["clip_frames"] == 20 and first["reference_frame"] >= first["window"][1]
    assert first["reference_face"]
    assert _report(prepared, "nobody/room.mp4")["shots"][0]["reason"] == "no person"
    assert _report(prepared, "walker/walk.mp4")["shots"][0]["kept"]


@needs_vtest
def test_real_street_with_several_people_is_dropped(prepared):
    shots = _report(prepared, "street/vtest.mp4")["shots"]
    assert [s["reason"] for s in shots] == ["several people"]


def test_a_long_shot_gives_several_clips(tmp_path):
    write_video(tmp_path / "raw" / "ann" / "long.mp4", dancers(1, frames=56), FPS, crf=18)
    assert prepare_main([str(tmp_path / "raw"), "--out", str(tmp_path / "ds"), *FAST]) == 0
    (report,) = [json.loads(p.read_text()) for p in (tmp_path / "ds" / "reports").iterdir()]
    # 56 frames at 8 fps, clips of 2.5 s = 20 frames: two whole clips; the first one's reference from the second,
    # the second one's from the 16 frames after it
    assert [(e["piece"], e["window"], e["kept"]) for e in report["shots"]] == [(0, [0, 20], True), (1, [20, 40], True)]
    assert 20 <= report["shots"][0]["reference_frame"] < 40 <= report["shots"][1]["reference_frame"]
    names = [c.file_name for c in validate_dataset(tmp_path / "ds").clips]
    assert [n.split("_shot")[1] for n in names] == ["000.mp4", "000_01.mp4"]
    summary = json.loads((tmp_path / "ds" / "prepare_report.json").read_text())
    assert (summary["shots"], summary["candidates"], summary["clips"]) == (1, 2, 2)


def test_dataset_card_reports_and_validation(prepared):
    ds = validate_dataset(prepared)
    assert [(c.identity, c.file_name.split("_shot")[1]) for c in ds.clips] == [
        ("ann", "000.mp4"), ("ann", "007.mp4"), ("bob", "000.mp4"), ("walker", "000.mp4")]
    assert all(c.reference_path.is_file() for c in ds.clips)
    clip = read_video(ds.clips[0].path)
    assert clip.frames.shape == (20, 128, 256, 3) and clip.fps == 8.0
    assert read_video(ds.clips[3].path).frames.shape[1:3] == (256, 256)  # the walk, 512 px -> 256
    summary = json.loads((prepared / "prepare_report.json").read_text())
    assert {u["file"]: u["reason"] for u in summary["unreadable"]} == {
        "audio/voice.mp4": "has no video stream", "broken/bad.mp4": summary["unreadable"][1]["reason"]}
    assert "not a readable video" in summary["unreadable"][1]["reason"]
    assert summary["skipped_files"] == [{"file": "notes.txt", "reason": "not a video file (.txt)"}]
    expected = {"several people": 1, "too short": 1, "too dark": 1, "too blurry": 1, "static": 1, "no person": 2}
    if VTEST.is_file():
        expected["several people"] += 1
    assert summary["dropped"] == expected and summary["clips"] == 4
    card = (prepared / "README.md").read_text()
    assert "| dropped: several people | %d |" % expected["several people"] in card
    assert "`broken/bad.mp4`" in card and "`notes.txt`" in card and not (prepared / UNFINISHED_MARKER).exists()
    assert summary["timing"]["shots"] < summary["timing"]["decode"]


@pytest.mark.slow
def test_prepared_dataset_trains_two_steps(prepared, tmp_path):
    from test_trainers import _save_tiny_pipeline
    from directanimator.tiny import tiny_transformer
    from trainers.same_id import main as same_id_main

    _save_tiny_pipeline(tmp_path / "pipe")
    # at the size the dataset was written (FAST: 256 px; at 128 px a small drawn figure in a 2:1 reference can be
    # too small for the segmenter): a RoPE table of 256x256 px, the walk is square, the synthetic clips 2:1
    tiny_transformer(sample_height=32, sample_width=32).save_pretrained(tmp_path / "pipe" / "transformer")
    args = ["--hub-dataset", str(prepared), "--cache-dir", str(tmp_path / "cache"), "--num-frames", "9",
            "--long-side", "256", "--cache-dtype", "float32", "--dataloader-num-workers", "0", "--report-to", "none",
            "--max-steps", "2", "--checkpointing-steps", "2", "--pretrained", str(tmp_path / "pipe"),
            "--output-dir", str(tmp_path / "run")]
    assert same_id_main(args) == 0
    logs = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in logs] == [1, 2] and all(np.isfinite(r["loss/denoise"]) for r in logs)


# --- resume, processes, identities from a CSV -----------------------------------------------------------------


@pytest.fixture(scope="module")
def flat(tmp_path_factory):
    """A flat RAW_DIR of three videos (two dancers alone, one shot of two dancers) with an identities CSV."""
    root = tmp_path_factory.mktemp("flat")
    write_video(root / "raw" / "a.mp4", dancers(1, frames=24), FPS, crf=18)
    write_video(root / "raw" / "b.mp4", dancers(2, frames=24), FPS, crf=18)
    write_video(root / "raw" / "c.mp4", dancers(3, 4, frames=24), FPS, crf=18)
    (root / "people.csv").write_text("file,identity\na.mp4,pat\nb.mp4,sam\nc.mp4,pat\n")
    return root


def _contents(out: Path) -> dict:
    """Every file of a prepared folder (reports without their timings)."""
    files = {}
    for p in sorted(out.rglob("*")):
        if p.is_file():
            rel = p.relative_to(out).as_posix()
            if rel.endswith(".json"):
                value = json.loads(p.read_text())
                value.pop("timing", None)
                files[rel] = value
            else:
                files[rel] = p.read_bytes()
    return files


def _run(flat, out, *extra):
    return prepare_main([str(flat / "raw"), "--out", str(out), "--identities", str(flat / "people.csv"), *FAST,
                         *extra])


@pytest.fixture(scope="module")
def flat_once(flat):
    out = flat / "once"
    assert _run(flat, out) == 0
    return _contents(out)


def test_identities_from_csv(flat, flat_once):
    rows = [json.loads(line) for line in flat_once["metadata.jsonl"].decode().splitlines()]
    assert [(r["identity"], r["file_name"].split("-")[0]) for r in rows] == [("pat", "clips/a"), ("sam", "clips/b")]
    reasons = {r["source"]: [s["reason"] for s in r["shots"]] for k, r in flat_once.items() if k.startswith("reports/")}
    assert reasons == {"a.mp4": [None], "b.mp4": [None], "c.mp4": ["several people"]}


def test_resume_after_a_stop_gives_the_same_dataset(flat, flat_once, capsys):
    out = flat / "stopped"
    assert _run(flat, out, "--limit-sources", "1") == 0
    assert "1 of 3 source videos prepared" in capsys.readouterr().out
    assert (out / UNFINISHED_MARKER).is_file() and not (out / "metadata.jsonl").exists()
    with pytest.raises(InputError, match="unfinished.*rerun the same trainers.prepare command"):
        load_dataset(out)
    (done,) = (out / "reports").iterdir()
    stamp = done.stat().st_mtime_ns
    assert _run(flat, out) == 0
    assert done.stat().st_mtime_ns == stamp  # a finished source is not done again
    assert _contents(out) == flat_once
    # a rerun of a finished dataset changes nothing; other settings are refused
    assert _run(flat, out) == 0 and _contents(out) == flat_once
    assert _run(flat, out, "--fps", "10") == 2
    assert "other settings (fps differ)" in capsys.readouterr().err


@pytest.mark.slow
def test_two_workers_give_what_one_process_gives(flat, flat_once):
    out = flat / "two"
    assert _run(flat, out, "--workers", "2") == 0
    assert _contents(out) == flat_once


def test_two_launched_processes_share_the_sources(flat, flat_once, monkeypatch):
    """As `accelerate launch` starts them: each process takes its share, the last one to finish merges."""
    out = flat / "shared"
    with monkeypatch.context() as env:  # what accelerate launch (or torchrun) tells the second process
        env.setenv("RANK", "1")
        env.setenv("WORLD_SIZE", "2")
        assert _run(flat, out) == 0
    assert (out / UNFINISHED_MARKER).is_file()
    assert sorted(json.loads(p.read_text())["source"] for p in (out / "reports").iterdir()) == ["b.mp4"]
    assert _run(flat, out, "--process-index", "0", "--num-processes", "2") == 0
    assert _contents(out) == flat_once


# --- bad input ----------------------------------------------------------------------------------------------


def test_bad_inputs_are_one_line_errors(flat, tmp_path, capsys):
    def error(*argv):
        assert prepare_main([*map(str, argv), "--quiet"]) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err
        return err

    (tmp_path / "empty").mkdir()
    assert "has no video file (it is empty)" in error(tmp_path / "empty", "--out", tmp_path / "o1")
    (tmp_path / "texts").mkdir()
    (tmp_path / "texts" / "a.txt").write_text("x")
    assert "has no video file (it holds 1 other file(s), e.g. a.txt)" in error(tmp_path / "texts", "--out", tmp_path / "o")
    assert "RAW_DIR" in error(tmp_path / "missing", "--out", tmp_path / "o2")
    raw = flat / "raw"
    assert "is inside RAW_DIR" in error(raw, "--out", raw / "dataset")
    assert not (raw / "dataset").exists()
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "thesis.pdf").write_text("x")
    assert "is not a dataset made by trainers.prepare" in error(raw, "--out", tmp_path / "taken")
    assert "--min-seconds 9 is more than --max-seconds 3" in error(raw, "--out", tmp_path / "o3", "--min-seconds",
                                                                   "9", "--max-seconds", "3")
    assert "--fps must be a number in [1, 120]" in error(raw, "--out", tmp_path / "o4", "--fps", "0")
    (tmp_path / "bad.csv").write_text("name,who\na.mp4,pat\n")
    assert "columns file,identity" in error(raw, "--out", tmp_path / "o5", "--identities", tmp_path / "bad.csv")
    (tmp_path / "short.csv").write_text("file,identity\na.mp4,pat\n")
    assert "2 video(s)" in error(raw, "--out", tmp_path / "o6", "--identities", tmp_path / "short.csv")
    assert not any((tmp_path / f"o{i}").exists() for i in range(1, 7))


def test_no_clip_kept_is_an_error_and_the_folder_stays_unfinished(tmp_path, capsys):
    write_video(tmp_path / "raw" / "nobody" / "room.mp4", empty_room(24), FPS, crf=18)
    out = tmp_path / "ds"
    assert prepare_main([str(tmp_path / "raw"), "--out", str(out), *FAST]) == 2
    err = capsys.readouterr().err
    assert "no clip was kept from the 1 source video(s) (shots dropped: 1 no person)" in err
    assert (out / UNFINISHED_MARKER).is_file()


def test_push_to_hub_dry_run_lists_the_files_and_offline_push_is_one_error(flat, flat_once, capsys):
    out = flat / "once"  # finished: the rerun only merges again, then pushes
    assert _run(flat, out, "--push-to-hub", "someone/dance-clips", "--hub-dry-run") == 0
    printed = capsys.readouterr().out
    assert "would upload" in printed and "to the dataset repo someone/dance-clips" in printed
    listed = [line.strip() for line in printed.splitlines() if line.startswith("  ")]
    assert listed == sorted(k for k in flat_once)  # every file of the dataset, nothing hidden, no marker
    assert "metadata.jsonl" in listed and "README.md" in listed and UNFINISHED_MARKER not in listed
    (out / ".clips.mp4.123.tmp").write_bytes(b"half")  # a leftover of an interrupted write is never uploaded
    # the tests run with HF_HUB_OFFLINE=1 (conftest): a real push fails before any network, as one error line
    assert _run(flat, out, "--push-to-hub", "someone/dance-clips") == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: could not push") and "hf upload --repo-type dataset" in err and "\n" not in err
    assert _run(flat, out, "--push-to-hub", "not a repo") == 2
    assert "is not a Hub repo id" in capsys.readouterr().err
    (out / ".clips.mp4.123.tmp").unlink()


# --- captions ---------------------------------------------------------------------------------------------------


def _tiny_qwen2_vl(folder: Path) -> None:
    """A Qwen2-VL of the real class with a tiny random config, a byte-level BPE tokenizer trained here with
    Qwen2-VL's special tokens, and the real image processor, saved as a model folder."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import Qwen2TokenizerFast, Qwen2VLConfig, Qwen2VLForConditionalGeneration
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    special = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|vision_start|>", "<|vision_end|>",
               "<|image_pad|>", "<|video_pad|>"]
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(["a person dancing in a room", "describe the person and what they are doing"],
                            trainers.BpeTrainer(vocab_size=300, special_tokens=special,
                                                initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    tokenizer = Qwen2TokenizerFast(tokenizer_object=bpe, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                   unk_token=None, bos_token=None)
    ids = {t: tokenizer.convert_tokens_to_ids(t) for t in special}
    config = Qwen2VLConfig(
        text_config=dict(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=1, max_position_embeddings=2048,
                         rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [2, 3, 3]},
                         eos_token_id=ids["<|im_end|>"], pad_token_id=ids["<|endoftext|>"]),
        vision_config=dict(depth=1, embed_dim=32, hidden_size=32, num_heads=2, mlp_ratio=2, patch_size=14,
                           spatial_merge_size=2, temporal_patch_size=2),
        image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"], vision_end_token_id=ids["<|vision_end|>"])
    torch.manual_seed(0)
    Qwen2VLForConditionalGeneration(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    Qwen2VLImageProcessorPil(min_pixels=56 * 56, max_pixels=112 * 112).save_pretrained(folder)


def test_captions_from_a_tiny_qwen2_vl(flat, tmp_path, capsys):
    model = tmp_path / "qwen2-vl-tiny"
    _tiny_qwen2_vl(model)
    from trainers.prepare.captions import Captioner

    captioner = Captioner(str(model), max_new_tokens=6)
    two = captioner.caption([dancers(1, frames=4), dancers(2, frames=6)])  # one batch, left-padded
    assert len(two) == 2 and all(isinstance(t, str) for t in two)
    assert captioner.caption([dancers(1, frames=4)]) == two[:1]  # greedy: the same alone as in a batch

    out = tmp_path / "captioned"
    assert _run(flat, out, "--caption-model", str(model), "--caption-batch", "2") == 0
    rows = [json.loads(line) for line in (out / "metadata.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and all(r.get("caption") for r in rows)  # random weights: random, non-empty words
    assert json.loads((out / "prepare.json").read_text())["settings"]["caption_model"] == str(model)

    text_only = tmp_path / "t5"
    from directanimator.tiny import tiny_text_encoder

    tiny_text_encoder().save_pretrained(text_only)
    assert _run(flat, tmp_path / "o1", "--caption-model", str(text_only)) == 2
    assert "is a 't5' model; captions need one of the Qwen2-VL family" in capsys.readouterr().err
    assert _run(flat, tmp_path / "o2", "--caption-model", str(tmp_path / "missing")) == 2
    assert "--caption-model" in capsys.readouterr().err
    assert not (tmp_path / "o1").exists() and not (tmp_path / "o2").exists()


# --- identities from faces --------------------------------------------------------------------------------------


def _mean_colour_arcface(path: Path) -> None:
    """An ONNX model with ArcFace's interface ([1, 3, 112, 112] in [-1, 1] -> an embedding): the face crop's mean
    colour, which tells the synthetic-world people apart (skin, hair and eyes have their own colours)."""
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("ReduceMean", ["input.1"], ["683"], axes=[2, 3], keepdims=0)], "mean_colour",
        [helper.make_tensor_value_info("input.1", TensorProto.FLOAT, [1, 3, 112, 112])],
        [helper.make_tensor_value_info("683", TensorProto.FLOAT, [1, 3])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.save(model, str(path))


def test_identities_from_clustered_faces(tmp_path, capsys):
    arcface = tmp_path / "w600k_r50.onnx"
    _mean_colour_arcface(arcface)
    raw = tmp_path / "raw"
    write_video(raw / "one.mp4", dancers(1, frames=24), FPS, crf=18)
    write_video(raw / "two.mp4", dancers(2, frames=24), FPS, crf=18)
    write_video(raw / "one_again.mp4", dancers(1, frames=24, motion=5), FPS, crf=18)
    out = tmp_path / "ds"
    # mean colours of the crops, measured: dancer 1 with itself 0.9996, with dancer 2 0.975-0.98
    assert prepare_main([str(raw), "--out", str(out), *FAST, "--identity-from", "cluster", "--arcface", str(arcface),
                         "--cluster-threshold", "0.995"]) == 0
    rows = [json.loads(line) for line in (out / "metadata.jsonl").read_text().splitlines()]
    who = {r["file_name"].split("/")[1].split("-")[0]: r["identity"] for r in rows}
    assert who == {"one": "person_0000", "one_again": "person_0000", "two": "person_0001"}, who
    assert "every identity is a single video" not in capsys.readouterr().err
    assert prepare_main([str(raw), "--out", str(tmp_path / "o"), "--identity-from", "cluster"]) == 2
    assert "needs --arcface" in capsys.readouterr().err and not (tmp_path / "o").exists()


def test_face_clusters_are_connected_components_whatever_the_order():
    from trainers.prepare.identities import cluster_identities

    a, a2, b = [1.0, 0.0], [0.9, 0.1], [0.0, 1.0]
    chain = [0.7, 0.7]  # like a and like b at 0.7: links both, as connected components do
    assert cluster_identities([a, b, a2, None], 0.9) == ["person_0000", "person_0001", "person_0000", "person_0002"]
    assert cluster_identities([b, a2, a], 0.9) == ["person_0000", "person_0001", "person_0001"]
    assert cluster_identities([a, b, chain], 0.7) == ["person_0000"] * 3
    assert cluster_identities([], 0.5) == []
