"""AV-Deepfake1M's classification format: one ``file;score`` line per video, no header.

    000001.mp4;0.9128
    000002.mp4;0.0371

``avdf submit`` reads it (``.txt``, or ``--format av1m``) and ``avdf evaluate
--export-av1m`` writes it. A line's ``file`` names a clip of the manifest by
this rule, which the writer follows too, so an export reads back to the same
clips:

- a clip's *file* is its media path relative to its corpus: ``path``, or in a
  preprocessed manifest (whose ``path`` points at the ``.npz`` that
  ``avdf preprocess`` wrote) the original path kept in ``extra.source_path``;
- names are looked up among the clips being scored (one fold's test set), not
  the whole manifest: the same bare name may well be a training video;
- a name equal to a clip's file, or to its key, names that clip; failing that,
  a name without a ``/`` names the clip whose file name (last path component)
  it is, as AV-Deepfake1M's ``000001.mp4`` does;
- a name that fits several clips is ambiguous, one that fits none unknown:
  both are errors naming the line (give the longer relative path, or the key).

The writer gives each clip its file, or its key where the file would not read
back to that clip alone (two test clips sharing a media path, a ``;`` in it).
"""
from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa

from benchmark.results import SHOW, PredictionsError
from pipeline.atomic import atomic_path, write_json_atomic

SEPARATOR = ";"
SUFFIX = ".txt"


@dataclass(frozen=True)
class ScoreLine:
    """One line of the file: its 1-based number, the video's name and its score."""

    line: int
    file: str
    score: float


# --------------------------------------------------------------------------- detection and reading

def looks_like_av1m(path: Path, head: bytes) -> bool:
    """``file;score`` text: a ``.txt`` file, or a first line with a ``;`` and no ``,`` (a CSV header has one)."""
    if path.suffix.lower() == SUFFIX:
        return True
    first = next((line for line in head.decode("utf-8", "replace").splitlines() if line.strip()), "")
    return SEPARATOR in first and "," not in first


def _shown(items: Sequence[str]) -> str:
    more = f" (and {len(items) - SHOW} more)" if len(items) > SHOW else ""
    return "; ".join(items[:SHOW]) + more


def _parse_line(number: int, text: str) -> tuple[ScoreLine | None, str | None]:
    parts = text.split(SEPARATOR)
    if len(parts) != 2:
        return None, f"line {number}: expected 'file;score' (one ';'), got {text!r}"
    name, raw = parts[0].strip(), parts[1].strip()
    if not name:
        return None, f"line {number}: empty file name in {text!r}"
    try:
        score = float(raw)
    except ValueError:
        return None, f"line {number}: score {raw!r} of {name!r} is not a number"
    if not math.isfinite(score) or not 0.0 <= score <= 1.0:
        return None, f"line {number}: score {raw!r} of {name!r} is not a finite number in [0, 1]"
    return ScoreLine(number, name, score), None


def read_scores(path: str | Path) -> list[ScoreLine]:
    """Every ``file;score`` line of ``path``; all malformed lines reported at once, each by number.

    Blank lines are skipped (the challenge's own reader, ``pandas.read_csv``, skips them too).
    """
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8-sig")
    except FileNotFoundError:
        raise PredictionsError(f"{path}: predictions file does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PredictionsError(f"{path}: cannot read AV-Deepfake1M scores ({exc})") from None
    lines: list[ScoreLine] = []
    problems: list[str] = []
    first_line_of: dict[str, int] = {}
    # Split at newlines only (str.splitlines also splits at form feeds & co), so numbers are an editor's.
    for number, raw in enumerate(text.split("\n"), start=1):
        raw = raw.removesuffix("\r")
        if not raw.strip():
            continue
        parsed, problem = _parse_line(number, raw)
        if parsed is None:
            problems.append(str(problem))
            continue
        if parsed.file in first_line_of:
            problems.append(f"line {number}: {parsed.file!r} was already given on line {first_line_of[parsed.file]}")
            continue
        first_line_of[parsed.file] = number
        lines.append(parsed)
    if problems:
        raise PredictionsError(f"{path}: {len(problems)} malformed line(s) (format 'file;score', one video a line, "
                               f"no header): {_shown(problems)}")
    if not lines:
        raise PredictionsError(f"{path}: no 'file;score' lines")
    return lines


# --------------------------------------------------------------------------- names <-> clips

def clip_file(row: Mapping[str, Any]) -> str:
    """A clip's media path relative to its corpus (before preprocessing), with '/' separators."""
    extra = json.loads(row["extra"]) if row.get("extra") else {}
    source = extra.get("source_path") if isinstance(extra, dict) else None
    return Path(source or row["path"]).as_posix()


class ClipNames:
    """Looks names up among a set of clips (one fold's test set) by the rule of the module docstring."""

    def __init__(self, rows: Iterable[Mapping[str, Any]]):
        self.file_of: dict[str, str] = {}
        self._exact: dict[str, set[str]] = {}
        self._bare: dict[str, set[str]] = {}
        for row in rows:
            key, file = row["key"], clip_file(row)
            self.file_of[key] = file
            self._exact.setdefault(key, set()).add(key)
            self._exact.setdefault(file, set()).add(key)
            self._bare.setdefault(file.rsplit("/", 1)[-1], set()).add(key)

    def keys_named(self, name: str) -> list[str]:
        """The clips ``name`` fits (one: resolved; none: unknown; several: ambiguous), sorted."""
        exact = self._exact.get(name)
        if exact:
            return sorted(exact)
        if "/" in name:
            return []
        return sorted(self._bare.get(name, ()))

    def name_for(self, key: str) -> str:
        """What the writer puts on a clip's line: its file when that reads back to it alone, else its key."""
        file = self.file_of[key]
        readable = file == file.strip() and SEPARATOR not in file and "\n" not in file and "\r" not in file
        return file if readable and self.keys_named(file) == [key] else key


def resolve_lines(lines: Sequence[ScoreLine], scope: Sequence[Mapping[str, Any]], where: str,
                  manifest: Sequence[Mapping[str, Any]] = ()) -> pa.Table:
    """(key, score) of each line, its name looked up among the ``scope`` clips.

    ``manifest``: every clip, only to tell a user whose name fits a clip outside the
    scope (a training video, another fold's) which one it is. Unknown, ambiguous and
    repeated clips are all reported at once, each with its line number.
    """
    names = ClipNames(scope)
    outside: ClipNames | None = None
    keys: list[str] = []
    scores: list[float] = []
    line_of: dict[str, ScoreLine] = {}
    problems: list[str] = []
    for entry in lines:
        found = names.keys_named(entry.file)
        if len(found) > 1:
            problems.append(f"line {entry.line}: {entry.file!r} is ambiguous: it fits {len(found)} clips "
                            f"{found[:SHOW]} (give the relative path or the key)")
            continue
        if not found:
            if outside is None:
                outside = ClipNames(manifest)
            elsewhere = outside.keys_named(entry.file)
            hint = f" (it names {elsewhere[:SHOW]}, not a test clip here)" if elsewhere else ""
            problems.append(f"line {entry.line}: {entry.file!r} names no clip of the test set{hint}")
            continue
        key = found[0]
        if key in line_of:
            first = line_of[key]
            problems.append(f"line {entry.line}: {entry.file!r} names clip {key!r}, already scored on line "
                            f"{first.line} ({first.file!r})")
            continue
        line_of[key] = entry
        keys.append(key)
        scores.append(entry.score)
    if problems:
        raise PredictionsError(f"{where}: {len(problems)} line(s) do not name exactly one new test clip: "
                               f"{_shown(problems)}")
    return pa.table({"key": pa.array(keys, pa.string()), "score": pa.array(scores, pa.float64())})


# --------------------------------------------------------------------------- writing

def write_scores(path: str | Path, scores: pa.Table, scope: Sequence[Mapping[str, Any]],
                 claims: Mapping[str, str | None] | None = None) -> Path:
    """Write ``scores`` (key, score) as ``file;score`` lines, named for the ``scope`` clips.

    ``claims`` (protocol, protocol_version, protocol_hash, fold, name, label, weights_sha256) go to
    the sidecar ``<path>.json`` that ``avdf submit`` checks. Scores are written with ``repr``: the
    shortest text that reads back to the same float, so a resubmission scores exactly alike.
    """
    path = Path(path)
    names = ClipNames(scope)
    lines = [f"{names.name_for(key)}{SEPARATOR}{float(score)!r}\n"
             for key, score in zip(scores.column("key").to_pylist(), scores.column("score").to_pylist())]
    with atomic_path(path) as tmp:
        tmp.write_text("".join(lines))
    if claims:
        write_json_atomic(path.with_name(path.name + ".json"), {k: v for k, v in claims.items() if v is not None})
    return path


def export_result(metrics_path: str | Path, clips: pa.Table, dest: str | Path) -> Path:
    """An ``avdf evaluate`` result (metrics.json + its scores.parquet) as ``file;score`` lines at ``dest``.

    The names are looked up among the result's own videos (its fold's test set) in ``clips``, and
    the sidecar claims the result's protocol, fold and detector, so ``avdf submit dest`` scores the
    same videos with the same scores under the same protocol definition.
    """
    from benchmark.results import read_result, read_scores

    result = read_result(metrics_path)
    scores = read_scores(metrics_path, result)
    if scores is None:
        raise PredictionsError(f"{metrics_path}: the result has no scores file to export")
    test = set(scores.column("key").to_pylist())
    protocol, detector = result["protocol"], result["detector"]
    claims = {"protocol": protocol["name"], "protocol_version": protocol["version"],
              "protocol_hash": protocol.get("hash"), "fold": result["fold"], "name": detector["name"],
              "label": detector.get("label"), "weights_sha256": detector.get("weights_sha256")}
    scope = [row for row in clips.to_pylist() if row["key"] in test]
    return write_scores(dest, scores.select(["key", "score"]), scope, claims)
