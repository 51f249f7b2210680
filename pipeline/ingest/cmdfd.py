"""CMDFD and the ECL authors' FakeAVCeleb lists: the released CSV split lists, re-rooted.

Each list (``W2L.csv``, ``W2L_Self.csv``, ``FAV_test_FAKE_W2L_C.csv``, …) has
the columns ``ID_Name, Audio_Path, Video_Path, ENtire_Label, Audio_Label,
Video_Label, Identi_Label, Sync_Label, Frame_Len, Audio_Len, FPS,
AudioSamRate`` with the authors' absolute paths. The lists are read from the
user's ``--lists`` folder (nothing is shipped), and each path is re-rooted:
everything up to and including a known dataset folder (``My_Test``,
``FakeAVCeleb1.0``, …) is dropped, or an explicit ``--strip-prefix``, or
else the list's common folder; the rest is joined to ``--root`` (or
``--fav-root`` for the ``FAV_*`` lists).

A clip that sits in several lists is one clip, not several: the 1,000 real
clips recur in all 8 CMDFD lists, and ``FAV_test.csv`` is the union of the
``FAV_test_*`` lists (under another author prefix). Keys therefore name the
clip, not the list: CMDFD reals are ``cmdfd/origin/<clip>`` (``extra.subset``
``origin``, ``extra.lists`` every list naming it), CMDFD fakes
``cmdfd/<subset>/<ID_Name>`` (``extra.subset`` the list's stem), FakeAVCeleb
clips ``fakeavceleb/<train|test>/<ID_Name>`` (``extra.split``; the arranged
folder in ``extra.fav_folder``). Repeats are merged when they point at the
same re-rooted file with the same labels; a repeat that disagrees is a
``duplicate`` failure. ``*_Self`` lists set ``self_audio=True`` on their
fakes. ``FAV_*`` folder names carry FakeAVCeleb's categories (A real, B
RTVC, C one-modality fakes, D both) and methods (W2L, FACESWAP, FSGAN),
mapped to categories and methods here.

Fake ``ID_Name``s are ``<prefix>+<target>-<audio>``, each side an identity
(``id00420``, as released) or a clip id that starts with one
(``id00420_sb9xiyXW0aw``, as ``avdf generate --recipe cmdfd`` exports when
an identity is forged more than once).
"""
from __future__ import annotations

import json
import posixpath
import re
from pathlib import Path

from pipeline.clip import Clip, category_of, safe_id
from pipeline.ingest.base import Adapter, IngestError, ScanResult, dedupe_key, json_extra, read_csv_rows

COLUMNS = (
    "ID_Name", "Audio_Path", "Video_Path", "ENtire_Label", "Audio_Label", "Video_Label",
    "Identi_Label", "Sync_Label", "Frame_Len", "Audio_Len", "FPS", "AudioSamRate",
)
# Folder names the authors' paths pass through; everything up to them is theirs.
ANCHORS = ("My_Test", "FakeAVCeleb1.0", "FakeAVCeleb_v1.0", "FakeAVCeleb_v1.2", "FakeAVCeleb", "CMDFD")
# CMDFD subset (list name without _Self) -> method of its fakes.
CMDFD_METHODS = {"W2L": "wav2lip", "VideoReTalk": "videoretalking", "Audio2Head": "audio2head", "MakeItTalk": "makeittalk"}
# Arranged FakeAVCeleb folder -> method (the D_W2L folders chain a swap and wav2lip;
# org_FAKE_W2L_D is wav2lip with RTVC audio).
FAV_METHODS = {
    "REAL_A": "real",
    "FAKE_RTVC_B": "rtvc",
    "FAKE_W2L_C": "wav2lip",
    "FAKE_FACESWAP_C": "faceswap",
    "FAKE_FSGAN_C": "fsgan",
    "FAKE_FACESWAP_D_W2L": "faceswap-wav2lip",
    "FAKE_FSGAN_D_W2L": "fsgan-wav2lip",
    "org_FAKE_W2L_D": "wav2lip",
}
# The arranged release's race folders -> FakeAVCeleb v1.2's race values (the
# protocols group by these); the native folder name stays in extra.fav_race.
FAV_RACES = {
    "AFRICANAMERICAN": "African",
    "Asian": "Asian (East)",
    "Indian": "Asian (South)",
    "American": "Caucasian (American)",
    "European": "Caucasian (European)",
}
# The ID_Name suffix code (A/V, R/F) -> category.
FAV_CODES = {"ARVR": "RVRA", "AFVR": "RVFA", "ARVF": "FVRA", "AFVF": "FVFA"}
_REAL_RE = re.compile(r"^(id\d+)_(.+)$")
# <target>-<audio>: identities, or clip ids starting with the identity (YouTube ids may hold '-').
_PAIR_RE = re.compile(r"^(id\d+)(?:_[A-Za-z0-9_-]+?)?-(id\d+)(?:_[A-Za-z0-9_-]+)?$")


def _bit(value: str, column: str, where: str) -> int:
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"{where}: {column} is {value!r}, expected 0 or 1") from None
    if number not in (0.0, 1.0):
        raise ValueError(f"{where}: {column} is {value!r}, expected 0 or 1")
    return int(number)


def _number(value: str) -> float | None:
    try:
        return float(value)
    except ValueError:
        return None


def _fav_split(subset: str) -> str:
    """``FAV_train_FAKE_W2L_C`` -> ``train``; the lists are named FAV_<train|test>[_<folder>]."""
    split = subset.split("_")[1] if subset.count("_") >= 1 else ""
    if split not in ("train", "test"):
        raise IngestError(f"{subset}.csv: a FAV list must be named FAV_train[_…] or FAV_test[_…]")
    return split


def _add_list(clip: Clip, subset: str) -> None:
    extra = json.loads(clip.extra or "{}")
    lists = extra.get("lists", [])
    if subset not in lists:
        extra["lists"] = sorted([*lists, subset])
        clip.extra = json.dumps(extra, sort_keys=True, ensure_ascii=False)


class Rerooter:
    """Maps an author's absolute path to one under the user's root (string ops: 40k rows)."""

    def __init__(self, root: Path, strip_prefix: str | None, paths: list[str]) -> None:
        self.root = root.as_posix().rstrip("/")
        self.strip_prefix = strip_prefix.rstrip("/") + "/" if strip_prefix else None
        # Fallback when no anchor is found: the list's common folder.
        dirs = [posixpath.dirname(p.replace("\\", "/")) for p in paths if p]
        self.common = posixpath.commonpath(dirs) if dirs else ""

    def __call__(self, author_path: str) -> str:
        path = author_path.replace("\\", "/")
        if self.strip_prefix is not None:
            if not path.startswith(self.strip_prefix):
                raise ValueError(f"{author_path!r} does not start with --strip-prefix {self.strip_prefix!r}")
            return f"{self.root}/{path[len(self.strip_prefix):]}"
        parts = path.split("/")
        for i in range(len(parts) - 1, -1, -1):
            if parts[i] in ANCHORS:
                return "/".join([self.root, *parts[i + 1:]])
        if self.common and path.startswith(self.common + "/"):
            return f"{self.root}/{path[len(self.common) + 1:]}"
        return f"{self.root}/{posixpath.basename(path)}"


class CMDFDAdapter(Adapter):
    name = "cmdfd"

    def __init__(
        self,
        root: Path,
        lists: str | Path | None = None,
        strip_prefix: str | None = None,
        fav_root: str | Path | None = None,
        subsets: list[str] | str | None = None,
    ) -> None:
        super().__init__(root)
        if lists is None:
            raise IngestError(
                "the cmdfd adapter needs --lists DIR: the folder holding the released CSV split lists "
                "(W2L.csv, W2L_Self.csv, …, FAV_test_*.csv); they are not shipped with avdf"
            )
        self.lists = Path(lists)
        if not self.lists.is_dir():
            raise IngestError(f"{self.lists}: --lists folder does not exist")
        self.fav_root = Path(fav_root) if fav_root else self.root
        self.strip_prefix = strip_prefix
        if isinstance(subsets, str):
            subsets = [s for s in subsets.split(",") if s]
        self.subsets = subsets

    def list_files(self) -> list[Path]:
        files = sorted(self.lists.glob("*.csv"))
        if self.subsets:
            unknown = sorted(set(self.subsets) - {f.stem for f in files})
            if unknown:
                raise IngestError(f"{self.lists}: no list(s) {unknown}; found {[f.stem for f in files]}")
            files = [f for f in files if f.stem in self.subsets]
        if not files:
            raise IngestError(f"{self.lists}: no CSV split lists found")
        return files

    def scan(self) -> ScanResult:
        result = ScanResult()
        seen: dict[str, object] = {}
        pending: dict[str, tuple[Clip, str | None]] = {}
        for csv_path in self.list_files():
            if csv_path.stat().st_size == 0:
                result.notes["empty lists skipped"] += 1
                continue
            _, rows = read_csv_rows(csv_path, COLUMNS, "CMDFD split list")
            subset = csv_path.stem
            fav = subset.startswith("FAV_")
            # Absolute: the driver joins relative clip paths to the root again.
            reroot = Rerooter((self.fav_root if fav else self.root).resolve(), self.strip_prefix,
                              [r["Video_Path"] for r in rows])
            for n, row in enumerate(rows, 2):
                where = f"{csv_path.name} line {n}"
                key = self._key(row, subset, n)
                try:
                    clip, audio_identity = (self._fav_clip if fav else self._cmdfd_clip)(row, key, subset, reroot, where)
                except ValueError as exc:
                    result.fail(key, "bad_row", str(exc))
                    continue
                # The same clip listed again (another subset, the FAV union) merges; its lists are kept.
                fingerprint = (clip.path, clip.label, clip.video_fake, clip.audio_fake)
                if key in pending and seen.get(key) == fingerprint:
                    _add_list(pending[key][0], subset)
                if not dedupe_key(result, seen, key, fingerprint, where):
                    continue
                _add_list(clip, subset)
                pending[key] = (clip, audio_identity)
        found = list(pending.values())
        self._link_sources(found)
        result.clips = [c for c, _ in found]
        return result

    @staticmethod
    def _key(row: dict[str, str], subset: str, line: int) -> str:
        name = safe_id(row["ID_Name"] or f"line{line}")
        if subset.startswith("FAV_"):
            return f"fakeavceleb/{_fav_split(subset)}/{name}"
        prefix, _, clip_id = row["ID_Name"].partition("+")
        if prefix == "origin" and clip_id:
            return f"cmdfd/origin/{safe_id(clip_id)}"
        return f"cmdfd/{safe_id(subset)}/{name}"

    # ----------------------------------------------------------------- rows

    @staticmethod
    def _labels(row: dict[str, str], where: str) -> tuple[int, bool, bool, bool, bool]:
        label = _bit(row["ENtire_Label"], "ENtire_Label", where)
        audio_fake = bool(_bit(row["Audio_Label"], "Audio_Label", where))
        video_fake = bool(_bit(row["Video_Label"], "Video_Label", where))
        same_identity = bool(_bit(row["Identi_Label"], "Identi_Label", where))
        sync = bool(_bit(row["Sync_Label"], "Sync_Label", where))
        if label != int(audio_fake or video_fake):
            raise ValueError(
                f"{where}: ENtire_Label {label} disagrees with Audio_Label {int(audio_fake)} / Video_Label {int(video_fake)}"
            )
        return label, video_fake, audio_fake, same_identity, sync

    def _common(self, row, key, subset, reroot, where, corpus, more=None, **fields) -> Clip:
        label, video_fake, audio_fake, same_identity, sync = self._labels(row, where)
        video = reroot(row["Video_Path"])
        audio = reroot(row["Audio_Path"]) if row["Audio_Path"] else None
        extra = json_extra(
            subset=subset,
            id_name=row["ID_Name"],
            audio_path=audio,
            same_identity=same_identity,
            list_frames=_number(row["Frame_Len"]),
            list_samples=_number(row["Audio_Len"]),
            list_fps=_number(row["FPS"]),
            list_sample_rate=_number(row["AudioSamRate"]),
            **(more or {}),
        )
        return Clip(
            key=key,
            corpus=corpus,
            path=video,
            label=label,
            video_fake=video_fake,
            audio_fake=audio_fake,
            category=category_of(video_fake, audio_fake),
            sync=sync,
            extra=extra,
            **fields,
        )

    def _cmdfd_clip(self, row, key, subset, reroot, where) -> tuple[Clip, str | None]:
        prefix, _, clip_id = row["ID_Name"].partition("+")
        base = subset[: -len("_Self")] if subset.endswith("_Self") else subset
        self_list = subset.endswith("_Self")
        if prefix == "origin":
            m = _REAL_RE.match(clip_id)
            identity = m.group(1) if m else clip_id
            clip = self._common(
                row, key, "origin", reroot, where, "cmdfd",
                identity=identity, video_id=safe_id(clip_id), method="real", audio_source_identity=identity,
            )
            if clip.label != 0:
                raise ValueError(f"{where}: an 'origin' clip labelled fake")
            return clip, identity
        m = _PAIR_RE.match(clip_id)
        if not m:
            raise ValueError(f"{where}: ID_Name {row['ID_Name']!r} is neither origin+<id>_<video> nor <method>+<id>-<id>")
        identity, audio_identity = m.group(1), m.group(2)
        target_clip, _, _ = clip_id.rpartition("-" + audio_identity)
        clip = self._common(
            row, key, subset, reroot, where, "cmdfd",
            more={"target_clip": target_clip if target_clip != identity else None},
            identity=identity,
            video_id=identity,  # replaced by the source video's id in _link_sources when known
            method=CMDFD_METHODS.get(base, safe_id(prefix).lower()),
            audio_source_identity=audio_identity,
            self_audio=self_list,
        )
        return clip, audio_identity

    def _fav_clip(self, row, key, subset, reroot, where) -> tuple[Clip, str | None]:
        id_name = row["ID_Name"]
        identity, _, rest = id_name.partition("+")
        code = rest.rsplit("+", 1)[-1] if "+" in rest else ""
        parts = row["Video_Path"].replace("\\", "/").split("/")
        folder = next((p for p in parts if p in FAV_METHODS), None)
        if folder is None:
            raise ValueError(f"{where}: no FakeAVCeleb category folder ({', '.join(FAV_METHODS)}) in {row['Video_Path']!r}")
        i = parts.index(folder)
        # .../<folder>/<race>/<gender>/<id>/<youtube id>/<file>
        race, gender, youtube_id = (parts[i + 1], parts[i + 2], parts[i + 4]) if len(parts) > i + 5 else (None, None, None)
        clip = self._common(
            row, key, subset, reroot, where, "fakeavceleb",
            identity=identity,
            video_id=safe_id(f"{identity}-{youtube_id}") if youtube_id else identity,
            method=FAV_METHODS[folder],
            ethnicity=FAV_RACES.get(race, race) if race else None,
            gender=gender.lower() if gender else None,
            more={"fav_folder": folder, "youtube_id": youtube_id, "fav_race": race, "split": _fav_split(subset)},
        )
        if code in FAV_CODES and FAV_CODES[code] != clip.category:
            raise ValueError(f"{where}: ID_Name code {code} disagrees with the labels ({clip.category})")
        return clip, None

    @staticmethod
    def _link_sources(pending: list[tuple[Clip, str | None]]) -> None:
        """Fakes: group with the source video and point at the real clips used.

        CMDFD fakes link to the ``origin`` clip of their target (the named clip, or the
        identity's only origin clip) and of their audio identity; FakeAVCeleb fakes to the
        real clip of the same source video in the same split (train/test).
        """
        fav_reals: dict[tuple[str, str], list[str]] = {}
        for clip, _ in pending:
            if clip.corpus == "fakeavceleb" and clip.method == "real":
                fav_reals.setdefault((clip.key.split("/")[1], clip.video_id), []).append(clip.key)
        for clip, _ in pending:
            if clip.corpus == "fakeavceleb" and clip.method != "real":
                clip.source_keys = list(fav_reals.get((clip.key.split("/")[1], clip.video_id), []))
        origin: dict[str, list[Clip]] = {}
        by_clip_id: dict[str, Clip] = {}
        for clip, _ in pending:
            if clip.corpus == "cmdfd" and clip.method == "real":
                origin.setdefault(clip.identity, []).append(clip)
                by_clip_id[clip.key.rsplit("/", 1)[1]] = clip
        for clip, audio_identity in pending:
            if clip.corpus != "cmdfd" or clip.method == "real":
                continue
            target_clip = json.loads(clip.extra or "{}").get("target_clip")
            named = by_clip_id.get(safe_id(target_clip)) if target_clip else None
            video_src = [named] if named is not None else origin.get(clip.identity, [])
            if len({c.video_id for c in video_src}) == 1:
                clip.video_id = video_src[0].video_id
            keys = [c.key for c in video_src]
            keys += [c.key for c in origin.get(audio_identity or "", []) if c.key not in keys]
            clip.source_keys = keys
