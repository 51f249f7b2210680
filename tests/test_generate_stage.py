"""``avdf generate`` end to end on Ray: manifests, failures, CSV, rerun retries only failures."""
from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from generators.registry import GENERATORS
from generators.stage import GenerateParams, generate_recipe, plan
from generators.synthetic import talking_corpus
from pipeline.clip import Clip
from pipeline.manifest import read_clips, read_failures, write_manifest
from pipeline.media import read_tags


@pytest.fixture(scope="module")
def real_manifest(tmp_path_factory) -> Path:
    """3 identities x 2 talking clips, plus one identity whose files have no video stream."""
    root = tmp_path_factory.mktemp("gen_stage") / "corpus"
    clips = talking_corpus(root, seconds=0.6)
    # Its fakes must fail cleanly (no face to forge), the rest go on.
    (root / "id3").mkdir()
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                    "sine=frequency=440:sample_rate=16000:duration=0.6", "-c:a", "aac", str(root / "id3/u0.mp4")],
                   check=True)
    (root / "id3/u1.mp4").write_bytes((root / "id3/u0.mp4").read_bytes())
    for u in range(2):
        clips.append(Clip(key=f"voxceleb2/id3/u{u}", corpus="voxceleb2", identity="id3", video_id=f"id3/v{u}",
                          path=f"id3/u{u}.mp4"))
    write_manifest(clips, root / "manifest.parquet")
    return root / "manifest.parquet"


def test_cmdfd_stage_end_to_end(ray_session, real_manifest, tmp_path):
    params = GenerateParams(recipes=["cmdfd"], min_voiced_fraction=0.0, cmdfd_methods={"wav2lip": "wav2lip"})
    out = tmp_path / "out"
    fakes, failures, computed, skipped = generate_recipe("cmdfd", real_manifest, out, params, progress=False)
    # 4 targets x (cross + self): id3's two fakes fail (no face), the other 6 succeed.
    assert len(fakes) + len(failures) == 8
    assert len(failures) == 2 and all(f.key.split("/")[1].startswith("id3_") for f in failures)
    assert all(f.error_type == "no_video" and "no video stream" in f.message for f in failures)
    written = read_clips(out / "cmdfd" / "manifest.parquet")
    # The build as released: its real (origin) clips beside its fakes, all in corpus cmdfd.
    origins = [c for c in written if c.label == 0]
    assert [c.key for c in written if c.label == 1] == [c.key for c in fakes] and len(fakes) == 6
    # Only targets something was made from (id3's forging failed): one origin clip each.
    assert len(origins) == 3 and {c.key.split("/")[2].split("_")[0] for c in origins} == {"id0", "id1", "id2"}
    assert {c.corpus for c in written} == {"cmdfd"} and all(c.method == "real" for c in origins)
    for c in origins:  # same media as the VoxCeleb2 clip it re-keys, which it names as its source
        source = next(r for r in read_clips(real_manifest) if r.key == c.source_keys[0])
        assert (out / "cmdfd" / c.path).resolve() == (real_manifest.parent / source.path).resolve()
        assert (c.identity, c.video_id, c.sha256) == (source.identity, source.video_id, source.sha256)
    for c in fakes:
        media = out / "cmdfd" / c.path
        assert media.exists() and read_tags(media)["avdf_synthetic"] == "1"
        assert c.generator == f"wav2lip@{GENERATORS.get('wav2lip').version}" and c.fps == 25 and c.sample_rate == 16000 and c.sha256
        assert c.source_keys[0].startswith(f"voxceleb2/{c.identity}/")
        assert json.loads(c.extra)["target_key"] in {o.source_keys[0] for o in origins}
    assert len(read_failures(out / "cmdfd" / "failures.parquet")) == 2
    # The tasks' shared cache is gone (never part of the output DVC hashes); failures are in plan order.
    assert not (out / "cache").exists()
    planned = [t.key for t in plan("cmdfd", read_clips(real_manifest), real_manifest.parent, params)]
    assert [f.key for f in failures] == [k for k in planned if k in {f.key for f in failures}]
    # Rerun: nothing recomputed but the failures.
    fakes2, failures2, computed2, skipped2 = generate_recipe("cmdfd", real_manifest, out, params, progress=False)
    assert skipped2 == 6 and computed2 == 0 and len(failures2) == 2
    assert [c.sha256 for c in fakes2] == [c.sha256 for c in fakes]


def test_cmdfd_build_round_trips_through_the_released_layout(ray_session, tmp_path_factory, monkeypatch):
    """generate -> released layout (My_Test tree + lists) -> the cmdfd adapter -> cross-dataset:
    every CMDFD subset fold has the build's reals and its fakes, the _S fakes carry their own
    clip's audio, and the lists read back with the released columns and names."""
    import csv

    from benchmark.protocols import load_protocol
    from pipeline.ingest.base import ingest
    from pipeline.ingest.cmdfd import COLUMNS
    from pipeline.media import decode_audio
    from pipeline.replicas.writer import write_replica

    root = tmp_path_factory.mktemp("roundtrip")
    clips = talking_corpus(root / "vox", identities=4, utterances=1, seconds=0.6)
    # Keys and identities as the voxceleb2 adapter writes them (VoxCeleb2 ids, '-' separators).
    clips = [Clip.from_row({**c.to_row(), "key": f"voxceleb2/id0000{c.identity[2:]}-yt-Ab_{c.identity[2:]}-00001",
                            "identity": f"id0000{c.identity[2:]}"}) for c in clips]
    write_manifest(clips, root / "vox" / "manifest.parquet")
    params = GenerateParams(recipes=["cmdfd"], min_voiced_fraction=0.0, methods_per_target={"cmdfd": 2})
    fakes, failures, _, _ = generate_recipe("cmdfd", root / "vox" / "manifest.parquet", root / "gen", params,
                                            progress=False)
    assert not failures and len(fakes) == 16  # 4 targets x 2 methods (rotating over all 4) x 2 drivers
    summary = write_replica("cmdfd", root / "gen" / "cmdfd" / "manifest.parquet", root / "release", progress=False)
    assert not summary.failed and not summary.skipped and summary.root == root / "release" / "My_Test"
    lists = root / "release" / "lists"
    assert {p.stem for p in lists.glob("*.csv")} == {"W2L", "W2L_Self", "VideoReTalk", "VideoReTalk_Self",
                                                     "Audio2Head", "Audio2Head_Self", "MakeItTalk", "MakeItTalk_Self"}
    with open(lists / "W2L_Self.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == list(COLUMNS) and sum(r["ID_Name"].startswith("origin+") for r in rows) == 4
    selfie = next(r for r in rows if r["ID_Name"].startswith("wav2lip_Self+"))
    ident = selfie["ID_Name"].split("+")[1].split("-")[0]
    # As released: the _S fake's Audio_Path is its real clip's own wav in origin/ (<identity>_<video>).
    real_name = f"{ident}_yt-Ab_{ident[-1]}-00001"
    assert selfie["Audio_Path"] == f"/data2/caiyu/data/My_Test/origin/{real_name}.wav"
    assert selfie["Video_Path"] == f"/data2/caiyu/data/My_Test/wav2lip_Self/{ident}-{ident}.mp4"
    own = decode_audio(root / "release/My_Test/wav2lip_Self" / f"{ident}-{ident}.mp4")
    real_audio = decode_audio(root / "vox" / f"id{ident[-1]}" / "u0.mp4")
    n = min(len(own), len(real_audio))
    assert np.corrcoef(own[:n], real_audio[:n])[0, 1] > 0.99  # driven by the clip's own track
    origin_wav = decode_audio(root / "release/My_Test/origin" / f"{real_name}.wav")
    assert np.corrcoef(origin_wav[:n], real_audio[:n])[0, 1] > 0.99
    # A rerun changes nothing; the lists are the same bytes.
    before = {p.name: p.read_bytes() for p in lists.glob("*.csv")}
    again = write_replica("cmdfd", root / "gen" / "cmdfd" / "manifest.parquet", root / "release", progress=False)
    assert again.written == 0 and {p.name: p.read_bytes() for p in lists.glob("*.csv")} == before

    # A relative --root, as a DVC stage passes it.
    monkeypatch.chdir(root)
    manifest = Path("release/My_Test/manifest.parquet")
    ingested = ingest("cmdfd", Path("release/My_Test"), manifest, lists=Path("release/lists"), progress=False)
    assert ingested.failures == 0 and ingested.outputs == 20  # 4 reals once each + 16 fakes
    got = read_clips(manifest)
    assert {c.corpus for c in got} == {"cmdfd"}
    assert {c.identity for c in got} == {c.identity for c in clips}  # read back from the released names
    # Cross-dataset needs FakeAVCeleb to train on; a few rows stand in for it (the split reads rows only).
    fav = [Clip(key=f"fakeavceleb/{v}-{k}", corpus="fakeavceleb", identity=f"id9{v}", video_id=f"id9{v}",
                path="x.mp4", label=k, video_fake=bool(k), category="FVRA" if k else "RVRA",
                method="wav2lip" if k else "real") for v in range(10) for k in (0, 1)]
    splits = load_protocol("cross-dataset").split(got + fav, folds=[
        "W2L", "W2L_S", "VRT", "VRT_S", "A2H", "A2H_S", "MIT", "MIT_S"])
    for name, fold in splits.folds.items():
        assert fold.sizes()["test_real"] == 4 and fold.sizes()["test_fake"] == 2, name


def test_missing_external_checkout_fails_before_any_task(real_manifest, tmp_path):
    from pipeline.errors import ConfigError

    params = GenerateParams(min_voiced_fraction=0.0, cmdfd_methods={"wav2lip": "wav2lip-external"},
                            generator_options={"wav2lip-external": {"checkout": str(tmp_path / "nope")}})
    with pytest.raises(ConfigError, match="does not exist"):
        generate_recipe("cmdfd", real_manifest, tmp_path / "out", params, progress=False)
    assert not (tmp_path / "out" / "cmdfd" / "done").exists()


def test_cmdfd_release_refuses_identities_the_release_cannot_name(tmp_path):
    from pipeline.replicas.base import ReplicaError
    from pipeline.replicas.writer import write_replica

    rows = [Clip(key="studio-cmdfd/origin/s001-u00", corpus="studio-cmdfd", identity="s001", video_id="s001-v0",
                 path="a.mp4"),
            Clip(key="studio-cmdfd/s001-u00--s002-u00/wav2lip", corpus="studio-cmdfd", identity="s001",
                 video_id="s001-v0", path="b.mp4", label=1, video_fake=True, category="FVRA", method="wav2lip")]
    write_manifest(rows, tmp_path / "manifest.parquet")
    with pytest.raises(ReplicaError, match=r"VoxCeleb2 identity \(idNNNNN\); identities \['s001'\]"):
        write_replica("cmdfd", tmp_path / "manifest.parquet", tmp_path / "out", progress=False)
