from dataclasses import fields

import pyarrow as pa
import pytest

from pipeline.clip import CLIP_SCHEMA, Clip, category_of, safe_id, validate_key
from pipeline.errors import ManifestError
from pipeline.manifest import (
    Failure,
    check_accounting,
    read_clips,
    read_failures,
    read_manifest,
    write_failures,
    write_manifest,
)


def _clip(key: str = "studio/id00001-utt0", **kw) -> Clip:
    return Clip(key=key, corpus="studio", identity="id00001", video_id="id00001-v0", path="a.mp4", **kw)


def test_clip_dataclass_and_schema_list_the_same_fields():
    assert {f.name for f in fields(Clip)} == set(CLIP_SCHEMA.names)


def test_round_trip_keeps_every_field(tmp_path):
    fake = _clip(
        "cmdfd/id00001-utt0/wav2lip",
        label=1,
        video_fake=True,
        category="FVRA",
        method="wav2lip",
        generator="wav2lip@1.0",
        source_keys=["voxceleb2/id00001-utt0", "voxceleb2/id00002-utt3"],
        fps=25.0,
        sample_rate=16000,
        num_frames=50,
        num_samples=32000,
        duration_s=2.0,
    )
    path = tmp_path / "m.parquet"
    write_manifest([_clip(), fake], path)
    assert read_clips(path) == [_clip(), fake]
    assert read_manifest(path).schema.equals(CLIP_SCHEMA)


@pytest.mark.parametrize("key", ["studio/a.b", "nocorpus", "studio/a b", "studio/", "a/b/c/d/e"])
def test_invalid_keys_are_refused(key):
    with pytest.raises(ValueError, match="invalid clip key"):
        validate_key(key)


def test_safe_id_strips_dots_and_slashes():
    assert safe_id("00001.mp4") == "00001-mp4"
    assert validate_key("x/" + safe_id("a/b.c"))


def test_category_must_match_modality_labels():
    assert category_of(True, False) == "FVRA"
    with pytest.raises(ValueError, match="disagrees"):
        _clip(label=1, video_fake=True, category="RVFA")


def _table(**override):
    row = _clip().to_row()
    row.update(override)
    return pa.Table.from_pylist([row])


def test_wrong_column_type_names_the_column(tmp_path):
    table = _table(label="zero")
    with pytest.raises(ManifestError, match="column 'label'"):
        write_manifest(table, tmp_path / "m.parquet")


def test_unknown_and_missing_columns_are_named(tmp_path):
    with pytest.raises(ManifestError, match=r"unknown column\(s\) \['colour'\]"):
        write_manifest(_table(colour="red"), tmp_path / "m.parquet")
    with pytest.raises(ManifestError, match=r"missing required column\(s\) \['identity'\]"):
        write_manifest(_table().drop(["identity"]), tmp_path / "m.parquet")


def test_null_in_required_column_and_duplicate_keys(tmp_path):
    with pytest.raises(ManifestError, match="column 'path' is required but row 0 is null"):
        write_manifest(_table(path=None), tmp_path / "m.parquet")
    with pytest.raises(ManifestError, match="duplicate"):
        write_manifest([_clip(), _clip()], tmp_path / "m.parquet")
    assert not (tmp_path / "m.parquet").exists()


def test_missing_or_garbage_manifest(tmp_path):
    with pytest.raises(ManifestError, match="does not exist"):
        read_manifest(tmp_path / "none.parquet")
    (tmp_path / "bad.parquet").write_text("not parquet")
    with pytest.raises(ManifestError, match="not a readable Parquet manifest"):
        read_manifest(tmp_path / "bad.parquet")


def test_failures_round_trip_and_accounting(tmp_path):
    fails = [Failure("studio/b", "preprocess", "no_face", "no face in 50 of 50 frames")]
    write_failures(fails, tmp_path / "failures.parquet")
    assert read_failures(tmp_path / "failures.parquet") == fails
    write_failures([], tmp_path / "empty.parquet")
    assert read_failures(tmp_path / "empty.parquet") == []
    check_accounting(["studio/a", "studio/b"], ["studio/a"], fails)
    with pytest.raises(ManifestError, match="1 input"):
        check_accounting(["studio/a", "studio/b", "studio/c"], ["studio/a"], fails)
