"""``avdf generate`` end to end on Ray: manifests, failures, CSV, rerun retries only failures."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from generators.stage import GenerateParams, generate_recipe
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
    assert [c.key for c in written] == [c.key for c in fakes] and len(written) == 6
    for c in written:
        media = out / "cmdfd" / c.path
        assert media.exists() and read_tags(media)["avdf_synthetic"] == "1"
        assert c.generator == "wav2lip@1" and c.fps == 25 and c.sample_rate == 16000 and c.sha256
        assert c.source_keys[0].startswith(f"voxceleb2/{c.identity}/")
    combined = read_clips(out / "cmdfd" / "combined.parquet")
    reals = [c for c in combined if c.label == 0]
    assert len(reals) == 4 and all((out / "cmdfd" / c.path).resolve().exists() for c in reals)
    assert len(read_failures(out / "cmdfd" / "failures.parquet")) == 2
    assert (out / "cmdfd" / "csv" / "W2L.csv").exists() and (out / "cmdfd" / "csv" / "W2L_Self.csv").exists()
    # Rerun: nothing recomputed but the failures.
    fakes2, failures2, computed2, skipped2 = generate_recipe("cmdfd", real_manifest, out, params, progress=False)
    assert skipped2 == 6 and computed2 == 0 and len(failures2) == 2
    assert [c.sha256 for c in fakes2] == [c.sha256 for c in fakes]


def test_missing_external_checkout_fails_before_any_task(real_manifest, tmp_path):
    from pipeline.errors import ConfigError

    params = GenerateParams(min_voiced_fraction=0.0, cmdfd_methods={"wav2lip": "wav2lip-external"},
                            generator_options={"wav2lip-external": {"checkout": str(tmp_path / "nope")}})
    with pytest.raises(ConfigError, match="does not exist"):
        generate_recipe("cmdfd", real_manifest, tmp_path / "out", params, progress=False)
    assert not (tmp_path / "out" / "cmdfd" / "done").exists()
