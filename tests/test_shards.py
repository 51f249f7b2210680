"""avdf shard: round trip, determinism, resume, failures, packing and the CLI."""
from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml

from pipeline.loading.format import INDEX_NAME, read_index
from pipeline.loading.synthetic import frame_indexed_arrays, write_synthetic_corpus
from pipeline.manifest import read_failures, read_manifest
from pipeline.shards import CropSizes, ShardParams, write_shards

SIZES = (24, 16, 12)  # face, face_gray, mouth: small crops keep the tests fast
CROPS = CropSizes(*SIZES)
CLIPS = [
    {"key": "studio/id01-u1", "num_frames": 20},
    {"key": "studio/id01-u2", "num_frames": 33, "video_fake": True},
    {"key": "studio/id02-u1", "num_frames": 16, "audio_fake": True, "ethnicity": "African", "gender": "female"},
    {"key": "studio/id02-u1/self", "num_frames": 40, "video_fake": True, "audio_fake": True, "self_audio": True},
    {"key": "cmdfd/id03-u9/w2l", "num_frames": 25, "video_fake": True, "source_keys": ["studio/id01-u1"]},
]


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    return write_synthetic_corpus(tmp_path / "pre", CLIPS, sizes=SIZES)


def _shard(manifest: Path, out: Path, **params) -> object:
    return write_shards(manifest, out, ShardParams(**{"max_samples_per_shard": 2, **params}), CROPS, progress=False)


def test_round_trip_is_bit_exact_with_every_key_once(corpus: Path, tmp_path: Path) -> None:
    import webdataset as wds

    out = tmp_path / "shards"
    result = _shard(corpus, out)
    assert len(result.shards) == 3 and result.clips == 5 and not result.failures
    manifest_rows = {r["key"]: r for r in read_manifest(corpus).to_pylist()}
    urls = [str(out / s) for s in result.shards]
    seen = []
    # Plain WebDataset reading: keys with one or two slashes must group intact.
    for sample in wds.WebDataset(urls, shardshuffle=False, empty_check=False):
        key = sample["__key__"]
        seen.append(key)
        assert json.loads(sample["json"]) == manifest_rows[key]
        with np.load(corpus.parent / manifest_rows[key]["path"]) as npz:
            assert {f"{n}.npy" for n in npz.files} == {k for k in sample if k.endswith(".npy")}
            for name in npz.files:
                stored = np.load(io.BytesIO(sample[f"{name}.npy"]))
                assert stored.dtype == npz[name].dtype and np.array_equal(stored, npz[name]), (key, name)
    assert sorted(seen) == sorted(manifest_rows) and len(seen) == len(set(seen))

    index = read_index(out).to_pylist()
    assert [r["key"] for r in index] == sorted(manifest_rows)
    for r in index:
        m = manifest_rows[r["key"]]
        assert (r["label"], r["video_fake"], r["audio_fake"], r["category"], r["video_id"], r["identity"]) == (
            m["label"], m["video_fake"], m["audio_fake"], m["category"], m["video_id"], m["identity"])
        assert r["num_frames"] == m["num_frames"] and r["num_samples"] == m["num_frames"] * 640
        # The byte span holds exactly this sample's members.
        with open(out / r["shard"], "rb") as f:
            f.seek(r["offset"])
            span = f.read(r["size"])
        assert span[:len(r["key"])].decode() == r["key"]
    assert read_failures(out / "failures.parquet") == []


def test_two_runs_give_identical_bytes(corpus: Path, tmp_path: Path) -> None:
    a = _shard(corpus, tmp_path / "a")
    b = _shard(corpus, tmp_path / "b")
    assert a.shards == b.shards
    for name in a.shards + [INDEX_NAME]:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_resume_rewrites_only_the_missing_shard(corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "shards"
    first = _shard(corpus, out)
    before = {n: ((out / n).stat().st_mtime_ns, (out / n).read_bytes()) for n in first.shards}
    (out / "shard-000001.tar").unlink()
    (out / INDEX_NAME).unlink()
    second = _shard(corpus, out)
    assert (second.written, second.up_to_date) == (1, 2)
    for name, (mtime, data) in before.items():
        assert (out / name).read_bytes() == data
        if name != "shard-000001.tar":
            assert (out / name).stat().st_mtime_ns == mtime, f"{name} was rewritten"
    assert (out / INDEX_NAME).exists()


def test_changed_clip_rewrites_its_shard_and_stale_shards_go(corpus: Path, tmp_path: Path) -> None:
    out = tmp_path / "shards"
    _shard(corpus, out)
    rows = read_manifest(corpus).to_pylist()
    changed = next(r for r in rows if r["key"] == "studio/id02-u1")
    arrays = frame_indexed_arrays(16, *SIZES)
    arrays["face"][0] = 255
    with open(corpus.parent / changed["path"], "wb") as f:
        np.savez(f, **arrays)
    again = _shard(corpus, out)
    assert (again.written, again.up_to_date) == (1, 2)  # studio/id02-u1 sits in the second shard
    # Fewer, larger shards: the leftovers of the earlier layout are removed.
    bigger = _shard(corpus, out, max_samples_per_shard=10)
    assert bigger.shards == ["shard-000000.tar"]
    assert sorted(p.name for p in out.glob("shard-*")) == ["shard-000000.tar", "shard-000000.tar.inputs-sha256"]


def test_bad_clips_become_failures_and_the_rest_is_sharded(corpus: Path, tmp_path: Path) -> None:
    rows = {r["key"]: r for r in read_manifest(corpus).to_pylist()}
    root = corpus.parent
    (root / rows["studio/id01-u1"]["path"]).unlink()  # missing
    npz = root / rows["studio/id01-u2"]["path"]
    npz.write_bytes(npz.read_bytes()[:4000])  # truncated
    arrays = frame_indexed_arrays(16, *SIZES)
    arrays["audio"] = arrays["audio"][:-10]  # audio no longer 640 samples per frame
    with open(root / rows["studio/id02-u1"]["path"], "wb") as f:
        np.savez(f, **arrays)
    arrays = frame_indexed_arrays(40, 32, 16, 12)  # a face crop of the wrong size
    with open(root / rows["studio/id02-u1/self"]["path"], "wb") as f:
        np.savez(f, **arrays)

    out = tmp_path / "shards"
    result = _shard(corpus, out)
    failures = {f.key: f for f in read_failures(out / "failures.parquet")}
    assert {k: f.error_type for k, f in failures.items()} == {
        "studio/id01-u1": "missing", "studio/id01-u2": "corrupt",
        "studio/id02-u1": "bad_array", "studio/id02-u1/self": "bad_array",
    }
    assert "audio" in failures["studio/id02-u1"].message and "face" in failures["studio/id02-u1/self"].message
    assert all(f.stage == "shard" for f in failures.values())
    assert [r["key"] for r in read_index(out).to_pylist()] == ["cmdfd/id03-u9/w2l"]
    assert result.clips + len(result.failures) == len(rows)
    # The full rows of exactly the sharded clips sit beside the index, for protocol splits.
    assert read_manifest(out / "clips.parquet").to_pylist() == [rows["cmdfd/id03-u9/w2l"]]


def test_corrupt_zip_member_crc_is_caught(corpus: Path, tmp_path: Path) -> None:
    """A flipped byte inside an uncompressed npz member fails its CRC."""
    row = read_manifest(corpus).to_pylist()[0]
    npz = corpus.parent / row["path"]
    with zipfile.ZipFile(npz) as zf:
        info = zf.getinfo("face.npy")
    data = bytearray(npz.read_bytes())
    data[info.header_offset + 30 + len(info.filename) + len(info.extra) + 200] ^= 0xFF
    npz.write_bytes(bytes(data))
    result = _shard(corpus, tmp_path / "shards")
    assert [(f.key, f.error_type) for f in result.failures] == [(row["key"], "corrupt")]


def test_size_limit_packs_big_clips_alone(corpus: Path, tmp_path: Path) -> None:
    result = _shard(corpus, tmp_path / "shards", max_samples_per_shard=100, max_shard_mb=0.05)
    # Each clip is ~40-110 KB: over 50 KB together, so most end up alone; none is lost.
    assert len(result.shards) >= 4
    assert sorted(r["key"] for r in read_index(tmp_path / "shards").to_pylist()) == sorted(c["key"] for c in CLIPS)


def test_avdf_shard_cli(corpus: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from benchmark.cli import main

    params = tmp_path / "params.yaml"
    params.write_text(yaml.safe_dump({
        "preprocess": {"face_size": SIZES[0], "gray_face_size": SIZES[1], "mouth_size": SIZES[2]},
        "shard": {"max_shard_mb": 1, "max_samples_per_shard": 3},
    }))
    out = tmp_path / "shards"
    assert main(["--params", str(params), "shard", "--manifest", str(corpus), "--out", str(out), "--no-progress"]) == 0
    summary = capsys.readouterr().out
    assert "5 clips -> 5 in 2 shard(s)" in summary and "0 failure(s)" in summary
    assert pq.read_table(out / INDEX_NAME).num_rows == 5

    # The default crop sizes (224/112/96) reject these small clips as failures, clearly.
    params.write_text(yaml.safe_dump({"shard": {"max_samples_per_shard": 3}}))
    assert main(["--params", str(params), "shard", "--manifest", str(corpus), "--out", str(tmp_path / "o2"), "--no-progress"]) == 0
    failures = read_failures(tmp_path / "o2" / "failures.parquet")
    assert len(failures) == 5 and all("expected (" in f.message and "224" in f.message for f in failures)


def test_cli_names_a_missing_manifest(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from benchmark.cli import main

    missing = tmp_path / "nope.parquet"
    assert main(["--params", str(tmp_path / "none.yaml"), "shard", "--manifest", str(missing), "--out", str(tmp_path / "o")]) == 2
    assert str(missing) in capsys.readouterr().err
