"""`avdf preprocess` as a Ray stage: real clips, bad clips as failure rows, resume after a kill."""
import shutil

import numpy as np
import pytest

from pipeline.clip import Clip
from pipeline.manifest import read_failures, read_manifest, write_manifest
from pipeline.media import SAMPLES_PER_FRAME, decode_video, write_mp4
from pipeline.preprocess import PreprocessParams, preprocess_manifest
from pipeline.raycluster import RayParams

REAL = [
    "Hangz-nju-cuhk_Talking-Face_PC-AVS__misc_Audio_Source_00086.mp4",
    "OpenTalker_video-retalking__examples_face_5.mp4",
]


def _clip(key, path, **kw):
    return Clip(key=key, corpus="t", identity=key.split("/")[1], video_id=key.split("/")[1], path=path, **kw)


@pytest.fixture
def corpus(tmp_path, shared_media, make_clip):
    """Two manifests in different folders: two real talking clips (first 2 s); a clip with no
    face, one with no audio and one corrupt."""
    root = tmp_path / "corpus"
    root.mkdir()
    clips = []
    for i, name in enumerate(REAL):
        src = shared_media / "real_talking" / name
        frames = decode_video(src, num_frames=50)
        from pipeline.media import decode_audio

        audio = decode_audio(src, num_samples=50 * SAMPLES_PER_FRAME)
        write_mp4(root / f"real{i}.mp4", frames, audio)
        clips.append(_clip(f"t/real{i}", f"real{i}.mp4"))
    write_manifest(clips, root / "manifest.parquet")
    bad = tmp_path / "bad" / "media"
    bad.mkdir(parents=True)
    shutil.copy(make_clip("pattern.mp4", duration=1), bad / "pattern.mp4")
    shutil.copy(make_clip("silent.mp4", duration=1, audio=False), bad / "silent.mp4")
    (bad / "broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + b"garbage" * 100)
    bad_clips = [_clip(f"t/{n}", f"media/{n}.mp4") for n in ("pattern", "silent", "broken")]
    write_manifest(bad_clips, tmp_path / "bad" / "manifest.parquet")
    return [root / "manifest.parquet", tmp_path / "bad" / "manifest.parquet"]


@pytest.mark.realmedia
def test_preprocess_stage_end_to_end_and_resume(ray_session, corpus, tmp_path):
    out = tmp_path / "pre"
    result = preprocess_manifest(corpus, out, PreprocessParams(), RayParams())
    rows = read_manifest(out / "manifest.parquet").to_pylist()
    failures = {f.key: f for f in read_failures(out / "failures.parquet")}
    assert {r["key"] for r in rows} == {"t/real0", "t/real1"}
    assert failures["t/pattern"].error_type == "no_face"
    assert failures["t/silent"].error_type == "no_audio"
    assert failures["t/broken"].error_type in ("truncated", "not_media")
    assert len(rows) + len(failures) == 5
    for row in rows:
        arrays = np.load(out / row["path"])
        t = row["num_frames"]
        assert t == 50 and arrays["face"].shape == (t, 224, 224, 3)
        assert arrays["face_gray"].shape == (t, 112, 112) and arrays["mouth"].shape == (t, 96, 96)
        assert arrays["audio"].shape == (t * SAMPLES_PER_FRAME,)
        assert arrays["face_found"].mean() >= 0.95
    assert "5 inputs -> 2 done" in result.summary() and "3 failed" in result.summary()

    # Kill-and-restart: a clip whose result never landed is the only one recomputed, with the same output.
    before = np.load(out / rows[0]["path"])["face"].copy()
    (out / "done" / "t__real0.json").unlink()
    (out / rows[0]["path"]).unlink()
    again = preprocess_manifest(corpus, out, PreprocessParams(), RayParams())
    assert again.computed == 1 and again.skipped == 1 and len(again.failures) == 3
    assert np.array_equal(np.load(out / rows[0]["path"])["face"], before)
    assert read_manifest(out / "manifest.parquet").to_pylist() == rows


def test_clips_of_the_same_media_file_are_preprocessed_once(ray_session, tmp_path, make_clip):
    """A CMDFD-style build lists each forged real clip again, re-keyed, at the very same mp4: the stage
    computes it once and links the arrays for the others (a byte-identical copy elsewhere counts too);
    a copy of a failed clip fails alike; every input is done or failed, and a rerun computes nothing."""
    import json
    import os

    from generators.synthetic import make_talking_clip

    real = tmp_path / "studio"
    real.mkdir()
    make_talking_clip(real / "a.mp4", seconds=1.6, size=160, seed=1)
    make_talking_clip(real / "b.mp4", seconds=1.6, size=160, seed=2)
    shutil.copy(make_clip("pattern.mp4", duration=1), real / "pattern.mp4")
    write_manifest([_clip("t/a", "a.mp4"), _clip("t/b", "b.mp4"), _clip("t/nf", "pattern.mp4")],
                   real / "manifest.parquet")
    build = tmp_path / "build" / "cmdfd"
    build.mkdir(parents=True)
    shutil.copy(real / "a.mp4", build / "copy.mp4")
    write_manifest([
        _clip("t/a_origin", "../../studio/a.mp4"),
        _clip("t/a_copy", "copy.mp4"),
        # The one per-clip option: a video-only corpus' clip is preprocessed on its own.
        _clip("t/a_video_only", "../../studio/a.mp4", extra=json.dumps({"video_only": True})),
        _clip("t/nf_origin", "../../studio/pattern.mp4"),
    ], build / "manifest.parquet")
    manifests = [real / "manifest.parquet", build / "manifest.parquet"]

    out = tmp_path / "pre"
    result = preprocess_manifest(manifests, out, PreprocessParams(detect_every=2), RayParams())
    rows = {r["key"]: r for r in read_manifest(out / "manifest.parquet").to_pylist()}
    failures = {f.key: f for f in read_failures(out / "failures.parquet")}
    assert list(rows) == ["t/a", "t/b", "t/a_origin", "t/a_copy", "t/a_video_only"]  # input order
    assert set(failures) == {"t/nf", "t/nf_origin"} and "7 inputs -> 5 done" in result.summary()
    assert failures["t/nf_origin"].error_type == failures["t/nf"].error_type == "no_face"
    assert "same media file as t/nf" in failures["t/nf_origin"].message

    def described(key):
        return json.loads(rows[key]["extra"])["preprocess"]

    assert described("t/a_origin")["same_media_as"] == described("t/a_copy")["same_media_as"] == "t/a"
    assert all("same_media_as" not in described(k) for k in ("t/a", "t/b", "t/a_video_only"))
    first = out / rows["t/a"]["path"]
    for key in ("t/a_origin", "t/a_copy"):
        linked = out / rows[key]["path"]
        assert linked != first and os.path.samefile(linked, first)  # the arrays, not a recomputation
        assert rows[key]["num_frames"] == rows["t/a"]["num_frames"] == 40
        assert {k: v for k, v in described(key).items() if k != "same_media_as"} == described("t/a")
        assert (out / "provenance" / f"{key.replace('/', '__')}.json").exists()
    assert not os.path.samefile(out / rows["t/a_video_only"]["path"], first)

    again = preprocess_manifest(manifests, out, PreprocessParams(detect_every=2), RayParams())
    assert again.computed == 0 and again.skipped == 5 and len(again.failures) == 2
    assert read_manifest(out / "manifest.parquet").to_pylist() == list(rows.values())
