"""AV-Deepfake1M's ``file;score`` lines: ``avdf submit`` maps each file to one test clip (or names the
bad line), and an export of an evaluation result submits back to the very same metrics."""
from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest

import leaderboard_data as data
from benchmark.av1m_scores import ClipNames, clip_file, export_result
from benchmark.cli import main
from benchmark.protocols import load_protocol
from benchmark.results import METRICS_NAME, DetectorInfo, read_result, read_scores, score_predictions, write_scored

PROTOCOL = "studio-intra-random"
BOOTSTRAP = 20


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """A studio-like manifest whose media sit in folders: ``<corpus>/<name>.mp4``, except that two test
    clips share a file name in different folders and two others share one media path."""
    folder = tmp_path_factory.mktemp("av1m")
    clips = [replace(c, path=f"{c.corpus}/{c.path}") for c in data.studio_manifest()]
    test = sorted(load_protocol(PROTOCOL).split(clips).fold("main").test)
    renamed = {test[0]: "studio/x/same.mp4", test[1]: "studio/y/same.mp4",
               test[2]: "studio/dup.mp4", test[3]: "studio/dup.mp4"}
    clips = [replace(c, path=renamed.get(c.key, c.path)) for c in clips]
    manifest = data.write(clips, folder / "manifest.parquet")
    params = folder / "params.yaml"
    params.write_text(f"evaluate:\n  bootstrap: {BOOTSTRAP}\n  seed: 0\n")
    return clips, manifest, params, test


@pytest.fixture(scope="module")
def evaluated(corpus, tmp_path_factory):
    """An evaluation result (metrics.json + scores.parquet) of stand-in scores on the fold, as evaluate writes it."""
    clips = corpus[0]
    preds = data.predictions(PROTOCOL, clips, quality=1.0)
    scored = score_predictions(load_protocol(PROTOCOL), "main", clips, preds, detector=DetectorInfo("stand-in"),
                               n_bootstrap=BOOTSTRAP, seed=0)
    return write_scored(tmp_path_factory.mktemp("eval") / "main", scored)


def submit(corpus, tmp_path: Path, text: str, *extra: str, name: str = "preds.txt") -> tuple[int, Path]:
    _, manifest, params, _ = corpus
    path = tmp_path / name
    path.write_text(text)
    out = tmp_path / "results"
    rc = main(["--params", str(params), "submit", str(path), "--protocol", PROTOCOL, "--manifest", str(manifest),
               "--out", str(out), *extra])
    return rc, out


def rejected(rc: int, out: Path, capsys, *fragments: str) -> str:
    err = capsys.readouterr().err
    assert rc == 2, err
    for fragment in fragments:
        assert fragment in err, f"{fragment!r} not in {err!r}"
    assert not out.exists() or not any(out.rglob("*")), "a rejected submission wrote files"
    return err


def good_lines(corpus) -> list[tuple[str, float]]:
    """(name, score) of every test clip: bare file names where unique, the path or key otherwise."""
    clips, _, _, test = corpus
    path_of = {c.key: c.path for c in clips}
    names = []
    for i, key in enumerate(test):
        path = path_of[key]
        name = path if i < 2 else key if i < 4 else path.rsplit("/", 1)[-1]
        names.append((name, round(0.01 + 0.98 * ((i * 37) % 71) / 70, 4)))
    return names


def as_text(lines) -> str:
    return "".join(f"{name};{score}\n" for name, score in lines)


# --------------------------------------------------------------------------- round trip

def test_export_then_submit_gives_the_same_metrics(corpus, evaluated, tmp_path, capsys):
    clips, manifest, _, test = corpus
    from pipeline.manifest import read_manifest

    exported = export_result(evaluated, read_manifest(manifest), tmp_path / "av1m" / "main.txt")
    lines = exported.read_text().splitlines()
    assert len(lines) == len(test)
    written = dict(line.split(";") for line in lines)
    # Clips are named by their media path; the two sharing one are named by key, as it would be ambiguous.
    assert "studio/x/same.mp4" in written and test[2] in written and test[3] in written
    assert "studio/dup.mp4" not in written
    sidecar = json.loads(exported.with_name("main.txt.json").read_text())
    assert sidecar["protocol"] == PROTOCOL and sidecar["fold"] == "main" and sidecar["name"] == "stand-in"

    _, _, params, _ = corpus
    out = tmp_path / "results"
    assert main(["--params", str(params), "submit", str(exported), "--protocol", PROTOCOL, "--manifest",
                 str(manifest), "--out", str(out)]) == 0, capsys.readouterr().err
    back_path = out / "stand-in" / f"{PROTOCOL}-v{load_protocol(PROTOCOL).version}" / "main" / METRICS_NAME
    back, before = read_result(back_path), read_result(evaluated)
    assert back["metrics"]["overall"] == before["metrics"]["overall"]
    assert back["metrics"]["per_category"] == before["metrics"]["per_category"]
    columns = ["key", "score"]
    assert read_scores(back_path, back).select(columns) == read_scores(evaluated, before).select(columns)


def test_bare_names_paths_and_keys_score_like_the_keyed_csv(corpus, tmp_path, capsys):
    lines = good_lines(corpus)
    rc, out = submit(corpus, tmp_path, as_text(lines), "--name", "by-file")
    assert rc == 0, capsys.readouterr().err
    clips, _, _, test = corpus
    csv = "key,score\n" + "".join(f"{key},{score}\n" for key, (_, score) in zip(test, lines))
    rc, _ = submit(corpus, tmp_path, csv, "--name", "by-key", name="preds.csv")
    assert rc == 0, capsys.readouterr().err
    folder = f"{PROTOCOL}-v{load_protocol(PROTOCOL).version}/main/{METRICS_NAME}"
    by_file, by_key = read_result(out / "by-file" / folder), read_result(out / "by-key" / folder)
    assert by_file["metrics"]["overall"] == by_key["metrics"]["overall"]
    scores = read_scores(out / "by-file" / folder, by_file)
    assert dict(zip(scores.column("key").to_pylist(), scores.column("score").to_pylist())) == {
        key: score for key, (_, score) in zip(test, lines)}


@pytest.mark.parametrize("name, fmt", [("preds.scores", "av1m"), ("preds.csv", None)])
def test_format_by_flag_or_content(corpus, tmp_path, capsys, name, fmt):
    """--format av1m reads any file name; a .csv whose first line has ';' and no ',' is AV-Deepfake1M's too."""
    rc, _ = submit(corpus, tmp_path, as_text(good_lines(corpus)), *(["--format", fmt] if fmt else []), name=name)
    assert rc == 0, capsys.readouterr().err


def test_format_table_reads_a_txt_as_csv(corpus, tmp_path, capsys):
    rc, out = submit(corpus, tmp_path, as_text(good_lines(corpus)), "--format", "table")
    rejected(rc, out, capsys, "missing column(s) ['key', 'score']")


# --------------------------------------------------------------------------- bad lines

@pytest.mark.parametrize("bad, fragments", [
    ("novalue.mp4", ["line 3: expected 'file;score' (one ';')"]),
    ("a.mp4;0.5;extra", ["line 3: expected 'file;score'"]),
    (";0.5", ["line 3: empty file name"]),
    ("x.mp4;high", ["line 3: score 'high' of 'x.mp4' is not a number"]),
    ("x.mp4;nan", ["line 3: score 'nan'", "not a finite number in [0, 1]"]),
    ("x.mp4;inf", ["line 3: score 'inf'", "not a finite number"]),
    ("x.mp4;1.5", ["line 3: score '1.5'", "[0, 1]"]),
    ("x.mp4;-0.1", ["line 3: score '-0.1'", "[0, 1]"]),
])
def test_malformed_line_is_named(corpus, tmp_path, capsys, bad, fragments):
    lines = as_text(good_lines(corpus)).splitlines()
    text = "\n".join(lines[:2] + [bad] + lines[2:]) + "\n"
    rc, out = submit(corpus, tmp_path, text)
    rejected(rc, out, capsys, "1 malformed line(s)", *fragments)


def test_a_header_is_a_malformed_first_line(corpus, tmp_path, capsys):
    rc, out = submit(corpus, tmp_path, "file;score\n" + as_text(good_lines(corpus)))
    rejected(rc, out, capsys, "line 1: score 'score' of 'file' is not a number")


def test_a_repeated_file_is_named_with_both_lines(corpus, tmp_path, capsys):
    lines = good_lines(corpus)
    rc, out = submit(corpus, tmp_path, as_text(lines + [lines[5]]))
    rejected(rc, out, capsys, f"line {len(lines) + 1}: {lines[5][0]!r} was already given on line 6")


def test_two_names_of_one_clip(corpus, tmp_path, capsys):
    """The bare name and the full path of one clip: the second line scores it again."""
    lines = good_lines(corpus)
    path = next(c.path for c in corpus[0] if c.key == corpus[3][6])
    rc, out = submit(corpus, tmp_path, as_text(lines + [(path, 0.5)]))
    rejected(rc, out, capsys, f"line {len(lines) + 1}: {path!r} names clip {corpus[3][6]!r}, already scored on line 7")


def test_ambiguous_bare_name(corpus, tmp_path, capsys):
    lines = good_lines(corpus)
    lines[0] = ("same.mp4", lines[0][1])  # studio/x/same.mp4 or studio/y/same.mp4
    rc, out = submit(corpus, tmp_path, as_text(lines))
    rejected(rc, out, capsys, "line 1: 'same.mp4' is ambiguous: it fits 2 clips", corpus[3][0], corpus[3][1])


def test_shared_media_path_is_ambiguous(corpus, tmp_path, capsys):
    lines = good_lines(corpus)
    lines[2] = ("studio/dup.mp4", lines[2][1])
    rc, out = submit(corpus, tmp_path, as_text(lines))
    rejected(rc, out, capsys, "line 3: 'studio/dup.mp4' is ambiguous")


def test_unknown_and_training_names(corpus, tmp_path, capsys):
    clips, _, _, test = corpus
    train_clip = next(c for c in clips if c.key not in set(test) and c.corpus == "studio")
    lines = good_lines(corpus)
    text = as_text(lines[:4] + [("nope.mp4", 0.5), (train_clip.path, 0.5)] + lines[4:])
    rc, out = submit(corpus, tmp_path, text)
    rejected(rc, out, capsys, "2 line(s) do not name exactly one new test clip",
             "line 5: 'nope.mp4' names no clip of the test set;",
             f"line 6: {train_clip.path!r} names no clip of the test set (it names [{train_clip.key!r}], "
             "not a test clip")


def test_missing_test_clips_are_reported_by_key(corpus, tmp_path, capsys):
    rc, out = submit(corpus, tmp_path, as_text(good_lines(corpus)[1:]))
    rejected(rc, out, capsys, f"1 of {len(corpus[3])} test key(s) have no prediction", corpus[3][0])


# --------------------------------------------------------------------------- the naming rule

def test_a_preprocessed_clip_is_named_by_its_source_path():
    row = {"key": "c/a", "path": "clips/c__a.npz", "extra": json.dumps({"source_path": "videos/id1/a.mp4"})}
    other = {"key": "c/b", "path": "videos/id2/a.mp4", "extra": None}
    assert clip_file(row) == "videos/id1/a.mp4" and clip_file(other) == "videos/id2/a.mp4"
    names = ClipNames([row, other])
    assert names.keys_named("videos/id1/a.mp4") == ["c/a"]
    assert names.keys_named("clips/c__a.npz") == []
    assert names.keys_named("a.mp4") == ["c/a", "c/b"]
    assert names.keys_named("id1/a.mp4") == []  # a partial path is not a file name
    assert names.keys_named("c/b") == ["c/b"]
    assert [names.name_for("c/a"), names.name_for("c/b")] == ["videos/id1/a.mp4", "videos/id2/a.mp4"]
    semicolon = ClipNames([{"key": "c/s", "path": "odd;name.mp4"}])
    assert semicolon.name_for("c/s") == "c/s"  # a ';' would split the line
