"""Recipes: pair selection (cross-identity vs self audio), two fakes per generator, provenance, CSV export."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from generators.recipes.cmdfd import plan_cmdfd
from generators.recipes.common import select_pairs
from generators.recipes.fakeavceleb import plan_fakeavceleb
from pipeline.clip import Clip, validate_key


def corpus(ids: int = 4, utts: int = 3) -> list[Clip]:
    return [Clip(key=f"voxceleb2/id{i:05d}/vid{u // 2}-{u:05d}", corpus="voxceleb2", identity=f"id{i:05d}",
                 video_id=f"id{i:05d}/vid{u // 2}", path=f"id{i:05d}/{u}.mp4", ethnicity="E", gender="female")
            for i in range(ids) for u in range(utts)]


def test_pairs_are_mutual_swaps_between_identities():
    clips = corpus()
    sel = select_pairs(clips, seed=0, targets_per_identity=2)
    assert len(sel) == 8 and len({s.target.key for s in sel}) == 8
    targets = {s.target.key for s in sel}
    for s in sel:
        assert s.cross.identity != s.target.identity
        # Released CMDFD: A's target is driven by B's target and B's by A's.
        assert s.cross.key in targets
        partner = next(p for p in sel if p.target.key == s.cross.key)
        assert partner.cross.identity == s.target.identity
    assert [(s.target.key, s.cross.key) for s in sel] == [(s.target.key, s.cross.key)
                                                           for s in select_pairs(clips, seed=0, targets_per_identity=2)]
    assert [s.cross.key for s in sel] != [s.cross.key for s in select_pairs(clips, seed=1, targets_per_identity=2)]
    # An odd number of identities: the last one borrows a partner, nobody is left out.
    odd = select_pairs(corpus(ids=5), seed=0)
    assert len(odd) == 5 and all(s.cross.identity != s.target.identity for s in odd)
    # Clear speech: an identity under the threshold is neither target nor audio source.
    voiced = {f"id{i:05d}": 0.9 for i in range(4)} | {"id00002": 0.1}
    sel = select_pairs(clips, 0, voiced=voiced, min_voiced_fraction=0.5)
    assert all("id00002" not in (s.target.identity, s.cross.identity) for s in sel) and len(sel) == 3


def test_max_targets_spreads_over_groups():
    clips = [Clip.from_row({**c.to_row(), "ethnicity": f"group-{int(c.identity[2:]) % 3}",
                            "gender": ("female", "male")[int(c.identity[2:]) // 3 % 2]})
             for c in corpus(ids=12, utts=2)]
    full = select_pairs(clips, seed=0)
    capped = select_pairs(clips, seed=0, max_targets=6)
    assert len(full) == 12 and len(capped) == 6
    assert {(s.target.ethnicity, s.target.gender) for s in capped} == {(c.ethnicity, c.gender) for c in clips}
    assert all(any(s.target.key == f.target.key and s.cross.key == f.cross.key for f in full) for s in capped)
    assert [s.target.key for s in capped] == sorted(s.target.key for s in capped)
    # Fewer targets than groups: every ethnicity first, and both genders among them.
    three = select_pairs(clips, seed=0, max_targets=3)
    assert {s.target.ethnicity for s in three} == {"group-0", "group-1", "group-2"}
    assert {s.target.gender for s in three} == {"female", "male"}
    assert len(select_pairs(clips, 0, max_targets=50)) == 12


def test_cmdfd_two_fakes_per_generator_with_provenance(tmp_path):
    sel = select_pairs(corpus(), seed=0)
    tasks = plan_cmdfd(sel, tmp_path, "cmdfd")
    assert len(tasks) == len(sel) * 4 * 2 and len({t.key for t in tasks}) == len(tasks)
    for t in tasks:
        validate_key(t.key)
        c = Clip(path=t.out, **t.clip)
        assert c.video_fake and not c.audio_fake and c.category == "FVRA" and c.method in t.key
        info = json.loads(c.extra)
        assert info["subset"].endswith("_Self") == c.self_audio
        assert c.sync == (c.method in ("wav2lip", "videoretalking"))  # released Sync_Label convention
        target = next(s.target for s in sel if s.target.key == info["target_key"])
        assert t.steps[0].video == str((tmp_path / target.path).resolve())
        if c.self_audio:
            # _S: "the original audio of the identity itself" -- the clip's own audio track.
            assert info["audio_key"] == target.key and c.source_keys == [target.key]
            assert t.steps[0].audio == t.steps[0].video
        else:
            cross = next(s.cross for s in sel if s.target.key == target.key)
            assert info["audio_key"] == cross.key and c.source_keys == [target.key, cross.key]
            assert c.audio_source_identity == cross.identity != c.identity
            assert t.steps[0].audio == str((tmp_path / cross.path).resolve())


def test_fakeavceleb_categories(tmp_path):
    sel = select_pairs(corpus(), seed=0)
    tasks = plan_fakeavceleb(sel, tmp_path, "fakeavceleb")
    by = {json.loads(t.clip["extra"])["subset"]: t for t in tasks[:5]}
    assert set(by) == {"RVFA", "FVRA-WL", "FVFA-FS", "FVFA-GAN", "FVFA-WL"}
    cats = {k: (t.clip["category"], t.clip["method"]) for k, t in by.items()}
    assert cats == {"RVFA": ("RVFA", "rtvc"), "FVRA-WL": ("FVRA", "wav2lip"), "FVFA-FS": ("FVFA", "faceswap-wav2lip"),
                    "FVFA-GAN": ("FVFA", "fsgan-wav2lip"), "FVFA-WL": ("FVFA", "wav2lip")}
    assert [s.generator for s in by["FVFA-FS"].steps] == ["voice", "faceswap", "wav2lip"]
    assert [s.generator for s in by["FVFA-GAN"].steps] == ["voice", "faceswap-smooth", "wav2lip"]
    assert by["RVFA"].steps[0].text
    assert all(t.clip["ethnicity"] == "E" and t.clip["gender"] == "female" for t in tasks)


def test_methods_per_target_rotates_and_balances(tmp_path):
    from collections import Counter

    sel = select_pairs(corpus(), seed=0)
    cmdfd = plan_cmdfd(sel, tmp_path, "cmdfd", methods_per_target=1)
    assert len(cmdfd) == len(sel) * 2  # one method per target, both audio drivers
    per_target = Counter(json.loads(t.clip["extra"])["target_key"] for t in cmdfd)
    assert set(per_target.values()) == {2}
    methods = Counter(t.clip["method"] for t in cmdfd)
    assert set(methods) == {"wav2lip", "videoretalking", "audio2head", "makeittalk"}
    assert max(methods.values()) - min(methods.values()) <= 2
    fav = plan_fakeavceleb(sel, tmp_path, "fakeavceleb", methods_per_target=2)
    subsets = Counter(json.loads(t.clip["extra"])["subset"] for t in fav)
    assert len(fav) == len(sel) * 2 and set(subsets) == {"RVFA", "FVRA-WL", "FVFA-FS", "FVFA-GAN", "FVFA-WL"}
    # the rotation keeps each kept fake identical to the one the full recipe plans
    full = {t.key: t.clip for t in plan_fakeavceleb(sel, tmp_path, "fakeavceleb")}
    assert all(full[t.key] == t.clip for t in fav)
    assert len(plan_cmdfd(sel, tmp_path, "cmdfd", methods_per_target=None)) == len(sel) * 8


def test_methods_per_target_is_checked():
    from generators.stage import GenerateParams
    from pipeline.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown recipe 'kodf'"):
        GenerateParams(methods_per_target={"kodf": 1})
    with pytest.raises(ConfigError, match=r"methods_per_target\.cmdfd: must be an integer >= 1"):
        GenerateParams(methods_per_target={"cmdfd": 0})


def test_spread_targets_runs_one_task_of_each_target_first():
    """A target's fakes share cached work: the stage runs them apart, so that two of them do not
    start together on two workers and both compute it."""
    from generators.recipes.common import Task
    from generators.stage import spread_targets

    tasks = [Task(f"k{i}", [], "", {}, target) for i, target in enumerate("AAABBC")]
    assert [t.key for t in spread_targets(tasks)] == ["k0", "k3", "k5", "k1", "k4", "k2"]
