"""Loaders over avdf shards: alignment, evaluation order, training resampling, subsets, corrupt members."""
from __future__ import annotations

import io
import logging
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

from pipeline.loaders import EvalLoader, SegmentSpec, ShardError, ShardSet, TrainLoader, log_mel, read_index
from pipeline.loading.synthetic import write_synthetic_corpus
from pipeline.shards import CropSizes, ShardParams, write_shards

SIZES = (24, 16, 12)
# Frame counts chosen so clips have 1, 2, 3 and 4 full segments, one leftover tail and one short clip.
CLIPS = [
    {"key": "studio/id01-u1", "num_frames": 16},
    {"key": "studio/id01-u2", "num_frames": 35, "video_fake": True},
    {"key": "studio/id02-u1", "num_frames": 48, "audio_fake": True},
    {"key": "studio/id02-u2", "num_frames": 70},
    {"key": "studio/id03-u1", "num_frames": 20, "video_fake": True, "audio_fake": True},
    {"key": "studio/id03-u1/s", "num_frames": 33, "video_fake": True, "video_id": "id03-u1"},
    {"key": "studio/id04-u1", "num_frames": 10},  # shorter than a segment: padded to one
]


@pytest.fixture(scope="module")
def shards(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("loaders")
    manifest = write_synthetic_corpus(root / "pre", CLIPS, sizes=SIZES)
    out = root / "shards"
    result = write_shards(manifest, out, ShardParams(max_samples_per_shard=3), CropSizes(*SIZES), progress=False)
    assert len(result.shards) == 3 and not result.failures
    return out


def _expected_segments(spec: SegmentSpec, keys: list[str] | None = None) -> list[tuple[str, int]]:
    frames = {c["key"]: c["num_frames"] for c in CLIPS}
    return [(k, i) for k in sorted(keys or frames) for i, _ in enumerate(spec.eval_starts(frames[k]))]


def _check_alignment(batch: dict, num_frames: dict[str, int]) -> None:
    face, audio = batch["inputs"]["face"], batch["inputs"]["audio"]
    for b, (key, start) in enumerate(zip(batch["meta"]["key"], batch["meta"]["start"].tolist())):
        n = num_frames[key]
        for i in range(face.shape[1]):
            t = min(start + i, n - 1)  # short clips repeat their last frame
            assert torch.all(face[b, i] == t), (key, start, i)
            block = audio[b, 640 * i : 640 * (i + 1)]
            assert torch.all(block == (start + i if start + i < n else 0)), (key, start, i)


def test_segment_frames_and_audio_are_aligned(shards: Path) -> None:
    frames = {c["key"]: c["num_frames"] for c in CLIPS}
    spec = SegmentSpec(num_frames=16, modalities=("face", "audio", "face_gray", "mouth", "landmarks"))
    seen = 0
    for batch in EvalLoader(shards, spec, batch_size=5):
        _check_alignment(batch, frames)
        starts = batch["meta"]["start"]
        assert torch.equal(starts, batch["meta"]["segment"] * 16)
        for name in ("face_gray", "mouth"):
            assert torch.equal(batch["inputs"][name][:, :, 0, 0, 0], batch["inputs"]["face"][:, :, 0, 0, 0])
        seen += len(starts)
    assert seen == len(_expected_segments(spec))
    train = TrainLoader(shards, spec, batch_size=4, segments_per_epoch=40, seed=3)
    for batch in train:
        _check_alignment(batch, frames)


def test_batch_layout(shards: Path) -> None:
    spec = SegmentSpec(modalities=("face", "face_gray", "mouth", "audio", "landmarks", "face_found"))
    batch = next(iter(EvalLoader(shards, spec, batch_size=3)))
    shapes = {k: (tuple(v.shape), v.dtype) for k, v in batch["inputs"].items()}
    assert shapes == {
        "face": ((3, 16, 3, 24, 24), torch.uint8),
        "face_gray": ((3, 16, 1, 16, 16), torch.uint8),
        "mouth": ((3, 16, 1, 12, 12), torch.uint8),
        "audio": ((3, 16 * 640), torch.float32),
        "landmarks": ((3, 16, 68, 2), torch.float32),
        "face_found": ((3, 16), torch.bool),
    }
    assert {k: v.tolist() for k, v in batch["targets"].items()} == {
        "label": [0, 1, 1], "video_fake": [0, 1, 1], "audio_fake": [0, 0, 0]}
    assert all(v.dtype == torch.long for v in batch["targets"].values())
    assert batch["meta"]["key"] == ["studio/id01-u1", "studio/id01-u2", "studio/id01-u2"]
    assert batch["meta"]["video_id"] == ["id01-u1", "id01-u2", "id01-u2"]
    floats = next(iter(EvalLoader(shards, SegmentSpec(face_float=True), batch_size=2)))["inputs"]["face"]
    assert floats.dtype == torch.float32 and float(floats.max()) <= 1.0
    assert torch.allclose(floats * 255, batch["inputs"]["face"][:2].float())


@pytest.mark.parametrize("size", [8, 48])
def test_faces_are_resized_to_what_the_detector_consumes(shards: Path, size: int) -> None:
    frames = {c["key"]: c["num_frames"] for c in CLIPS}
    spec = SegmentSpec(modalities=("face", "audio"), face_size=size)
    for loader in (EvalLoader(shards, spec, batch_size=4), TrainLoader(shards, spec, batch_size=4, segments_per_epoch=8)):
        for batch in loader:
            assert batch["inputs"]["face"].shape[-3:] == (3, size, size)
            _check_alignment(batch, frames)  # frame t is a constant image of value t: resizing keeps it


def _textured_clip(num_frames: int, seed: int) -> "DecodedClip":
    from pipeline.loading.segments import DecodedClip

    rng = np.random.default_rng(seed)
    face = rng.integers(0, 256, (num_frames, 40, 40, 3), dtype=np.uint8)
    row = {"label": 1, "video_fake": 1, "audio_fake": 0, "video_id": "v"}
    return DecodedClip(key=f"k{seed}", row=row, arrays={"face": face}, num_frames=num_frames)


def _resized_window(face: np.ndarray, start: int, length: int, size: int) -> np.ndarray:
    """The window cut first, then each frame resized (the loader's result before it kept whole clips)."""
    import cv2

    part = face[start:start + length]
    part = np.concatenate([part, np.repeat(part[-1:], length - len(part), axis=0)]) if len(part) < length else part
    return np.stack([cv2.resize(f, (size, size), interpolation=cv2.INTER_AREA) for f in part])


@pytest.mark.parametrize("sampling", ["consecutive", "groups"])
def test_segments_of_a_kept_resized_clip_equal_windows_resized_alone(sampling: str) -> None:
    from pipeline.frame_folders import GROUPS, group_frame_indices
    from pipeline.loading.segments import make_segment

    spec = SegmentSpec(modalities=("face",), face_size=24, frame_sampling=sampling)
    for num_frames, starts in ((50, [0, 7, 34]), (10, [0])):  # the short clip repeats its last frame
        clip = _textured_clip(num_frames, seed=num_frames)
        for start in starts:
            got = make_segment(clip, start, spec, segment=0)["inputs"]["face"].permute(0, 2, 3, 1).numpy()
            if sampling == "groups":
                indices = group_frame_indices(num_frames, GROUPS, spec.num_frames // GROUPS)
                want = np.stack([_resized_window(clip.arrays["face"], i, 1, 24)[0] for i in indices])
            else:
                want = _resized_window(clip.arrays["face"], start, spec.num_frames, 24)
            assert np.array_equal(got, want), (num_frames, start)
        assert clip.derived["face@24"].shape == (num_frames, 24, 24, 3)  # resized once, kept for the next segment


def test_resized_faces_are_kept_only_within_the_byte_limit(monkeypatch: pytest.MonkeyPatch) -> None:
    import gc

    from pipeline.loading import segments

    one_clip = 50 * 24 * 24 * 3
    kept = segments._KeptBytes(limit=one_clip)
    monkeypatch.setattr(segments, "_resized_faces", kept)
    spec = SegmentSpec(modalities=("face",), face_size=24)
    first, second = _textured_clip(50, seed=1), _textured_clip(50, seed=2)
    resized = []
    resize_frames = segments.resize_frames
    monkeypatch.setattr(segments, "resize_frames", lambda frames, size: resized.append(len(frames)) or
                        resize_frames(frames, size))
    segments.make_segment(first, 0, spec, segment=0)
    got = segments.make_segment(second, 3, spec, segment=0)["inputs"]["face"].permute(0, 2, 3, 1).numpy()
    assert "face@24" in first.derived and "face@24" not in second.derived and kept.used == one_clip
    assert np.array_equal(got, _resized_window(second.arrays["face"], 3, 16, 24))  # past the limit: still right
    assert resized == [50, 16]  # ... and only its window is resized, not the whole clip for one segment
    del first
    gc.collect()
    assert kept.used == 0  # a freed clip gives its bytes back
    segments.make_segment(second, 0, spec, segment=0)
    assert "face@24" in second.derived


@pytest.mark.parametrize("mode,frames", [("truncated", 64), ("whisper30", 3000)])
def test_mel_features_match_the_whisper_front_end(shards: Path, mode: str, frames: int) -> None:
    spec = SegmentSpec(modalities=(), mel=mode)
    batch = next(iter(EvalLoader(shards, spec, keys=["studio/id02-u1"], batch_size=3)))
    mel = batch["inputs"]["mel"]
    assert set(batch["inputs"]) == {"mel"} and mel.shape == (3, 80, frames) and mel.dtype == torch.float32
    for b, start in enumerate(batch["meta"]["start"].tolist()):
        audio = np.repeat(np.arange(start, start + 16, dtype=np.float32), 640)
        assert torch.allclose(mel[b], log_mel(audio, pad_to_30s=mode == "whisper30"))


def test_evaluation_order_is_fixed_and_complete_for_any_worker_count(shards: Path) -> None:
    spec = SegmentSpec(modalities=("face", "audio"))
    runs = {}
    for workers in (0, 2):
        loader = EvalLoader(shards, spec, batch_size=4, num_workers=workers)
        batches = list(loader)
        assert len(batches) == len(loader)
        runs[workers] = [
            (k, s, float(a[0]))
            for b in batches
            for k, s, a in zip(b["meta"]["key"], b["meta"]["segment"].tolist(), b["inputs"]["audio"])
        ]
        assert loader.stats.corrupt == 0
    assert runs[0] == runs[2]
    assert [(k, s) for k, s, _ in runs[0]] == _expected_segments(spec)
    # Overlapping evaluation with a hop of 8 frames.
    hop = SegmentSpec(hop=8, modalities=("audio",))
    starts = [(k, s) for b in EvalLoader(shards, hop, keys=["studio/id02-u2"], batch_size=64)
              for k, s in zip(b["meta"]["key"], b["meta"]["start"].tolist())]
    assert [s for _, s in starts] == [0, 8, 16, 24, 32, 40, 48]


def test_evaluation_can_keep_a_fixed_spread_of_segments_per_clip(shards: Path) -> None:
    # id02-u2 has 4 full segments (starts 0, 16, 32, 48), id02-u1 3, id01-u1 1: k of them, spread evenly,
    # numbered as in the full pass, the same every pass (the validation subset of avdf train).
    spec = SegmentSpec(modalities=("audio",))
    keys = ["studio/id01-u1", "studio/id02-u1", "studio/id02-u2"]

    def scored(k: int | None) -> list[tuple[str, int, int]]:
        loader = EvalLoader(shards, spec, keys=keys, batch_size=3, segments_per_clip=k)
        got = [(key, n, start) for b in loader
               for key, n, start in zip(b["meta"]["key"], b["meta"]["segment"].tolist(), b["meta"]["start"].tolist())]
        assert len(got) == loader.dataset.num_segments()
        return got

    assert scored(1) == [("studio/id01-u1", 0, 0), ("studio/id02-u1", 1, 16), ("studio/id02-u2", 2, 32)]
    assert scored(2) == [("studio/id01-u1", 0, 0), ("studio/id02-u1", 0, 0), ("studio/id02-u1", 2, 32),
                         ("studio/id02-u2", 1, 16), ("studio/id02-u2", 3, 48)]
    assert scored(None) == scored(4) == [(k, n, 16 * n) for k, count in zip(keys, (1, 3, 4)) for n in range(count)]
    with pytest.raises(ValueError, match="segments_per_clip"):
        EvalLoader(shards, spec, segments_per_clip=0)


def test_training_epochs_are_shuffled_resampled_and_reproducible(shards: Path) -> None:
    spec = SegmentSpec(modalities=("audio",))

    def epoch(loader: TrainLoader) -> list[tuple[str, int]]:
        return [(k, s) for b in loader for k, s in zip(b["meta"]["key"], b["meta"]["start"].tolist())]

    loader = TrainLoader(shards, spec, batch_size=8, segments_per_epoch=60, seed=1)
    first, second = epoch(loader), epoch(loader)
    assert len(first) == len(second) == 60 and len(loader) == 8
    assert first != second  # a new epoch draws new segments
    keys = [k for k, _ in first]
    assert keys != sorted(keys)  # shuffled, not in shard order
    assert set(keys) == {c["key"] for c in CLIPS}
    assert any(s % 16 for _, s in first)  # random starts, not only the evaluation grid
    loader.set_epoch(0)
    assert epoch(loader) == first  # same seed and epoch: same segments
    assert epoch(TrainLoader(shards, spec, batch_size=8, segments_per_epoch=60, seed=2)) != first

    two = TrainLoader(shards, spec, batch_size=8, segments_per_epoch=61, num_workers=2, seed=1)
    got = epoch(two)
    assert len(got) == 61 and two.stats.segments == 61


def test_class_balanced_sampling(shards: Path) -> None:
    real = [c["key"] for c in CLIPS if not (c.get("video_fake") or c.get("audio_fake"))]
    keys = real + ["studio/id01-u2"]  # 3 real : 1 fake
    spec = SegmentSpec(modalities=("audio",))

    def fake_share(balanced: bool) -> float:
        loader = TrainLoader(shards, spec, keys=keys, batch_size=50, segments_per_epoch=400, balanced=balanced, seed=0)
        labels = torch.cat([b["targets"]["label"] for b in loader])
        assert len(labels) == 400
        return float(labels.float().mean())

    assert 0.15 < fake_share(False) < 0.35
    assert 0.4 < fake_share(True) < 0.6


def test_key_subset_opens_only_the_shards_it_needs(shards: Path) -> None:
    index = read_index(shards).to_pylist()
    wanted = [r["key"] for r in index if r["shard"] == "shard-000001.tar"][:2]
    subset = ShardSet(shards, wanted)
    assert subset.shards == ["shard-000001.tar"] and len(subset) == 2
    spec = SegmentSpec(modalities=("audio",))
    got = [k for b in EvalLoader(subset, spec, batch_size=4) for k in b["meta"]["key"]]
    assert [k for k, _ in _expected_segments(spec, wanted)] == got
    train_keys = {k for b in TrainLoader(subset, spec, batch_size=4, segments_per_epoch=12) for k in b["meta"]["key"]}
    assert train_keys == set(wanted)

    with pytest.raises(ShardError, match=r"1 of 3 requested key\(s\) are not in .*studio/nope"):
        ShardSet(shards, wanted + ["studio/nope"])
    assert ShardSet(shards, wanted + ["studio/nope"], allow_missing=True).missing_keys == ["studio/nope"]


def test_missing_shard_and_missing_index_are_clear_errors(shards: Path, tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(shards, copy)
    (copy / "shard-000002.tar").unlink()
    with pytest.raises(ShardError, match=r"shard-000002\.tar: shard file named by the index is missing"):
        EvalLoader(copy)
    # A subset that does not touch the lost shard still loads.
    assert len(ShardSet(copy, ["studio/id01-u1"])) == 1
    with pytest.raises(ShardError, match="index.parquet: shard index does not exist"):
        TrainLoader(tmp_path / "empty")


def _corrupt_in_place(shard: Path, member: str, data: bytes) -> None:
    """Overwrite the start of a member's data, keeping every offset of the shard."""
    with tarfile.open(shard) as tar:
        info = tar.getmember(member)
    with open(shard, "r+b") as f:
        f.seek(info.offset_data)
        f.write(data)


def test_corrupt_members_are_skipped_counted_and_logged(shards: Path, tmp_path: Path, caplog) -> None:
    import shutil

    copy = tmp_path / "corrupt"
    shutil.copytree(shards, copy)
    index = {r["key"]: r for r in read_index(copy).to_pylist()}
    bad_npy, bad_json = "studio/id01-u2", "studio/id02-u2"
    _corrupt_in_place(copy / index[bad_npy]["shard"], f"{bad_npy}.audio.npy", b"garbage!" * 8)
    _corrupt_in_place(copy / index[bad_json]["shard"], f"{bad_json}.json", b"{{{{")
    spec = SegmentSpec(modalities=("face", "audio"))
    with caplog.at_level(logging.WARNING):
        for workers in (0, 2):
            loader = EvalLoader(copy, spec, batch_size=4, num_workers=workers)
            keys = [k for b in loader for k in b["meta"]["key"]]
            assert loader.stats.corrupt == 2
            assert set(keys) == {c["key"] for c in CLIPS} - {bad_npy, bad_json}
    assert any(bad_npy in r.getMessage() and "audio.npy" in r.getMessage() for r in caplog.records)
    train = TrainLoader(copy, spec, batch_size=4, segments_per_epoch=40)
    keys = {k for b in train for k in b["meta"]["key"]}
    assert train.stats.corrupt > 0 and not keys & {bad_npy, bad_json}


def test_truncated_npy_member_is_skipped_by_the_stream(shards: Path, tmp_path: Path) -> None:
    """A shard rewritten with one .npy member cut short (a valid tar around a broken array)."""
    copy = tmp_path / "truncated"
    copy.mkdir()
    index = read_index(shards).to_pylist()
    for name in {r["shard"] for r in index}:
        (copy / name).write_bytes((shards / name).read_bytes())
    (copy / "index.parquet").write_bytes((shards / "index.parquet").read_bytes())
    victim = "studio/id03-u1"
    shard = copy / next(r["shard"] for r in index if r["key"] == victim)
    rebuilt = io.BytesIO()
    with tarfile.open(shard) as src, tarfile.open(fileobj=rebuilt, mode="w", format=tarfile.GNU_FORMAT) as dst:
        for info in src:
            data = src.extractfile(info).read()
            if info.name == f"{victim}.face.npy":
                data = data[: len(data) // 2]
                info.size = len(data)
            dst.addfile(info, io.BytesIO(data))
    shard.write_bytes(rebuilt.getvalue())
    train = TrainLoader(copy, SegmentSpec(), keys=[r["key"] for r in index if r["shard"] == shard.name],
                        batch_size=4, segments_per_epoch=30)
    keys = {k for b in train for k in b["meta"]["key"]}
    assert victim not in keys and keys and train.stats.corrupt > 0


def test_unreadable_shards_stop_training_with_a_clear_error(shards: Path, tmp_path: Path) -> None:
    copy = tmp_path / "zeros"
    copy.mkdir()
    (copy / "index.parquet").write_bytes((shards / "index.parquet").read_bytes())
    for name in {r["shard"] for r in read_index(shards).to_pylist()}:
        (copy / name).write_bytes(b"\0" * 1024)
    with pytest.raises(ShardError, match="gave no usable sample"):
        list(TrainLoader(copy, SegmentSpec(), batch_size=4, segments_per_epoch=4))


def test_segment_spec_rejects_bad_values() -> None:
    with pytest.raises(ValueError, match="unknown modality"):
        SegmentSpec(modalities=("video",))
    with pytest.raises(ValueError, match="mel must be"):
        SegmentSpec(mel="whisper")
    assert SegmentSpec().eval_starts(35) == [0, 16] and SegmentSpec(hop=8).eval_starts(32) == [0, 8, 16]
    assert SegmentSpec().num_samples == 10_240


@pytest.mark.slow
def test_avdf_bench_loader_runs(capsys: pytest.CaptureFixture) -> None:
    from benchmark.cli import main

    assert main(["bench", "loader", "--clips", "2", "--seconds", "1.28", "--workers", "0,1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    rows = [line.split() for line in lines if line.split() and line.split()[0] in ("0", "1")]
    assert [r[:2] for r in rows] == [["0", "4"], ["1", "4"]]  # 2 clips x 2 segments, both paths


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="counts descriptors in /proc (Linux)")
def test_reading_many_clips_holds_one_descriptor_per_shard_file(shards: Path) -> None:
    # A process keeps what it read of each clip (training revisits clips every epoch); a memory map per
    # array would hold a descriptor each and exhaust a 1024-descriptor limit on a few hundred clips.
    import os

    def shard_descriptors() -> int:
        links = []
        for fd in os.listdir("/proc/self/fd"):
            try:
                links.append(os.readlink(f"/proc/self/fd/{fd}"))
            except OSError:  # the listing's own descriptor, closed by now
                pass
        return sum(link.startswith(str(shards)) for link in links)

    spec = SegmentSpec(modalities=("face", "audio", "face_gray", "mouth", "landmarks"))
    batches = list(EvalLoader(shards, spec, batch_size=4))
    assert sum(len(b["meta"]["key"]) for b in batches) == len(_expected_segments(spec))
    assert shard_descriptors() <= len(list(shards.glob("*.tar")))
