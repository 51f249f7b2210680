"""Ingest adapters on fixture trees in each corpus' native layout, with small real mp4s."""
from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from pipeline.clip import Clip
from pipeline.ingest.base import IngestError, ingest, make_adapter
from pipeline.manifest import read_clips, read_failures, write_manifest

REFERENCE_LISTS = Path(__file__).resolve().parents[1].parent / "shared" / "reference" / "cmdfd_csv"


@pytest.fixture
def mp4(make_clip) -> Path:
    """One real 0.5 s, 64x48, 25 fps + 16 kHz mono clip; fixture trees copy it."""
    return make_clip("seed.mp4", duration=0.5, size="64x48")


def place(src: Path, root: Path, *rels: str) -> None:
    for rel in rels:
        dest = root / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dest)


def corrupt(src: Path, dest: Path) -> None:
    """A truncated copy: the moov atom is gone, ffprobe fails."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_bytes(src.read_bytes()[: 200])


def by_key(clips: list[Clip]) -> dict[str, Clip]:
    return {c.key: c for c in clips}


def check_counts(summary, manifest: Path) -> tuple[list[Clip], list]:
    clips = read_clips(manifest)
    failures = read_failures(summary.failures_path)
    assert summary.inputs == len(clips) + len(failures)
    assert (summary.outputs, summary.failures) == (len(clips), len(failures))
    for c in clips:  # paths resolve from the manifest's folder
        assert (manifest.parent / c.path).is_file(), c.path
    return clips, failures


# --------------------------------------------------------------------------- voxceleb2


def test_voxceleb2_layout_probe_and_failures(mp4, tmp_path):
    root = tmp_path / "vox2"
    place(mp4, root, "dev/mp4/id00012/21Uxsk56VDQ/00001.mp4", "dev/mp4/id00012/21Uxsk56VDQ/00002.mp4",
          "dev/mp4/id00012/zz_Yt-9/00001.mp4", "test/mp4/id09999/abc/00003.mp4", "dev/mp4/stray.mp4")
    corrupt(mp4, root / "dev/mp4/id00013/broken/00001.mp4")
    out = tmp_path / "manifests" / "vox2.parquet"
    summary = ingest("voxceleb2", root, out, progress=False)
    clips, failures = check_counts(summary, out)
    assert summary.inputs == 6
    got = by_key(clips)
    assert set(got) == {
        "voxceleb2/id00012-21Uxsk56VDQ-00001", "voxceleb2/id00012-21Uxsk56VDQ-00002",
        "voxceleb2/id00012-zz_Yt-9-00001", "voxceleb2/id09999-abc-00003",
    }
    c = got["voxceleb2/id00012-21Uxsk56VDQ-00002"]
    assert (c.identity, c.video_id, c.label, c.category, c.method) == ("id00012", "id00012-21Uxsk56VDQ", 0, "RVRA", "real")
    assert json.loads(c.extra)["split"] == "dev" and json.loads(got["voxceleb2/id09999-abc-00003"].extra)["split"] == "test"
    assert c.fps == pytest.approx(25.0) and c.sample_rate == 16000
    assert 12 <= c.num_frames <= 13 and c.num_samples == pytest.approx(8000, abs=1100)
    assert c.duration_s == pytest.approx(0.5, abs=0.1)
    assert c.path == "../vox2/dev/mp4/id00012/21Uxsk56VDQ/00002.mp4"
    kinds = {f.key: f.error_type for f in failures}
    assert kinds["voxceleb2/id00013-broken-00001"] in ("truncated", "not_media")
    assert kinds["voxceleb2/dev-mp4-stray"] == "layout"
    assert all(f.stage == "ingest" for f in failures)


def test_no_probe_only_checks_existence(mp4, tmp_path):
    root = tmp_path / "vox2"
    place(mp4, root, "dev/mp4/id00001/v/00001.mp4")
    corrupt(mp4, root / "dev/mp4/id00001/v/00002.mp4")
    summary = ingest("voxceleb2", root, root / "manifest.parquet", probe=False, hash_files=True, progress=False)
    clips, failures = check_counts(summary, root / "manifest.parquet")
    assert len(clips) == 2 and not failures and clips[0].fps is None and len(clips[0].sha256) == 64


# --------------------------------------------------------------------------- fakeavceleb

FAV_HEADER = ["source", "target1", "target2", "method", "category", "type", "race", "gender", "path", ""]


def _fav_row(source, t1, t2, method, cat, type_, race, gender, filename):
    return [source, t1, t2, method, cat, type_, race, gender, filename, f"FakeAVCeleb/{type_}/{race}/{gender}/{source}"]


def test_fakeavceleb_meta_data_csv(mp4, tmp_path):
    root = tmp_path / "FakeAVCeleb"
    rows = [
        _fav_row("id00076", "-", "-", "real", "A", "RealVideo-RealAudio", "African", "men", "00109.mp4"),
        _fav_row("id00166", "-", "-", "real", "A", "RealVideo-RealAudio", "Asian (East)", "women", "00010.mp4"),
        _fav_row("id00076", "-", "-", "rtvc", "B", "RealVideo-FakeAudio", "African", "men", "00109_fake.mp4"),
        _fav_row("id00076", "id00166", "-", "wav2lip", "C", "FakeVideo-RealAudio", "African", "men", "00109_id00166_wavtolip.mp4"),
        _fav_row("id00076", "id00166", "id00173", "fsgan-wav2lip", "D", "FakeVideo-FakeAudio", "African", "men",
                 "00109_id00166_Abc-d_id00173_wavtolip.mp4"),
        _fav_row("id00076", "id00166", "-", "wav2lip", "C", "FakeVideo-RealAudio", "African", "men", "00109_id00166_wavtolip.mp4"),
        _fav_row("id00076", "-", "-", "magic", "C", "FakeVideo-RealAudio", "African", "men", "00109_magic.mp4"),
        _fav_row("id00166", "id00076", "-", "faceswap", "C", "FakeVideo-RealAudio", "Asian (East)", "women", "00010_missing.mp4"),
    ]
    root.mkdir()
    with open(root / "meta_data.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(FAV_HEADER)
        w.writerows(rows)
    for r in rows[:5]:
        place(mp4, root, f"{r[9].split('/', 1)[1]}/{r[8]}")
    out = root / "manifest.parquet"
    summary = ingest("fakeavceleb", root, out, progress=False)
    clips, failures = check_counts(summary, out)
    assert summary.notes == {"duplicate rows merged": 1}
    got = by_key(clips)
    real = got["fakeavceleb/RVRA-id00076-00109"]
    assert (real.label, real.method, real.ethnicity, real.gender, real.sync) == (0, "real", "African", "men", True)
    assert real.path == "RealVideo-RealAudio/African/men/id00076/00109.mp4"
    assert got["fakeavceleb/RVRA-id00166-00010"].ethnicity == "Asian (East)"
    rtvc = got["fakeavceleb/RVFA-id00076-00109_fake"]
    assert (rtvc.label, rtvc.video_fake, rtvc.audio_fake, rtvc.method) == (1, False, True, "rtvc")
    wl = got["fakeavceleb/FVRA-id00076-00109_id00166_wavtolip"]
    assert (wl.category, wl.identity, wl.audio_source_identity) == ("FVRA", "id00076", "id00166")
    assert wl.source_keys == ["fakeavceleb/RVRA-id00076-00109", "fakeavceleb/RVRA-id00166-00010"]
    fv = got["fakeavceleb/FVFA-id00076-00109_id00166_Abc-d_id00173_wavtolip"]
    assert (fv.category, fv.method, fv.audio_source_identity) == ("FVFA", "fsgan-wav2lip", "id00173")
    # A video and its fakes share one group; the other identity's video is its own.
    assert {c.video_id for c in clips if c.identity == "id00076"} == {"id00076-00109"}
    assert got["fakeavceleb/RVRA-id00166-00010"].video_id == "id00166-00010"
    kinds = {f.key: f.error_type for f in failures}
    assert kinds == {"fakeavceleb/FVRA-id00076-00109_magic": "bad_label", "fakeavceleb/FVRA-id00166-00010_missing": "missing"}


def test_fakeavceleb_missing_columns_is_clear(tmp_path):
    (tmp_path / "meta_data.csv").write_text("source,method,path\nid1,real,a.mp4\n")
    with pytest.raises(IngestError, match=r"lacks column\(s\) \['target1', 'target2', 'category', 'type', 'race', 'gender'\]"):
        make_adapter("fakeavceleb", tmp_path).scan()


# --------------------------------------------------------------------------- cmdfd

CMDFD_HEADER = ["ID_Name", "Audio_Path", "Video_Path", "ENtire_Label", "Audio_Label", "Video_Label",
                "Identi_Label", "Sync_Label", "Frame_Len", "Audio_Len", "FPS", "AudioSamRate"]
AUTHOR = "/data9/someone/data/My_Test"
FAV_AUTHOR = "/projects/someone/data/FakeAVCeleb1.0/DATA/TEST/ARRANGED_RAW_VIDEO"


def _write_list(path: Path, rows: list[list]) -> None:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(CMDFD_HEADER)
        w.writerows(rows)


def test_cmdfd_tiny_lists_rerooted(mp4, tmp_path):
    lists, root = tmp_path / "lists", tmp_path / "cmdfd"
    lists.mkdir()
    origin = lambda c: [f"origin+{c}", f"{AUTHOR}/origin/{c}.wav", f"{AUTHOR}/origin/{c}.mp4", 0, 0, 0, 1, 1, 12, 8000, 25, 16000]  # noqa: E731
    _write_list(lists / "W2L.csv", [
        origin("id00001_yt-A_1"), origin("id00002_ytB"),
        ["wav2lip+id00001-id00002", f"{AUTHOR}/origin/id00002_ytB.wav", f"{AUTHOR}/wav2lip/id00001-id00002.mp4", 1, 0, 1, 0, 1, 12, 8000, 25, 16000],
        ["wav2lip+id00002-id00001", f"{AUTHOR}/origin/id00001_yt-A_1.wav", f"{AUTHOR}/wav2lip/id00002-id00001.mp4", 1, 0, 1, 0, 1, 12, 8000, 25, 16000],
        ["wav2lip+id00003-id00001", "", f"{AUTHOR}/wav2lip/id00003-id00001.mp4", 1, 1, 0, 0, 1, 12, 8000, 25, 16000],
        ["wav2lip+id00004-id00001", "", f"{AUTHOR}/wav2lip/id00004-id00001.mp4", 1, 0, 2, 0, 1, 12, 8000, 25, 16000],
    ])
    _write_list(lists / "W2L_Self.csv", [
        origin("id00001_yt-A_1"),
        ["wav2lip_Self+id00001-id00001", f"{AUTHOR}/origin/id00001_yt-A_1.wav", f"{AUTHOR}/wav2lip_Self/id00001-id00001.mp4", 1, 0, 1, 1, 1, 12, 8000, 25, 16000],
    ])
    _write_list(lists / "FAV_test_FAKE_W2L_C.csv", [
        ["id07233+00010_id07195_wXq_wavtolip+ARVF", "", f"{FAV_AUTHOR}/FAKE_W2L_C/Indian/MEN/id07233/ozetTgOHu78/00010_id07195_wXq_wavtolip.mp4",
         1, 0, 1, 0, 1, 115, 76800, 25, 16000],
    ])
    _write_list(lists / "FAV_test_REAL_A.csv", [
        ["id07233+00010+ARVR", "", f"{FAV_AUTHOR}/REAL_A/Indian/MEN/id07233/ozetTgOHu78/00010.mp4", 0, 0, 0, 1, 1, 115, 76800, 25, 16000],
    ])
    (lists / "FAV_train.csv").write_text("")  # the release ships an empty one
    place(mp4, root, "origin/id00001_yt-A_1.mp4", "origin/id00002_ytB.mp4", "wav2lip/id00001-id00002.mp4",
          "wav2lip_Self/id00001-id00001.mp4", "DATA/TEST/ARRANGED_RAW_VIDEO/FAKE_W2L_C/Indian/MEN/id07233/ozetTgOHu78/00010_id07195_wXq_wavtolip.mp4",
          "DATA/TEST/ARRANGED_RAW_VIDEO/REAL_A/Indian/MEN/id07233/ozetTgOHu78/00010.mp4")
    out = root / "manifest.parquet"
    summary = ingest("cmdfd", root, out, lists=lists, progress=False)
    clips, failures = check_counts(summary, out)
    got = by_key(clips)
    # 10 list rows, of which one is the real id00001 again (W2L_Self): one clip, not two.
    assert summary.inputs == 9 and summary.notes == {"empty lists skipped": 1, "duplicate rows merged": 1}
    real = got["cmdfd/origin/id00001_yt-A_1"]
    assert real.label == 0 and json.loads(real.extra)["lists"] == ["W2L", "W2L_Self"]
    assert json.loads(got["cmdfd/origin/id00002_ytB"].extra)["lists"] == ["W2L"]
    fake = got["cmdfd/W2L/wav2lip-id00001-id00002"]
    assert (fake.identity, fake.audio_source_identity, fake.method, fake.category, fake.self_audio, fake.sync) == (
        "id00001", "id00002", "wav2lip", "FVRA", False, True)
    assert fake.video_id == real.video_id == "id00001_yt-A_1"
    assert fake.source_keys == ["cmdfd/origin/id00001_yt-A_1", "cmdfd/origin/id00002_ytB"]
    assert fake.path == "wav2lip/id00001-id00002.mp4"
    extra = json.loads(fake.extra)
    assert extra["subset"] == "W2L" and extra["audio_path"].endswith("cmdfd/origin/id00002_ytB.wav")
    selfie = got["cmdfd/W2L_Self/wav2lip_Self-id00001-id00001"]
    # _S: driven by the clip's own audio track, so its only source is that clip
    assert selfie.self_audio is True and selfie.source_keys == ["cmdfd/origin/id00001_yt-A_1"]
    fav = got["fakeavceleb/test/id07233-00010_id07195_wXq_wavtolip-ARVF"]
    assert (fav.corpus, fav.method, fav.category, fav.ethnicity, fav.gender) == ("fakeavceleb", "wav2lip", "FVRA", "Asian (South)", "men")
    assert fav.video_id == "id07233-ozetTgOHu78" and json.loads(fav.extra)["split"] == "test"
    assert fav.source_keys == ["fakeavceleb/test/id07233-00010-ARVR"]
    kinds = {f.key: f.error_type for f in failures}
    assert kinds == {
        "cmdfd/W2L/wav2lip-id00002-id00001": "missing",
        "cmdfd/W2L/wav2lip-id00003-id00001": "missing",
        "cmdfd/W2L/wav2lip-id00004-id00001": "bad_row",
    }
    assert "Video_Label is '2'" in next(f.message for f in failures if f.error_type == "bad_row")


def test_cmdfd_strip_prefix_and_missing_lists(tmp_path):
    lists = tmp_path / "lists"
    lists.mkdir()
    _write_list(lists / "MakeItTalk.csv", [
        ["MakeItTalk+id1-id2", "/mnt/x/mit/id1-id2.wav", "/mnt/x/mit/id1-id2.mp4", 1, 0, 1, 0, 0, 10, 6400, 25, 16000],
        ["MakeItTalk+id3-id4", "/other/id3-id4.wav", "/other/id3-id4.mp4", 1, 0, 1, 0, 0, 10, 6400, 25, 16000],
    ])
    result = make_adapter("cmdfd", tmp_path, lists=lists, strip_prefix="/mnt/x").scan()
    assert result.clips[0].path == f"{tmp_path.as_posix()}/mit/id1-id2.mp4"
    assert result.clips[0].method == "makeittalk" and result.clips[0].sync is False
    assert [f.error_type for f in result.failures] == ["bad_row"] and "--strip-prefix" in result.failures[0].message
    with pytest.raises(IngestError, match="needs --lists DIR"):
        make_adapter("cmdfd", tmp_path)
    with pytest.raises(IngestError, match="--lists folder does not exist"):
        make_adapter("cmdfd", tmp_path, lists=tmp_path / "nope")


@pytest.mark.skipif(not REFERENCE_LISTS.is_dir(), reason="released CMDFD lists absent")
def test_cmdfd_released_lists_all_parse(tmp_path):
    result = make_adapter("cmdfd", tmp_path, lists=REFERENCE_LISTS).scan()
    assert not result.failures
    keys = [c.key for c in result.clips]
    assert len(keys) == len(set(keys))
    cmdfd_reals = [c for c in result.clips if c.corpus == "cmdfd" and c.label == 0]
    # The 1,000 reals shared by the 8 lists are one clip each, listed in all 8.
    assert len(cmdfd_reals) == 1000 and len({c.path for c in cmdfd_reals}) == 1000
    assert all(len(json.loads(c.extra)["lists"]) == 8 for c in cmdfd_reals)
    real_keys = {c.key for c in cmdfd_reals}
    subsets: dict[str, list[Clip]] = {}
    for c in result.clips:
        subsets.setdefault(json.loads(c.extra)["subset"], []).append(c)
    for name in ("W2L", "W2L_Self", "VideoReTalk", "VideoReTalk_Self", "Audio2Head", "Audio2Head_Self", "MakeItTalk", "MakeItTalk_Self"):
        fakes = subsets[name]
        assert fakes and all(c.label == 1 and c.self_audio is name.endswith("_Self") for c in fakes), name
        assert all(c.source_keys and set(c.source_keys) <= real_keys for c in fakes), name
        assert all(c.path.startswith(tmp_path.as_posix()) and "My_Test" not in c.path for c in fakes)
    # W2L_Self: the fake is driven by the real clip's own audio, so its source is that one clip.
    selfie = next(c for c in subsets["W2L_Self"] if "id00420-id00420" in c.key)
    assert selfie.source_keys == ["cmdfd/origin/id00420_sb9xiyXW0aw"]
    fav = [c for c in result.clips if c.corpus == "fakeavceleb"]
    per_list = sum(sum(1 for _ in open(f)) - 1 for f in REFERENCE_LISTS.glob("FAV_*_*.csv"))
    # FAV_test.csv is the union of the FAV_test_* lists: it adds no clip.
    assert len(fav) == per_list and len({c.path for c in fav}) == len(fav)
    assert {json.loads(c.extra)["split"] for c in fav} == {"train", "test"}
    assert {c.method for c in fav} == {"real", "rtvc", "wav2lip", "faceswap", "fsgan", "faceswap-wav2lip", "fsgan-wav2lip"}
    assert {c.ethnicity for c in fav} == {
        "African", "Asian (East)", "Asian (South)", "Caucasian (American)", "Caucasian (European)"}


# --------------------------------------------------------------------------- kodf


def test_kodf_layout_with_korean_metadata(mp4, tmp_path):
    root = tmp_path / "kodf"
    place(mp4, root, "original_videos/s001/s001_a.mp4", "original_videos/s002/s002_b.mp4",
          "synthesized_videos/fsgan/s001/s001_x.mp4", "synthesized_videos/fo/s002/s002_y.mp4", "synthesized_videos/loose.mp4")
    (root / "변조영상_training_메타데이터.csv").write_text("영상ID,타겟영상,변조모델\ns001_x.mp4,s001_a.mp4,fsgan\n", encoding="utf-8")
    summary = ingest("kodf", root, root / "manifest.parquet", progress=False)
    clips, failures = check_counts(summary, root / "manifest.parquet")
    got = by_key(clips)
    real = got["kodf/real-s001-s001_a"]
    assert (real.label, real.identity, real.category) == (0, "s001", "RVRA")
    swap = got["kodf/fsgan-s001-s001_x"]
    assert (swap.label, swap.category, swap.method, swap.video_id, swap.source_keys) == (
        1, "FVRA", "fsgan", real.video_id, [real.key])
    assert got["kodf/fo-s002-s002_y"].method == "fomm" and got["kodf/fo-s002-s002_y"].source_keys == []
    assert [(f.key, f.error_type) for f in failures] == [("kodf/fake-loose", "layout")]


# --------------------------------------------------------------------------- studio


def test_studio_manifest_is_validated_and_rerooted(mp4, tmp_path):
    studio = tmp_path / "studio"
    place(mp4, studio, "clips/id000/utt0.mp4", "clips/id001/utt0.mp4")
    write_manifest([
        Clip(key="studio/id000-utt0", corpus="studio", identity="id000", video_id="id000-utt0", path="clips/id000/utt0.mp4"),
        Clip(key="studio/id001-utt0", corpus="studio", identity="id001", video_id="id001-utt0", path="clips/id001/utt0.mp4"),
    ], studio / "manifest.parquet")
    (studio / "clips/id001/utt0.mp4").unlink()
    out = tmp_path / "work" / "studio.parquet"
    summary = ingest("studio", studio, out, progress=False)
    clips, failures = check_counts(summary, out)
    assert [c.key for c in clips] == ["studio/id000-utt0"] and clips[0].path == "../studio/clips/id000/utt0.mp4"
    assert clips[0].fps == pytest.approx(25.0)
    assert [(f.key, f.error_type) for f in failures] == [("studio/id001-utt0", "missing")]


# --------------------------------------------------------------------------- folder


def test_folder_labels_csv(mp4, tmp_path):
    root = tmp_path / "mine"
    place(mp4, root, "alice/real1.mp4", "alice/fake1.mp4", "bob/x.mp4", "top.mp4")
    (root / "labels.csv").write_text(
        "path,label,identity,category,method\n"
        "alice/real1.mp4,0,,,\n"
        "alice/fake1.mp4,1,,RVFA,tts\n"
        "bob/x.mp4,1,robert,,\n"
        "top.mp4,0,,,\n"
        "gone.mp4,1,,,\n"
    )
    summary = ingest("folder", root, root / "manifest.parquet", name="my-data", progress=False)
    clips, failures = check_counts(summary, root / "manifest.parquet")
    got = by_key(clips)
    assert got["my-data/alice-real1"].identity == "alice" and got["my-data/alice-real1"].method == "real"
    assert (got["my-data/alice-fake1"].category, got["my-data/alice-fake1"].method) == ("RVFA", "tts")
    bob = got["my-data/bob-x"]
    assert (bob.identity, bob.category, json.loads(bob.extra)) == ("robert", "FVRA", {"modality_assumed": True})
    assert got["my-data/top"].identity == "top"
    assert [(f.key, f.error_type) for f in failures] == [("my-data/gone", "missing")]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("file,label\na.mp4,0\n", r"lacks column\(s\) \['path'\]"),
        ("path,label\na.mp4,2\n", r"line 2: label is '2', expected 0 \(real\) or 1 \(fake\)"),
        ("path,label,category\na.mp4,0,FVRA\n", "contradicts"),
        ("path,label\nnope.mp4,0\nnada.mp4,1\n", r"none of the 2 listed files exist .*wrong --root"),
    ],
)
def test_folder_bad_labels_are_clear_errors(mp4, tmp_path, text, message):
    place(mp4, tmp_path, "a.mp4")
    (tmp_path / "labels.csv").write_text(text)
    with pytest.raises(IngestError, match=message):
        make_adapter("folder", tmp_path).scan()


# --------------------------------------------------------------------------- CLI


def _cli(*argv: str) -> int:
    """``avdf ingest ...`` through the subcommand's own parser and run()."""
    import argparse

    import pipeline.ingest as cmd

    parser = argparse.ArgumentParser()
    parser.add_argument("--params", default="no-such-params.yaml")
    cmd.add_arguments(parser)
    return cmd.run(parser.parse_args(list(argv)))


def test_cli_ingest_and_option_errors(mp4, tmp_path, capsys):
    from pipeline.errors import AvdfError

    root = tmp_path / "vox2"
    place(mp4, root, "dev/mp4/id00001/v/00001.mp4")
    assert _cli("voxceleb2", "--root", str(root), "--out", str(root / "m.parquet")) == 0
    assert "ingest voxceleb2: 1 inputs -> 1 clips, 0 failures" in capsys.readouterr().out
    with pytest.raises(IngestError, match="--lists do not apply to the voxceleb2 adapter"):
        _cli("voxceleb2", "--root", str(root), "--out", str(root / "m.parquet"), "--lists", str(tmp_path))
    with pytest.raises(AvdfError, match="did you mean 'voxceleb2'"):
        _cli("voxceleb", "--root", str(root), "--out", str(root / "m.parquet"))
