"""The IDForge, FaceForensics++ and Celeb-DF adapters on fixture trees in each release's exact layout,
with tiny real media (the project's own mp4 writer; IDForge v2 folders of frames + mp3 + transcript),
including each release's gotchas."""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from pipeline.clip import Clip
from pipeline.ingest.base import IngestError, ingest, make_adapter
from pipeline.manifest import read_clips, read_failures
from pipeline.media import write_mp4


@pytest.fixture(scope="module")
def silent_mp4(tmp_path_factory) -> Path:
    """A real 8-frame, 32x24 video-only mp4 (FF++ and Celeb-DF have no audio); fixture trees copy it."""
    path = tmp_path_factory.mktemp("media") / "v.mp4"
    frames = np.random.default_rng(0).integers(0, 255, (8, 24, 32, 3), dtype=np.uint8)
    return write_mp4(path, frames)


@pytest.fixture(scope="module")
def mp3(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("media") / "a.mp3"
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                    "sine=frequency=300:sample_rate=16000:duration=0.5", "-c:a", "libmp3lame", str(path)], check=True)
    return path


def place(src: Path, root: Path, *rels: str) -> None:
    for rel in rels:
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, root / rel)


def run(corpus: str, root: Path, tmp_path: Path, **options) -> tuple[dict[str, Clip], dict[str, str], object]:
    """Ingest (probing every file); check the counts add up; return clips by key, failure types by key, summary."""
    out = tmp_path / "manifest" / "m.parquet"
    summary = ingest(corpus, root, out, progress=False, **options)
    clips, failures = read_clips(out), read_failures(summary.failures_path)
    assert summary.inputs == len(clips) + len(failures) and (summary.outputs, summary.failures) == (len(clips), len(failures))
    return {c.key: c for c in clips}, {f.key: f.error_type for f in failures}, summary


def extra(clip: Clip) -> dict:
    return json.loads(clip.extra)


# --------------------------------------------------------------------------- FaceForensics++


def test_faceforensics_pairs_cover_both_directions(silent_mp4, tmp_path):
    root = tmp_path / "ff"
    place(silent_mp4, root, *[f"original_sequences/youtube/{q}/videos/{n}.mp4" for q in ("c23", "c40")
                               for n in ("953", "974", "000", "001", "002")])
    place(silent_mp4, root,
          "manipulated_sequences/Deepfakes/c23/videos/953_974.mp4", "manipulated_sequences/Deepfakes/c23/videos/974_953.mp4",
          "manipulated_sequences/FaceSwap/c23/videos/953_974.mp4", "manipulated_sequences/NeuralTextures/c23/videos/000_001.mp4",
          "manipulated_sequences/FaceShifter/c40/videos/953_974.mp4",  # another quality: not read at c23
          "manipulated_sequences/DeepFakeDetection/c23/videos/01_02__exit_phone_room__YVGY8LOK.mp4",
          "original_sequences/actors/c23/videos/01__exit_phone_room.mp4",
          "manipulated_sequences/Deepfakes/masks/videos/953_974.mp4",  # masks are not clips
          "manipulated_sequences/FaceSwap/c23/videos/953-974.mp4",  # not <target>_<source>
          "manipulated_sequences/MagicSwap/c23/videos/953_974.mp4")  # not an FF++ method
    (root / "train.json").write_text(json.dumps([["953", "974"]]))
    (root / "val.json").write_text(json.dumps([["000", "001"]]))
    (root / "test.json").write_text("[]")
    got, failed, summary = run("faceforensics", root, tmp_path)
    assert failed == {"faceforensics/faceswap/953-974": "layout", "faceforensics/magicswap/953_974": "bad_label"}
    assert summary.inputs == 13
    # The pair ["953", "974"] covers both originals and both fakes, in both directions.
    pair = ["youtube/953", "youtube/974", "deepfakes/953_974", "deepfakes/974_953", "faceswap/953_974"]
    assert {extra(got[f"faceforensics/{k}"])["split"] for k in pair} == {"train"}
    assert extra(got["faceforensics/neuraltextures/000_001"])["split"] == "val"
    assert extra(got["faceforensics/youtube/002"]).get("split") is None  # in no pair: kept, counted
    assert summary.notes == {"clips in no split": 3}  # 002, the actor's original, the DFD fake
    fake, target = got["faceforensics/deepfakes/974_953"], got["faceforensics/youtube/974"]
    assert (fake.label, fake.video_fake, fake.audio_fake, fake.category, fake.method) == (1, True, False, "FVRA", "deepfakes")
    assert (fake.identity, fake.video_id) == (target.identity, target.video_id) == ("974", "youtube-974")
    assert fake.source_keys == ["faceforensics/youtube/974", "faceforensics/youtube/953"]
    assert target.label == 0 and target.sync is None
    dfd = got["faceforensics/deepfakedetection/01_02__exit_phone_room__YVGY8LOK"]
    assert dfd.video_id == got["faceforensics/actors/01__exit_phone_room"].video_id and dfd.identity == "actor-01"
    for c in got.values():
        assert extra(c)["video_only"] is True and c.sample_rate is None and c.num_frames == 8
        assert "/c23/" in c.path
    # --compression picks the other quality folder.
    got40, failed40, _ = run("faceforensics", root, tmp_path / "c40", compression="c40")
    assert not failed40 and set(got40) == {f"faceforensics/youtube/{n}" for n in ("953", "974", "000", "001", "002")} | {
        "faceforensics/faceshifter/953_974"}


def test_faceforensics_bad_roots_and_splits_are_clear_errors(silent_mp4, tmp_path):
    with pytest.raises(IngestError, match="no original_sequences/ or manipulated_sequences/"):
        make_adapter("faceforensics", tmp_path)
    place(silent_mp4, tmp_path, "original_sequences/youtube/c40/videos/000.mp4")
    with pytest.raises(IngestError, match=r"no \*/c23/videos/ folder; found c40: pass --compression"):
        make_adapter("faceforensics", tmp_path).scan()
    with pytest.raises(IngestError, match="--compression 'c99'"):
        make_adapter("faceforensics", tmp_path, compression="c99")
    adapter = make_adapter("faceforensics", tmp_path, compression="c40")
    (tmp_path / "train.json").write_text('[["000", "001"]]')
    (tmp_path / "test.json").write_text('[["001", "002"]]')
    with pytest.raises(IngestError, match=r"test.json: video 001 is also in .*train.json \(train\)"):
        adapter.scan()
    (tmp_path / "test.json").write_text('[["001"]]')
    with pytest.raises(IngestError, match=r"test.json: entry 0 is \['001'\], expected a pair"):
        adapter.scan()


# --------------------------------------------------------------------------- Celeb-DF v2


def test_celebdf_list_is_one_for_real(silent_mp4, tmp_path):
    root = tmp_path / "Celeb-DF-v2"
    place(silent_mp4, root, "Celeb-real/id0_0009.mp4", "Celeb-real/id16_0001.mp4", "Celeb-real/id1_0003.mp4",
          "YouTube-real/00170.mp4", "Celeb-synthesis/id0_id16_0009.mp4", "Celeb-synthesis/id1_id16_0003.mp4",
          "Celeb-synthesis/id0_id1_0009.mp4", "Celeb-synthesis/id0-swap.mp4")
    (root / "List_of_testing_videos.txt").write_text(
        "1 YouTube-real/00170.mp4\n"
        "0 Celeb-synthesis/id0_id16_0009.mp4\n"
        "1 Celeb-real/id0_0009.mp4\n"
        "1 Celeb-synthesis/id1_id16_0003.mp4\n"  # a fake labelled real: the list disagrees with the folder
        "0 Celeb-real/id1_0003.mp4\n"  # a real labelled fake
        "1 Celeb-real/id9_0000.mp4\n"  # listed, not on disk
        "2 Celeb-real/id16_0001.mp4\n"  # not a label
        "\n"
    )
    got, failed, summary = run("celebdf", root, tmp_path)
    assert failed == {
        "celebdf/celeb-synthesis/id1_id16_0003": "bad_label", "celebdf/celeb-real/id1_0003": "bad_label",
        "celebdf/celeb-real/id9_0000": "missing", "celebdf/list-line7": "bad_row",
        "celebdf/celeb-synthesis/id0-swap": "layout",
    }
    assert summary.inputs == 10
    real, fake = got["celebdf/celeb-real/id0_0009"], got["celebdf/celeb-synthesis/id0_id16_0009"]
    # "1" in the list is real: the Clip's label is 0 (and "0" a fake, label 1).
    assert (real.label, extra(real)["split"]) == (0, "test") and (fake.label, extra(fake)["split"]) == (1, "test")
    assert (fake.identity, fake.video_id, fake.source_keys) == ("id0", "id0_0009", [real.key])
    assert (fake.video_fake, fake.audio_fake, fake.method, extra(fake)["source_identity"]) == (True, False, "deepfake", "id16")
    youtube = got["celebdf/youtube-real/00170"]
    assert (youtube.label, youtube.identity, extra(youtube)["split"]) == (0, "youtube-00170", "test")
    assert extra(got["celebdf/celeb-real/id16_0001"])["split"] == "train"  # its line did not parse: not listed
    assert extra(got["celebdf/celeb-synthesis/id0_id1_0009"])["split"] == "train"
    assert all(extra(c)["video_only"] and c.sync is None for c in got.values())


def test_celebdf_not_the_layout(tmp_path):
    with pytest.raises(IngestError, match="none of Celeb-real/, YouTube-real/, Celeb-synthesis/"):
        make_adapter("celebdf", tmp_path)


# --------------------------------------------------------------------------- IDForge v2


def v2_folder(root: Path, rel: str, mp3: Path, frames: int = 16, transcript: str | None = "hello there",
              with_npy: bool = True) -> None:
    folder = root / rel
    folder.mkdir(parents=True)
    if with_npy:
        np.save(folder / "frames_ndarray.npy", np.zeros((frames, 12, 10, 3), np.uint8))
    shutil.copyfile(mp3, folder / f"{folder.stem}.mp3")
    if transcript is not None:
        (folder / f"{folder.stem}.txt").write_text(f" {transcript}\n")


def test_idforge_labels_per_subset_are_the_documented_table():
    from pipeline.ingest.idforge import SUBSETS, labels_of

    assert len(SUBSETS) == 11
    for subset in SUBSETS:
        video_fake, audio_fake, sync = labels_of(subset)
        assert video_fake == subset.startswith(("face_", "lip_"))
        assert audio_fake == any(t in subset for t in ("tts", "rvc"))  # audiomismatch audio is a real recording
        assert sync == (subset == "pristine" or subset.startswith("lip_"))


def test_idforge_v2_folders_and_splits(mp3, silent_mp4, make_clip, tmp_path):
    root = tmp_path / "IDForge"
    ok = {
        "pristine/id01/id01_03/clip_a.mp4": "train", "face_tts/id01/id01_03/clip_b.mp4": "train",
        "lip_audiomismatch_textmismatch/id01/id01_03/clip_c.mp4": "val", "rvc_textmismatch/id02/id02_00/clip_d.mp4": "test",
        "face_audiomismatch_textmismatch/id02/id02_00/clip_e.mp4": None,  # in no split file
    }
    for rel in ok:
        v2_folder(root, rel, mp3)
    v2_folder(root, "lip_tts_textgen/id01/id01_03/no_frames.mp4", mp3, with_npy=False)
    v2_folder(root, "tts_textgen/id02/id02_00/short.mp4", mp3, frames=8)
    v2_folder(root, "made_up_subset/id02/id02_00/x.mp4", mp3)
    v2_folder(root, "pristine/id03/loose.mp4", mp3)  # not idNN/idNN_SS/
    v2_folder(root, "pristine/id04/id04_01/twice.mp4", mp3, transcript=None)
    place(make_clip("v1.mp4", duration=0.4, size="32x24"), root, "tts_textmismatch/id02/id02_00/v1.mp4")  # v1: a file
    lists = {"train": [], "val": [], "test": []}
    for rel, split in ok.items():
        if split:
            lists[split].append(rel)
    lists["train"] += ["pristine/id04/id04_01/twice.mp4", "lip_tts_textgen/id01/id01_03/no_frames.mp4",
                       "tts_textgen/id02/id02_00/short.mp4", "tts_textmismatch/id02/id02_00/v1.mp4"]
    lists["test"] += ["pristine/id04/id04_01/twice.mp4", "./face_tts/id09/id09_00/gone.mp4"]
    for split, rels in lists.items():
        (root / f"{split}.csv").write_text("".join(f"{r}\n" for r in rels))
    got, failed, summary = run("idforge", root, tmp_path)
    assert failed == {
        "idforge/lip_tts_textgen/id01_03-no_frames": "missing", "idforge/tts_textgen/id02_00-short": "bad_frames",
        "idforge/made_up_subset/id02_00-x": "bad_label", "idforge/pristine-id03-loose": "layout",
        "idforge/pristine/id04_01-twice": "bad_split", "idforge/face_tts/id09_00-gone": "missing",
    }
    assert summary.notes == {"clips in no split file": 1}  # clip_e
    real = got["idforge/pristine/id01_03-clip_a"]
    assert (real.label, real.identity, real.video_id, real.method, real.path) == (
        0, "id01", "id01_03", "real", "../IDForge/pristine/id01/id01_03/clip_a.mp4")
    e = extra(real)
    assert (e["split"], e["subset"], e["frame_layout"], e["version"], e["transcript"]) == ("train", "pristine", "4x4", "v2", "hello there")
    # Media fields come from the folder: 16 frames in the npy, the rest from the mp3.
    assert (real.num_frames, real.fps, real.sample_rate) == (16, None, 16000) and real.duration_s == pytest.approx(0.5, abs=0.1)
    swap = got["idforge/face_tts/id01_03-clip_b"]
    assert (swap.label, swap.category, swap.method, swap.video_id, swap.sync) == (1, "FVFA", "face_tts", real.video_id, False)
    lip = got["idforge/lip_audiomismatch_textmismatch/id01_03-clip_c"]
    assert (lip.category, lip.sync, extra(lip)["split"]) == ("FVRA", True, "val")
    assert got["idforge/rvc_textmismatch/id02_00-clip_d"].category == "RVFA"
    assert extra(got["idforge/face_audiomismatch_textmismatch/id02_00-clip_e"]).get("split") is None
    v1 = got["idforge/tts_textmismatch/id02_00-v1"]  # a v1 plain mp4 is probed as usual
    assert extra(v1)["version"] == "v1" and "frame_layout" not in extra(v1) and v1.fps == pytest.approx(25)
    # --no-probe only checks that the folders exist; --hash hashes a folder's files.
    got2, failed2, _ = run("idforge", root, tmp_path / "noprobe", probe=False, hash_files=True)
    assert len(got2["idforge/pristine/id01_03-clip_a"].sha256) == 64 and "idforge/tts_textgen/id02_00-short" in got2


def test_idforge_not_the_layout(tmp_path):
    with pytest.raises(IngestError, match="no IDForge subset folder"):
        make_adapter("idforge", tmp_path)
    (tmp_path / "pristine").mkdir()
    with pytest.raises(IngestError, match="no <subset>/idNN/idNN_SS/<name>.mp4 clips"):
        make_adapter("idforge", tmp_path).scan()
