"""``avdf replica``: the studio corpus in each corpus' native layout, read back by the real adapters.

The inputs are studio-shaped without rendering the studio (minutes): the studio's own plan
(identities, groups, genders, videos, transcripts of ``plan_clips``) over tiny talking clips
(``generators.synthetic.talking_corpus``), and fakes whose rows are the recipes' own plans
(``generators.stage.plan``: the labels, methods, provenance ``avdf generate`` writes), each
fake's media a link to its target clip (the replicas never look at pixels, IDForge aside,
which only samples frames). The slow test at the end runs the real path: ``avdf fetch studio``,
``avdf generate``, ``avdf replica``, ``avdf ingest``.
"""
from __future__ import annotations

import json
import os
import shutil
from collections import defaultdict
from pathlib import Path

import pytest

from generators.stage import GenerateParams, plan
from generators.synthetic import talking_corpus
from pipeline.atomic import sha256_file
from pipeline.clip import Clip
from pipeline.ingest.base import ingest
from pipeline.manifest import read_clips, read_failures, write_manifest
from pipeline.replicas.base import RACE_OF_GROUP, ReplicaError
from pipeline.replicas.writer import RECORD_NAME, read_record, write_replica

IDENTITIES, UTTERANCES = 10, 3
CORPORA = ("voxceleb2", "fakeavceleb", "idforge", "faceforensics", "celebdf", "kodf")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, Path]:
    """A studio manifest (30 real clips, 10 identities over the 5 groups x 2 genders, 2 videos
    each) and the two recipes' fakes manifests, laid out as `avdf fetch` / `avdf generate` write them."""
    from pipeline.studio.plan import plan_clips

    root = tmp_path_factory.mktemp("replica_inputs")
    studio = root / "studio"
    talking_corpus(studio / "clips", identities=IDENTITIES, utterances=UTTERANCES, seconds=0.4, size=48)
    reals = []
    for spec in plan_clips(IDENTITIES, UTTERANCES, 0):
        person = spec.identity
        rel = f"clips/id{person.index}/u{spec.utterance}.mp4"
        extra = {"transcript": spec.text or f"read speech {spec.read_file}", "group": person.group}
        reals.append(Clip(key=spec.key, corpus="studio", identity=person.name, video_id=spec.video_id, path=rel,
                          ethnicity=person.group, gender=person.gender, sha256=sha256_file(studio / rel),
                          extra=json.dumps(extra, sort_keys=True)))
    write_manifest(reals, studio / "manifest.parquet")
    out = {"studio": studio}
    # FakeAVCeleb: every target forged twice, so the five categories appear twice each; CMDFD:
    # half the identities, one method each (the four methods, cross and self audio).
    sizes = {"fakeavceleb": (IDENTITIES, 2), "cmdfd": (IDENTITIES // 2, 1)}
    for recipe, (targets, methods) in sizes.items():
        params = GenerateParams(min_voiced_fraction=0.0, max_targets=targets, methods_per_target={recipe: methods})
        folder = root / "generated" / recipe
        fakes = []
        for task in plan(recipe, reals, studio, params):
            target = studio / next(c.path for c in reals if c.key == task.target_key)
            (folder / task.out).parent.mkdir(parents=True, exist_ok=True)
            os.link(target, folder / task.out)
            fakes.append(Clip.from_row({**task.clip, "path": task.out, "sha256": sha256_file(target)}))
        write_manifest(fakes, folder / "manifest.parquet")
        out[recipe] = folder / "manifest.parquet"
    return out


def _fakes(inputs: dict[str, Path]) -> list[Path]:
    return [inputs["fakeavceleb"], inputs["cmdfd"]]


@pytest.fixture(scope="module")
def by_key(inputs) -> dict[str, Clip]:
    return {c.key: c for m in (inputs["studio"] / "manifest.parquet", *_fakes(inputs)) for c in read_clips(m)}


@pytest.fixture(scope="module")
def replicas(inputs, tmp_path_factory) -> dict[str, tuple[Path, object]]:
    """Each corpus' replica, written once for the module: corpus -> (output folder, summary)."""
    base = tmp_path_factory.mktemp("replicas")
    return {c: (base / c, write_replica(c, inputs["studio"], base / c, _fakes(inputs), progress=False)) for c in CORPORA}


def round_trip(replicas, corpus: str, tmp_path: Path, **options):
    """Ingest a replica with the real adapter (ffprobe and all); return its clips, clip key -> input key
    and the ingest summary."""
    out, summary = replicas[corpus]
    manifest = tmp_path / "ingested" / "manifest.parquet"
    result = ingest(corpus, summary.root, manifest, progress=False, **options)
    failures = read_failures(result.failures_path)
    assert failures == [], failures[:3]
    clips = read_clips(manifest)
    assert result.inputs == len(clips) == summary.written + summary.kept
    record = read_record(out)["files"]
    source = {}
    for c in clips:
        rel = (manifest.parent / c.path).resolve().relative_to(out.resolve()).as_posix()
        source[c.key] = record[rel]["key"]
    assert len(set(source.values())) == len(clips)  # one ingested clip per placed input
    return clips, source, result


def assert_bijection(pairs) -> None:
    """``(native, studio)`` pairs: each native value stands for one studio value and back."""
    forward, backward = defaultdict(set), defaultdict(set)
    for a, b in pairs:
        forward[a].add(b)
        backward[b].add(a)
    assert all(len(v) == 1 for v in forward.values()), dict(forward)
    assert all(len(v) == 1 for v in backward.values()), dict(backward)


def assert_groups_kept(clips: list[Clip], source: dict[str, str], by_key: dict[str, Clip]) -> None:
    """Clips grouped under one native video_id come from one studio video (a split by the native
    groups never cuts a studio video's fakes from their real clip)."""
    studio_video = defaultdict(set)
    for c in clips:
        studio_video[c.video_id].add(by_key[source[c.key]].video_id)
    assert all(len(v) == 1 for v in studio_video.values()), dict(studio_video)


def split_of(clip: Clip) -> str | None:
    return json.loads(clip.extra or "{}").get("split")


# --------------------------------------------------------------------------- round trips


def test_voxceleb2_round_trip(replicas, by_key, tmp_path):
    clips, source, _ = round_trip(replicas, "voxceleb2", tmp_path)
    summary = replicas["voxceleb2"][1]
    assert len(clips) == IDENTITIES * UTTERANCES
    assert {why for _, why in summary.skipped} == {"VoxCeleb2 holds real clips only"}
    assert_bijection((c.identity, by_key[source[c.key]].identity) for c in clips)
    # Videos survive exactly: same utterances under one YouTube-like id.
    assert_bijection((c.video_id, by_key[source[c.key]].video_id) for c in clips)
    assert all(c.label == 0 and c.gender == by_key[source[c.key]].gender for c in clips)
    assert {len(c.video_id.split("-", 1)[1]) for c in clips} == {11}
    header = (replicas["voxceleb2"][0] / "vox2_meta.csv").read_text().splitlines()[0]
    assert header == "VoxCeleb2 ID ,VGGFace2 ID ,Gender ,Set"


def test_fakeavceleb_round_trip_keeps_labels_methods_and_races(replicas, by_key, tmp_path):
    clips, source, ingested = round_trip(replicas, "fakeavceleb", tmp_path)
    out, summary = replicas["fakeavceleb"]
    for c in clips:
        s = by_key[source[c.key]]
        assert (c.label, c.video_fake, c.audio_fake, c.category, c.method) == (
            s.label, s.video_fake, s.audio_fake, s.category, s.method), c.key
        assert c.ethnicity == RACE_OF_GROUP[s.ethnicity] and c.gender == {"female": "women", "male": "men"}[s.gender]
        if c.label and c.method != "rtvc":  # the sheet cannot tell whose voice RTVC cloned: the adapter says None
            speaker = {x.identity for x in clips if by_key[source[x.key]].identity == s.audio_source_identity}
            assert {c.audio_source_identity} == speaker, c.key
    assert_bijection((c.identity, by_key[source[c.key]].identity) for c in clips)
    assert_groups_kept(clips, source, by_key)
    fav = {k for k, c in by_key.items() if json.loads(c.extra or "{}").get("recipe") == "fakeavceleb"}
    assert fav <= set(source.values())  # every FakeAVCeleb-recipe fake made it
    assert {c.category for c in clips} == {"RVRA", "RVFA", "FVRA", "FVFA"}
    assert {c.method for c in clips} >= {"real", "rtvc", "wav2lip", "faceswap-wav2lip", "fsgan-wav2lip"}
    # The sheet: the release's header, and its quirk (a file listed as faceswap-wav2lip, then wav2lip).
    lines = (out / "FakeAVCeleb_v1.2" / "meta_data.csv").read_text().splitlines()
    assert lines[0] == "source,target1,target2,method,category,type,race,gender,path,"
    rows = [line.split(",") for line in lines[1:]]
    assert all(r[9].startswith("FakeAVCeleb/") and r[8].endswith(".mp4") for r in rows)
    twice = [r for r in rows if sum(x[8] == r[8] and x[9] == r[9] for x in rows) == 2]
    assert [r[3] for r in twice] == ["faceswap-wav2lip", "wav2lip"]
    assert ingested.notes == {"files listed twice (faceswap-wav2lip, then wav2lip): first kept": 1}


def test_idforge_round_trip(replicas, inputs, by_key, tmp_path):
    import numpy as np

    from pipeline.frame_folders import group_frame_indices, read_frame_folder
    from pipeline.media import decode_video

    clips, source, _ = round_trip(replicas, "idforge", tmp_path)
    for c in clips:
        s = by_key[source[c.key]]
        extra = json.loads(c.extra)
        assert (c.label, c.video_fake, c.audio_fake) == (s.label, s.video_fake, s.audio_fake), (c.key, s.key)
        assert extra["frame_layout"] == "4x4" and extra["version"] == "v2" and extra["transcript"]
        assert (c.num_frames, c.sample_rate, c.fps) == (16, 16000, None) and c.duration_s > 0.3
    assert_bijection((c.identity, by_key[source[c.key]].identity) for c in clips)
    assert_groups_kept(clips, source, by_key)
    splits = defaultdict(set)
    for c in clips:
        splits[c.identity].add(split_of(c))
    assert all(len(v) == 1 for v in splits.values())  # identity-disjoint
    assert set().union(*splits.values()) == {"train", "val", "test"}
    assert {json.loads(c.extra)["subset"] for c in clips} >= {
        "pristine", "tts_textgen", "lip_audiomismatch_textmismatch", "face_rvc_textmismatch", "lip_rvc_textmismatch"}
    # The frames are 4 evenly spaced runs of 4 consecutive frames of the clip; the text is its transcript.
    real = next(c for c in clips if c.label == 0)
    folder = tmp_path / "ingested" / real.path
    video = decode_video(inputs["studio"] / by_key[source[real.key]].path)
    frames = np.load(folder / "frames_ndarray.npy")
    assert frames.shape == (16, *video.shape[1:]) and np.array_equal(frames, video[group_frame_indices(len(video))])
    assert (folder / f"{folder.stem}.txt").read_text().strip() == json.loads(by_key[source[real.key]].extra)["transcript"]
    # Preprocessing reads the folder back: the 16 frames and the audio under each of them.
    read_frames, audio = read_frame_folder(folder)
    assert np.array_equal(read_frames, frames) and audio.shape == (16 * 640,) and np.abs(audio).max() > 0


def test_faceforensics_round_trip_pairs_and_video_only(replicas, by_key, tmp_path):
    clips, source, _ = round_trip(replicas, "faceforensics", tmp_path)
    originals = {c.video_id: c for c in clips if c.label == 0}
    fakes = [c for c in clips if c.label == 1]
    assert fakes and {c.method for c in fakes} >= {"faceswap", "faceshifter", "neuraltextures"}
    for c in clips:
        extra = json.loads(c.extra)
        assert extra["video_only"] is True and c.sample_rate is None and split_of(c) in ("train", "val", "test")
    for c in fakes:
        s = by_key[source[c.key]]
        assert (c.video_fake, c.audio_fake, s.video_fake) == (True, False, True)
        target = originals[c.video_id]  # the fake is grouped with the original it was made on
        assert by_key[source[target.key]].key == json.loads(s.extra)["target_key"]
        assert split_of(c) == split_of(target) and c.source_keys[0] == target.key
    assert_groups_kept(clips, source, by_key)
    # Split files: pairs, every original in exactly one split.
    out = replicas["faceforensics"][0]
    numbers = [n for part in ("train", "val", "test") for pair in json.loads((out / f"{part}.json").read_text())
               for n in set(pair)]
    assert sorted(set(numbers)) == sorted(c.identity for c in originals.values())
    # Every split holds originals and fakes; CAD's Table 5 tests on the FaceShifter fakes of the test split.
    for part in ("train", "val", "test"):
        assert {c.label for c in clips if split_of(c) == part} == {0, 1}, part
    assert "faceshifter" in {c.method for c in clips if split_of(c) == "test"}


def test_celebdf_round_trip(replicas, by_key, tmp_path):
    clips, source, _ = round_trip(replicas, "celebdf", tmp_path)
    fakes = [c for c in clips if c.label == 1]
    assert fakes and all(by_key[source[c.key]].method in ("faceswap-wav2lip", "fsgan-wav2lip") for c in fakes)
    assert_bijection((c.identity, by_key[source[c.key]].identity) for c in clips)
    assert_groups_kept(clips, source, by_key)
    tests = {c.identity for c in clips if split_of(c) == "test"}
    assert tests and not tests & {c.identity for c in clips if split_of(c) == "train"}
    assert all(json.loads(c.extra)["video_only"] for c in clips)
    lines = (replicas["celebdf"][0] / "List_of_testing_videos.txt").read_text().splitlines()
    assert {line.split()[0] for line in lines} <= {"0", "1"} and any(line.startswith("1 Celeb-real/") for line in lines)


def test_kodf_round_trip(replicas, by_key, tmp_path):
    clips, source, _ = round_trip(replicas, "kodf", tmp_path)
    fakes = [c for c in clips if c.label == 1]
    assert fakes and all(by_key[source[c.key]].category == "FVRA" == c.category for c in fakes)
    assert_bijection((c.identity, by_key[source[c.key]].identity) for c in clips)
    assert all(c.source_keys for c in fakes)  # the Korean sheet linked every fake to its original
    assert_groups_kept(clips, source, by_key)
    assert {p.name for p in replicas["kodf"][0].glob("*.csv")} == {"원본영상_training_메타데이터.csv",
                                                                    "변조영상_training_메타데이터.csv"}


# --------------------------------------------------------------------------- determinism, idempotence, accounting


def _tree(folder: Path) -> dict[str, tuple[int, int]]:
    return {p.relative_to(folder).as_posix(): (p.stat().st_mtime_ns, p.stat().st_ino)
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("corpus", CORPORA)
def test_replica_is_idempotent_and_accounts_for_every_input(corpus, replicas, inputs, by_key):
    out, first = replicas[corpus]
    # Every input is written or skipped with a reason: nothing vanishes.
    assert first.inputs == len(by_key) == first.written + first.kept + len(first.skipped) + len(first.failed)
    assert first.failed == [] and all(why for _, why in first.skipped)
    # A rerun on the complete folder changes nothing (no file rewritten, same inodes).
    before = _tree(out)
    again = write_replica(corpus, inputs["studio"], out, _fakes(inputs), progress=False)
    assert (again.written, again.kept, again.removed) == (0, first.written, 0)
    assert _tree(out) == before


# IDForge's second copy decodes every clip again (~30 s on a busy 2-core machine): slow.
@pytest.mark.parametrize("corpus", [pytest.param(c, marks=pytest.mark.slow) if c == "idforge" else c for c in CORPORA])
def test_replica_is_deterministic(corpus, replicas, inputs, tmp_path):
    out, _ = replicas[corpus]
    other = tmp_path / corpus
    write_replica(corpus, inputs["studio"], other, _fakes(inputs), progress=False)
    # The same inputs elsewhere: the same names, the same bytes of every sheet, split file and record.
    assert sorted(_tree(other)) == sorted(_tree(out))
    for rel in read_record(out)["texts"] + [RECORD_NAME]:
        assert (other / rel).read_bytes() == (out / rel).read_bytes(), rel


def test_links_not_copies_and_video_only_has_no_audio(replicas, inputs, by_key):
    from pipeline.media import probe

    out = replicas["voxceleb2"][0]
    record = read_record(out)["files"]
    rel, entry = next(iter(sorted(record.items())))
    assert (out / rel).samefile(inputs["studio"] / by_key[entry["key"]].path)  # a hard link
    out = replicas["celebdf"][0]
    rel = next(r for r in sorted(read_record(out)["files"]) if r.startswith("Celeb-synthesis/"))
    info = probe(out / rel)
    assert info.audio is None and info.video is not None


def test_changed_inputs_remake_and_stale_files_go(inputs, tmp_path, capsys):
    out = tmp_path / "celebdf"
    full = write_replica("celebdf", inputs["studio"], out, _fakes(inputs), progress=False)
    fakes = [r for r in read_record(out)["files"] if r.startswith("Celeb-synthesis/")]
    assert fakes
    # Without the fakes: their files (and only theirs) are removed, the test list is rewritten.
    reals_only = write_replica("celebdf", inputs["studio"], out, progress=False)
    assert reals_only.removed == len(fakes) and reals_only.kept == full.written - len(fakes)
    assert not (out / "Celeb-synthesis").exists()
    assert all(line.startswith("1 ") for line in (out / "List_of_testing_videos.txt").read_text().splitlines())
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith(f"replica celebdf: {reals_only.inputs} inputs -> 0 written, {reals_only.kept} already there")
    assert f"{len(fakes)} stale removed" in line


def test_missing_media_is_a_recorded_failure_and_retried(inputs, tmp_path):
    studio = tmp_path / "studio"
    shutil.copytree(inputs["studio"], studio)
    victim = read_clips(studio / "manifest.parquet")[0]
    (studio / victim.path).unlink()
    out = tmp_path / "vox"
    summary = write_replica("voxceleb2", studio, out, progress=False)
    assert [k for k, _ in summary.failed] == [victim.key] and "does not exist" in summary.failed[0][1]
    assert summary.written == IDENTITIES * UTTERANCES - 1
    assert read_record(out)["failed"][0][0] == victim.key
    shutil.copyfile(inputs["studio"] / victim.path, studio / victim.path)
    again = write_replica("voxceleb2", studio, out, progress=False)
    assert (again.written, again.failed) == (1, [])


def test_bad_inputs_are_clear_errors(inputs, tmp_path):
    from pipeline.errors import RegistryError

    with pytest.raises(ReplicaError, match="studio manifest does not exist"):
        write_replica("celebdf", tmp_path / "nowhere", tmp_path / "out")
    with pytest.raises(RegistryError, match="did you mean 'celebdf'"):
        write_replica("celebd", inputs["studio"], tmp_path / "out")
    write_replica("kodf", inputs["studio"], tmp_path / "out", progress=False)
    with pytest.raises(ReplicaError, match="holds a kodf replica"):
        write_replica("celebdf", inputs["studio"], tmp_path / "out")


def test_cli(inputs, tmp_path, capsys):
    from benchmark.cli import main

    out = tmp_path / "fav"
    assert main(["replica", "fakeavceleb", "--studio", str(inputs["studio"]), "--fakes", str(inputs["fakeavceleb"]),
                 "--fakes", str(inputs["cmdfd"]), "--out", str(out)]) == 0
    line = capsys.readouterr().out.strip().splitlines()[-1]
    assert line.startswith("replica fakeavceleb: ") and line.endswith(str(out / "FakeAVCeleb_v1.2"))
    assert main(["replica", "celebdf", "--studio", str(tmp_path / "none"), "--out", str(out)]) == 2
    assert "avdf replica: error: " in capsys.readouterr().err


# --------------------------------------------------------------------------- the real path, end to end

E2E_PARAMS = """\
generate:
  max_targets: 5
  methods_per_target: {cmdfd: 1, fakeavceleb: 1}
ray:
  num_cpus: 2
  object_store_mb: 256
"""


@pytest.mark.slow
def test_fetch_generate_replica_ingest_end_to_end(tmp_path):
    """The rendered studio corpus and real generated fakes: every replica ingests with zero failures."""
    import subprocess
    import sys

    def avdf(*args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "benchmark.cli", *args], cwd=tmp_path, capture_output=True,
                              text=True, timeout=1200)
        assert done.returncode == 0, f"avdf {' '.join(args)}:\n{done.stdout[-2000:]}\n{done.stderr[-3000:]}"
        return done.stdout

    (tmp_path / "params.yaml").write_text(E2E_PARAMS)
    avdf("fetch", "studio", "--out", "studio", "--identities", "10", "--utterances", "1")
    avdf("generate", "--manifest", "studio/manifest.parquet", "--out", "generated")
    fakes = ["generated/fakeavceleb/manifest.parquet", "generated/cmdfd/manifest.parquet"]
    studio = {c.key: c for m in ("studio/manifest.parquet", *fakes) for c in read_clips(tmp_path / m)}
    for corpus in CORPORA:
        line = avdf("replica", corpus, "--studio", "studio", "--fakes", *fakes, "--out", f"replicas/{corpus}")
        root = line.strip().splitlines()[-1].rsplit(" -> ", 1)[1]
        out = avdf("ingest", corpus, "--root", root, "--out", f"ingested/{corpus}.parquet")
        assert ", 0 failures" in out, out
        record = read_record(tmp_path / "replicas" / corpus)["files"]
        for clip in read_clips(tmp_path / "ingested" / f"{corpus}.parquet"):
            rel = (tmp_path / "ingested" / clip.path).resolve().relative_to((tmp_path / "replicas" / corpus).resolve())
            source = studio[record[rel.as_posix()]["key"]]
            assert clip.label == source.label and clip.video_fake == source.video_fake, (corpus, clip.key)
