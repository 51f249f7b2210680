import pytest

from pipeline.atomic import atomic_path, is_up_to_date, mark_done, sha256_file, sha256_json, write_json_atomic


def test_atomic_path_leaves_nothing_on_failure(tmp_path):
    dest = tmp_path / "out.bin"
    with pytest.raises(RuntimeError):
        with atomic_path(dest) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("killed")
    assert list(tmp_path.iterdir()) == []


def test_atomic_path_renames_on_success_and_keeps_suffix(tmp_path):
    dest = tmp_path / "sub" / "out.parquet"
    with atomic_path(dest) as tmp:
        assert tmp.suffix == ".parquet" and tmp.parent == dest.parent
        tmp.write_bytes(b"data")
    assert dest.read_bytes() == b"data"
    assert [p.name for p in dest.parent.iterdir()] == ["out.parquet"]


def test_skip_when_output_exists_with_same_inputs_hash(tmp_path):
    out = tmp_path / "result.json"
    h1 = sha256_json({"b": 1, "a": [1, 2]})
    assert h1 == sha256_json({"a": [1, 2], "b": 1})
    assert not is_up_to_date(out, h1)
    write_json_atomic(out, {"x": 1})
    assert not is_up_to_date(out, h1)  # exists but was never stamped
    mark_done(out, h1)
    assert is_up_to_date(out, h1)
    assert not is_up_to_date(out, sha256_json({"b": 2}))
    out.unlink()
    assert not is_up_to_date(out, h1)


def test_sha256_file(tmp_path):
    p = tmp_path / "f"
    p.write_bytes(b"abc")
    assert sha256_file(p) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
