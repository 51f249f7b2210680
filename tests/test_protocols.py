"""Protocol splits on synthetic manifests (no media: splits read only Clip rows)."""
from __future__ import annotations

import json
import random
from pathlib import Path
from collections import Counter

import pytest

from benchmark.protocols import REAL, ProtocolError, list_protocols, load_protocol
from pipeline.clip import Clip, category_of
from pipeline.errors import AvdfError
from pipeline.manifest import clips_to_table

FAV_ETHNICITIES = ["African", "Asian (East)", "Asian (South)", "Caucasian (American)", "Caucasian (European)"]
STUDIO_GROUPS = ["group-a", "group-b", "group-c", "group-d", "group-e"]
# (category name, video_fake, audio_fake, method) as FakeAVCeleb v1.2 labels them
FAV_FAKES = [
    ("RVFA", False, True, "rtvc"),
    ("FVRA-WL", True, False, "wav2lip"),
    ("FVRA-FS", True, False, "faceswap"),
    ("FVRA-GAN", True, False, "fsgan"),
    ("FVFA-FS", True, True, "faceswap-wav2lip"),
    ("FVFA-GAN", True, True, "fsgan-wav2lip"),
    ("FVFA-WL", True, True, "wav2lip"),
]
CMDFD_METHODS = {"W2L": "wav2lip", "VRT": "videoretalking", "A2H": "audio2head", "MIT": "makeittalk"}
CMDFD_CSV_STEM = {"W2L": "W2L", "VRT": "VideoReTalk", "A2H": "Audio2Head", "MIT": "MakeItTalk"}


def _clip(corpus, name, identity, video_id, *, video_fake=False, audio_fake=False, method="real", **kw):
    return Clip(
        key=f"{corpus}/{name}",
        corpus=corpus,
        identity=identity,
        video_id=video_id,
        path=f"{name}.mp4",
        label=int(video_fake or audio_fake),
        video_fake=video_fake,
        audio_fake=audio_fake,
        category=category_of(video_fake, audio_fake),
        method=method,
        **kw,
    )


def _fav_like(corpus, groups, per_group=4, videos=2, recipe=None, fake_corpus=None):
    """Identities per group, real videos per identity, one fake of each kind per video."""
    clips = []
    for g, group in enumerate(groups):
        for i in range(per_group):
            identity = f"id{g}{i:02d}"
            gender = "female" if i % 2 else "male"
            for v in range(videos):
                vid = f"{identity}-v{v}"
                clips.append(_clip(corpus, vid, identity, vid, ethnicity=group, gender=gender))
                for cat, vf, af, method in FAV_FAKES:
                    name = f"{vid}-{cat}"
                    extra = json.dumps({"recipe": recipe}) if recipe else None
                    clips.append(
                        _clip(fake_corpus or corpus, name, identity, name, video_fake=vf, audio_fake=af,
                              method=method, ethnicity=group, gender=gender, source_keys=[f"{corpus}/{vid}"],
                              extra=extra)
                    )
    return clips


def _cmdfd_like(corpus, n_identities, recipe=None, prefix="c"):
    """Real clips + for each, one fake per (generator, self_audio). Half of the fakes
    are recognisable by method + self_audio, the other half only by extra.subset."""
    clips = []
    for i in range(n_identities):
        identity = f"{prefix}{i:03d}"
        clips.append(_clip(corpus, f"{identity}-real", identity, f"{identity}-real",
                           ethnicity=STUDIO_GROUPS[i % 5] if recipe else None))
        for short, method in CMDFD_METHODS.items():
            for self_audio in (False, True):
                name = f"{identity}-{short}{'-self' if self_audio else ''}"
                by_fields = i % 2 == 0
                extra = {"recipe": recipe} if recipe else {}
                if not by_fields:  # only the native subset name identifies it
                    extra["subset"] = (
                        f"{short}_S" if recipe else CMDFD_CSV_STEM[short] + ("_Self" if self_audio else "")
                    )
                clips.append(
                    _clip(corpus, name, identity, name, video_fake=True, method=method,
                          self_audio=self_audio if by_fields else None, extra=json.dumps(extra) or None,
                          ethnicity=STUDIO_GROUPS[i % 5] if recipe else None)
                )
                if not by_fields and not self_audio:  # fix the subset name of the non-self twin
                    extra["subset"] = short if recipe else CMDFD_CSV_STEM[short]
                    clips[-1].extra = json.dumps(extra)
    return clips


@pytest.fixture(scope="module")
def real_manifest():
    clips = _fav_like("fakeavceleb", FAV_ETHNICITIES)
    clips += _cmdfd_like("cmdfd", 12)
    for i in range(6):
        clips.append(_clip("kodf", f"k{i}-real", f"k{i}", f"k{i}-real"))
        clips.append(_clip("kodf", f"k{i}-fake", f"k{i}", f"k{i}-fake", video_fake=True, method="fsgan"))
    return clips


@pytest.fixture(scope="module")
def studio_manifest():
    """As `avdf generate` makes it: studio reals, FakeAVCeleb-style fakes (studio-fakeavceleb),
    and the CMDFD-style build (studio-cmdfd): its origin reals (the forged studio clips
    again) beside its fakes."""
    clips = _fav_like("studio", STUDIO_GROUPS, recipe="fakeavceleb", fake_corpus="studio-fakeavceleb")
    reals = {c.identity: c for c in clips if c.label == 0}
    for c in _cmdfd_like("studio-cmdfd", 20, recipe="cmdfd", prefix="id"):
        ident = f"id{int(c.identity[2:]) % 5}{int(c.identity[2:]) // 5 % 4:02d}"
        if c.label == 0:  # the origin clip: the studio real it forges, re-keyed into the build
            src = reals[ident]
            c = Clip.from_row({**src.to_row(), "key": f"studio-cmdfd/origin/{src.key.split('/', 1)[1]}",
                               "corpus": "studio-cmdfd", "source_keys": [src.key],
                               "extra": json.dumps({"recipe": "cmdfd", "subset": "origin"})})
        else:
            c.identity, c.ethnicity = ident, STUDIO_GROUPS[int(ident[2])]
            c.video_id = reals[ident].video_id
        clips.append(c)
    return clips


def _rows(clips):
    return {c.key: c for c in clips}


def _check_common(splits, clips):
    by_key = _rows(clips)
    for fold in splits.folds.values():
        parts = {"train": fold.train, "val": fold.val, "test": fold.test}
        seen: dict[str, str] = {}
        for part, keys in parts.items():
            assert list(keys) == sorted(keys)
            for key in keys:
                assert key not in seen, f"{key} in {seen[key]} and {part}"
                seen[key] = part
        videos: dict[str, set[str]] = {}
        for key, part in seen.items():
            videos.setdefault(by_key[key].video_id, set()).add(part)
        assert all(len(p) == 1 for p in videos.values()), "a video spans two parts"
        labels = {by_key[k].label for k in fold.test}
        assert labels == {0, 1}
        assert set(fold.test_categories) == set(fold.test)
        for key, cat in fold.test_categories.items():
            assert (cat == REAL) == (by_key[key].label == 0)
        sizes = fold.sizes()
        assert sizes["train"] + sizes["val"] + sizes["test"] + sizes["excluded"] == len(clips)
        assert sizes["test_real"] + sizes["test_fake"] == sizes["test"]


def _identities(fold, by_key, part):
    return {by_key[k].identity for k in fold.part(part)}


# ----------------------------------------------------------------------------- catalogue

def test_catalogue_lists_every_protocol_with_a_studio_twin_of_the_same_shape():
    infos = {i.name: i for i in list_protocols()}
    expected = {"intra-random", "intra-group", "cross-manipulation", "cross-dataset"}
    assert expected <= set(infos)
    for name in expected:
        twin = infos[f"studio-{name}"]
        assert twin.twin_of == name
        assert twin.family == infos[name].family
        assert load_protocol(twin.name).spec.split.strategy == load_protocol(name).spec.split.strategy
        # Same folds, except KoDF, which has no studio twin.
        assert set(infos[name].folds) - {"KoDF"} == set(twin.folds)
        assert infos[name].version and len(infos[name].hash) == 64
    assert infos["cross-manipulation"].folds == ("RVFA", "FVRA-WL", "FVFA-FS", "FVFA-GAN", "FVFA-WL")
    assert load_protocol("cross-manipulation").averages["AVG-FV"] == ["FVRA-WL", "FVFA-FS", "FVFA-GAN", "FVFA-WL"]


def test_unknown_protocol_and_version_give_clear_errors():
    with pytest.raises(AvdfError, match=r"unknown protocol 'intra-randm'.*did you mean 'intra-random'"):
        load_protocol("intra-randm")
    with pytest.raises(AvdfError, match=r"no version '9.9'.*available: \['1.0.0', '1.1.0'\]"):
        load_protocol("intra-random", "9.9")
    p = load_protocol("intra-random", "1.0.0")
    assert p.identity() == {"name": "intra-random", "version": "1.0.0", "hash": p.hash}


# ----------------------------------------------------------------------------- intra

def test_intra_random_is_a_70_30_video_split_with_validation(real_manifest):
    splits = load_protocol("intra-random").split(real_manifest)
    _check_common(splits, real_manifest)
    fold = splits.fold("main")
    fav = [c for c in real_manifest if c.corpus == "fakeavceleb"]
    assert fold.sizes()["excluded"] == len(real_manifest) - len(fav)
    n = len(fav)
    assert abs(len(fold.test) / n - 0.30) < 0.03
    assert abs(len(fold.val) / n - 0.07) < 0.03
    # Stratified: every category reaches test and train.
    test_cats = Counter(fold.test_categories.values())
    assert set(test_cats) == {REAL} | {c for c, *_ in FAV_FAKES}
    assert splits.protocol_hash == load_protocol("intra-random").hash


def test_splits_are_deterministic_and_independent_of_row_order(real_manifest):
    p = load_protocol("intra-random")
    shuffled = list(real_manifest)
    random.Random(3).shuffle(shuffled)
    a = p.split(real_manifest)
    b = p.split(clips_to_table(shuffled))  # a pyarrow table works too
    assert a.to_dict() == b.to_dict()


def test_intra_group_is_identity_disjoint_by_ethnicity(real_manifest):
    splits = load_protocol("intra-group").split(real_manifest)
    _check_common(splits, real_manifest)
    fold = splits.fold("main")
    by_key = _rows(real_manifest)
    eth = {part: {by_key[k].ethnicity for k in fold.part(part)} for part in ("train", "val", "test")}
    assert eth == {
        "train": {"Asian (South)", "Asian (East)", "Caucasian (American)"},
        "val": {"African"},
        "test": {"Caucasian (European)"},
    }
    ids = {part: _identities(fold, by_key, part) for part in ("train", "val", "test")}
    assert not (ids["train"] & ids["val"]) and not (ids["train"] & ids["test"]) and not (ids["val"] & ids["test"])


def test_identity_leak_is_refused(real_manifest):
    clips = list(real_manifest)
    # The same person filed under two groups would leak between train and test.
    clips.append(_clip("fakeavceleb", "leak", "id000", "leak-video", ethnicity="Caucasian (European)"))
    with pytest.raises(ProtocolError, match=r"identity 'id000' spans"):
        load_protocol("intra-group").split(clips)


# ----------------------------------------------------------------------------- cross-manipulation

def test_cross_manipulation_holds_out_one_category_per_fold(real_manifest):
    p = load_protocol("cross-manipulation")
    splits = p.split(real_manifest)
    _check_common(splits, real_manifest)
    by_key = _rows(real_manifest)
    kinds = {f"fakeavceleb/{c.video_id}": c for c in real_manifest}
    name_of = {(vf, af, m): n for n, vf, af, m in FAV_FAKES}

    def category(key):
        c = kinds[key]
        return REAL if c.label == 0 else name_of[(c.video_fake, c.audio_fake, c.method)]

    real_tests = set()
    for held in p.folds:
        fold = splits.fold(held)
        assert {category(k) for k in fold.test} == {REAL, held}
        assert set(fold.test_categories.values()) == {REAL, held}
        trained = {category(k) for k in fold.train + fold.val}
        assert held not in trained and {"FVRA-FS", "FVRA-GAN"}.isdisjoint(trained)
        assert trained == {REAL} | set(p.folds) - {held}
        n_held = sum(1 for c in real_manifest if c.corpus == "fakeavceleb" and c.label and category(c.key) == held)
        # Only the held-out fakes of the test videos are tested: a video is never cut.
        assert 0 < fold.sizes()["test_fake"] < n_held
        test_videos = {by_key[k].video_id for k in fold.test}
        assert test_videos.isdisjoint(by_key[k].video_id for k in fold.train + fold.val)
        real_tests.add(tuple(k for k in fold.test if by_key[k].label == 0))
    assert len(real_tests) == 1, "every fold tests on the same held-out real clips"


def test_video_spanning_two_parts_is_refused(real_manifest):
    clips = list(real_manifest)
    train_real = next(
        k for k in load_protocol("intra-group").split(real_manifest).fold("main").train
        if _rows(real_manifest)[k].label == 0
    )
    src = _rows(real_manifest)[train_real]
    # A fake filed under the same video as a training real clip, but of a test group.
    clips.append(_clip("fakeavceleb", "same-video-fake", src.identity, src.video_id, audio_fake=True,
                       method="rtvc", ethnicity="Caucasian (European)"))
    with pytest.raises(ProtocolError, match=rf"(video_id '{src.video_id}'|identity '{src.identity}') spans"):
        load_protocol("intra-group").split(clips)


# ----------------------------------------------------------------------------- cross-dataset

def _cmdfd_subset(c):
    extra = json.loads(c.extra) if c.extra else {}
    if "subset" in extra:
        return {"W2L": "W2L", "W2L_Self": "W2L_S", "VideoReTalk": "VRT", "VideoReTalk_Self": "VRT_S",
                "Audio2Head": "A2H", "Audio2Head_Self": "A2H_S", "MakeItTalk": "MIT",
                "MakeItTalk_Self": "MIT_S"}.get(extra["subset"], extra["subset"])
    short = {v: k for k, v in CMDFD_METHODS.items()}[c.method]
    return short + ("_S" if c.self_audio else "")


CMDFD_FOLDS = ["W2L", "W2L_S", "VRT", "VRT_S", "A2H", "A2H_S", "MIT", "MIT_S"]


def test_cross_dataset_trains_on_fakeavceleb_and_tests_each_subset(real_manifest):
    p = load_protocol("cross-dataset")
    assert p.version == "2.0.0"
    splits = p.split(real_manifest)
    _check_common(splits, real_manifest)
    by_key = _rows(real_manifest)
    assert list(splits.folds) == ["FAV", *CMDFD_FOLDS, "KoDF"]
    # ECL's Table III AVG is the mean of 9: FakeAVCeleb's own test set and the 8 CMDFD subsets.
    assert p.averages == {"AVG": ["FAV", *CMDFD_FOLDS]}
    assert len({f.training_id for f in splits.folds.values()}) == 1, "one checkpoint serves every fold"
    fav = splits.fold("FAV")
    n_fav = sum(c.corpus == "fakeavceleb" for c in real_manifest)
    assert len(fav.train) + len(fav.val) + len(fav.test) == n_fav
    assert {by_key[k].corpus for k in fav.test} == {"fakeavceleb"} and fav.sizes()["test_fake"]
    n_cmdfd_real = sum(c.corpus == "cmdfd" and c.label == 0 for c in real_manifest)
    for name, fold in splits.folds.items():
        assert {by_key[k].corpus for k in fold.train + fold.val} == {"fakeavceleb"}
        assert not set(fold.test) & set(fav.train + fav.val)
        if name == "FAV":
            continue
        fakes = [by_key[k] for k in fold.test if by_key[k].label == 1]
        if name == "KoDF":
            assert {c.corpus for c in fakes} == {"kodf"} and fold.sizes()["test_real"] == 6
            continue
        # Both ways of naming a subset are recognised: fields and extra.subset.
        assert {_cmdfd_subset(c) for c in fakes} == {name}
        assert len(fakes) == 12 and set(fold.test_categories.values()) == {REAL, name}
        assert fold.sizes()["test_real"] == n_cmdfd_real


def test_intra_group_kodf_column_uses_the_ethnic_training_set(real_manifest):
    """AVPrompt's KoDF column: the model of the ethnic split, tested on KoDF."""
    splits = load_protocol("intra-group").split(real_manifest)
    main, kodf = splits.fold("main"), splits.fold("KoDF")
    assert (main.train, main.val) == (kodf.train, kodf.val) and main.training_id == kodf.training_id
    by_key = _rows(real_manifest)
    assert {by_key[k].corpus for k in kodf.test} == {"kodf"} and len(kodf.test) == 12
    assert {by_key[k].ethnicity for k in main.train} == {"Asian (South)", "Asian (East)", "Caucasian (American)"}


def test_missing_class_in_a_test_fold_is_named(real_manifest):
    no_kodf_real = [c for c in real_manifest if not (c.corpus == "kodf" and c.label == 0)]
    with pytest.raises(ProtocolError, match=r"fold KoDF: the test part has no real clips"):
        load_protocol("cross-dataset").split(no_kodf_real)
    # The other folds can still be split on their own.
    assert load_protocol("cross-dataset").split(no_kodf_real, folds=["W2L"]).fold("W2L").test
    with pytest.raises(ProtocolError, match=r"needs clips of \['studio'"):
        load_protocol("studio-intra-random").split(real_manifest)


# ----------------------------------------------------------------------------- studio twins

def test_studio_twins_split_the_studio_corpus(studio_manifest):
    by_key = _rows(studio_manifest)
    for name in ("studio-intra-random", "studio-intra-group", "studio-cross-manipulation", "studio-cross-dataset"):
        splits = load_protocol(name).split(studio_manifest)
        _check_common(splits, studio_manifest)
    group = load_protocol("studio-intra-group").split(studio_manifest).fold("main")
    assert {by_key[k].ethnicity for k in group.test} == {"group-e"}
    assert {by_key[k].ethnicity for k in group.val} == {"group-d"}
    recipe = {k: json.loads(c.extra or "{}").get("recipe") for k, c in by_key.items()}
    rnd = load_protocol("studio-intra-random").split(studio_manifest).fold("main")
    assert {recipe[k] for k in rnd.train + rnd.val + rnd.test} == {None, "fakeavceleb"}
    cm = load_protocol("studio-cross-manipulation").split(studio_manifest)
    assert set(cm.fold("FVFA-WL").test_categories.values()) == {REAL, "FVFA-WL"}


def test_studio_cross_dataset_keeps_identities_apart(studio_manifest):
    by_key = _rows(studio_manifest)
    splits = load_protocol("studio-cross-dataset").split(studio_manifest)
    assert list(splits.folds) == ["FAV", *CMDFD_FOLDS]
    for name, fold in splits.folds.items():
        train_ids = _identities(fold, by_key, "train") | _identities(fold, by_key, "val")
        assert not train_ids & _identities(fold, by_key, "test")
        assert all(json.loads(by_key[k].extra or "{}").get("recipe") != "cmdfd" for k in fold.train)
        assert all(by_key[k].corpus != "studio-cmdfd" for k in fold.train + fold.val)
        fakes = [by_key[k] for k in fold.test if by_key[k].label == 1]
        reals = [by_key[k] for k in fold.test if by_key[k].label == 0]
        if name == "FAV":
            assert {json.loads(c.extra)["recipe"] for c in fakes} == {"fakeavceleb"}
            assert {c.corpus for c in reals} == {"studio"}
            continue
        assert fakes and {_cmdfd_subset(c) for c in fakes} == {name}
        # CMDFD-style reals are the build's own origin clips, one per forged video.
        assert reals and {c.corpus for c in reals} == {"studio-cmdfd"}
        assert len({c.video_id for c in reals}) == len(reals)


def test_studio_cross_dataset_moves_an_identity_so_that_every_subset_has_fakes(studio_manifest):
    """v1.1.0 leaves a CMDFD-style subset empty when no test identity was forged by its method;
    v1.2.0 moves the lowest-ranked training identity it forged into the test part."""
    by_key = _rows(studio_manifest)
    old = load_protocol("studio-cross-dataset", "1.1.0").split(studio_manifest, folds=["FAV"]).fold("FAV")
    train_ids = sorted(_identities(old, by_key, "train"))
    kept = train_ids[0]  # only a training identity keeps its MakeItTalk fakes
    clips = [c for c in studio_manifest if not (c.method == "makeittalk" and c.identity != kept)]
    with pytest.raises(ProtocolError, match="fold MIT: the test part has no fake"):
        load_protocol("studio-cross-dataset", "1.1.0").split(clips)
    splits = load_protocol("studio-cross-dataset", "1.2.0").split(clips)
    by_key = _rows(clips)
    fav = splits.fold("FAV")
    assert _identities(fav, by_key, "test") == _identities(old, by_key, "test") | {kept}
    assert fav.val == old.val  # validation is never raided
    for name in ("MIT", "MIT_S"):
        fakes = {by_key[k].identity for k in splits.fold(name).test if by_key[k].label == 1}
        assert fakes == {kept}
    for fold in splits.folds.values():
        assert not (_identities(fold, by_key, "train") | _identities(fold, by_key, "val")) & _identities(fold, by_key, "test")


def test_splits_round_trip_through_json(studio_manifest):
    from benchmark.protocols import Splits

    splits = load_protocol("studio-cross-manipulation").split(studio_manifest)
    again = Splits.from_dict(json.loads(json.dumps(splits.to_dict())))
    assert again == splits
    assert again.sizes() == splits.sizes()
    assert set(splits.sizes()["RVFA"]) == {"train", "val", "test", "test_real", "test_fake", "excluded"}


def test_listing_rows_show_sizes_from_a_manifest_file(tmp_path, real_manifest):
    from benchmark.protocols import listing_rows
    from pipeline.manifest import write_manifest

    no_kodf = [c for c in real_manifest if c.corpus != "kodf"]
    path = tmp_path / "manifest.parquet"
    write_manifest(no_kodf, path)
    rows = {name: detail for name, detail, _ in listing_rows(path)}
    sizes = load_protocol("intra-random").split(path).sizes()["main"]
    assert rows["intra-random"].endswith(f"main {sizes['train']}/{sizes['val']}/{sizes['test']}")
    assert "KoDF n/a" in rows["cross-dataset"] and "W2L " in rows["cross-dataset"]
    assert "needs clips of ['studio'" in rows["studio-intra-group"]


# ----------------------------------------------------------------------------- the released lists

REFERENCE_LISTS = Path(__file__).resolve().parents[1].parent / "shared" / "reference" / "cmdfd_csv"


@pytest.fixture(scope="module")
def released_lists(tmp_path_factory):
    if not REFERENCE_LISTS.is_dir():
        pytest.skip("released CMDFD lists absent")
    from pipeline.ingest.base import make_adapter

    result = make_adapter("cmdfd", tmp_path_factory.mktemp("corpus"), lists=REFERENCE_LISTS).scan()
    assert not result.failures
    return result.clips


def test_ecl_released_lists_fill_every_cross_dataset_fold_once(released_lists):
    """ECL's Table III from the released lists: FAV_train trains, FAV_test and the 8 CMDFD
    subsets test, each CMDFD fold scoring its fakes against the 1,000 reals, once each."""
    splits = load_protocol("cross-dataset-lists").split(released_lists, folds=["FAV", *CMDFD_FOLDS])
    by_key = _rows(released_lists)
    split_of = {c.key: json.loads(c.extra).get("split") for c in released_lists}
    fav = splits.fold("FAV")
    assert {split_of[k] for k in fav.train + fav.val} == {"train"} and {split_of[k] for k in fav.test} == {"test"}
    n_test = sum(1 for c in released_lists if split_of[c.key] == "test")
    assert len(fav.test) == n_test
    for name in CMDFD_FOLDS:
        fold = splits.fold(name)
        sizes = fold.sizes()
        assert sizes["test_real"] == 1000, name  # one row per real clip, not one per list
        reals = [by_key[k] for k in fold.test if by_key[k].label == 0]
        assert len({c.path for c in reals}) == 1000
        assert sizes["test_fake"] == sum(1 for c in released_lists if c.label == 1 and c.corpus == "cmdfd"
                                         and _cmdfd_subset(c) == name), name


def test_cross_manipulation_on_the_released_fav_lists(released_lists):
    splits = load_protocol("cross-manipulation-lists").split(released_lists)
    split_of = {c.key: json.loads(c.extra).get("split") for c in released_lists}
    for name, fold in splits.folds.items():
        assert {split_of[k] for k in fold.test} == {"test"}, name
        assert {split_of[k] for k in fold.train + fold.val} == {"train"}, name
        assert set(fold.test_categories.values()) == {REAL, name}
        assert fold.val and fold.sizes()["test_fake"] > 0


# ----------------------------------------------------------------------------- rounding

def test_across_strata_rounding_gives_each_part_its_share_of_all_groups():
    """30 videos, each its own stratum: rounding 30 % and 7 % per stratum of one video gives no
    test or validation video (the last-resort fill then moves one into each); across strata the
    running totals give round(30 x 0.3) = 9 test and round(30 x 0.07) = 2 validation videos."""
    from benchmark.protocols.splitting import _stratum_by, assign_groups

    rows = [{"key": f"k{i}", "video_id": f"v{i}", "method": f"m{i:02d}"} for i in range(30)]
    fractions = {"test": 0.3, "val": 0.07, "train": 1.0}
    per = assign_groups(rows, "video_id", fractions, 0, _stratum_by(["method"]), "t")
    across = assign_groups(rows, "video_id", fractions, 0, _stratum_by(["method"]), "t", "across_strata")
    assert Counter(per.values()) == {"test": 1, "val": 1, "train": 28}
    assert Counter(across.values()) == {"test": 9, "val": 2, "train": 19}
    # 10 strata of 3 videos: running totals round(0.9 k) take 0 or 1 test video from each stratum
    rows3 = [{"key": f"k{i}", "video_id": f"v{i}", "method": f"m{i // 3:02d}"} for i in range(30)]
    across3 = assign_groups(rows3, "video_id", fractions, 0, _stratum_by(["method"]), "t", "across_strata")
    per_stratum = Counter(r["method"] for r in rows3 if across3[r["key"]] == "test")
    assert sum(per_stratum.values()) == 9 and max(per_stratum.values()) == 1


def test_studio_intra_random_validates_on_a_tenth_of_its_training_videos():
    """Studio-shaped: each video holds a real clip and two fakes of it (kinds rotating, as
    ``generate.methods_per_target`` does), so every mix of kinds is a stratum of a few videos.
    v1.2.0 gives test and validation their shares of all videos; v1.1.0, rounding per stratum,
    does not."""
    import json

    import leaderboard_data as data

    kinds = data.FAV_FAKES[:2] + data.FAV_FAKES[4:]  # the five FakeAVCeleb-style recipe's kinds
    extra = json.dumps({"recipe": "fakeavceleb"})
    clips = []
    for i in range(60):
        identity, vid = f"p{i:02d}", f"p{i:02d}-v0"
        group = data.STUDIO_GROUPS[i % 5]
        clips.append(Clip(key=f"studio/{vid}", corpus="studio", identity=identity, video_id=vid, path="x.mp4",
                          ethnicity=group))
        for j in range(2):
            vf, af, method = kinds[(2 * i + j) % len(kinds)]
            clips.append(Clip(key=f"studio-fakeavceleb/{vid}/{j}", corpus="studio-fakeavceleb", identity=identity,
                              video_id=vid, path="x.mp4", label=1, video_fake=vf, audio_fake=af,
                              category=category_of(vf, af), method=method, ethnicity=group, extra=extra))
    video_of = {c.key: c.video_id for c in clips}
    videos = {}
    for version in ("1.1.0", "1.2.0"):
        fold = load_protocol("studio-intra-random", version).split(clips).fold("main")
        videos[version] = {part: len({video_of[k] for k in fold.part(part)}) for part in ("val", "test")}
    assert videos["1.2.0"] == {"val": round(60 * 0.7 * 0.1), "test": round(60 * 0.3)}
    assert videos["1.1.0"] != videos["1.2.0"]
