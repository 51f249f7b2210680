"""CMDFD: a ``avdf generate --recipe cmdfd`` build in the authors' released layout (``My_Test/`` + lists).

    avdf replica cmdfd --studio generated/cmdfd/manifest.parquet --out DIR
    avdf ingest cmdfd --root DIR/My_Test --lists DIR/lists --out cmdfd.parquet

The build's manifest holds its real (``origin``) clips and its fakes; this writes
them the way the ECL authors released CMDFD, so that the ``cmdfd`` ingest adapter
reads them unchanged:

- ``My_Test/origin/<real>.mp4`` and ``.wav`` (16 kHz mono PCM): the real clips;
- ``My_Test/<folder>/<target>-<audio>.mp4``, folder ``wav2lip``, ``VideoReTalk``,
  ``Audio2Head``, ``MakeItTalk`` and their ``_Self`` twins; the talking-head
  folders also hold the fake's ``.wav`` (their lists point there), while the
  lip-sync lists point at the driving real clip's wav in ``origin/`` (for
  ``_Self``: the clip's own wav, as in the released ``W2L_Self.csv``);
- ``lists/<Subset>.csv`` (W2L, W2L_Self, VideoReTalk, …): every real clip, then
  the subset's fakes, with the released columns and labels, paths under the
  authors' prefix (the adapter re-roots at ``My_Test``).

Names follow the release: reals ``<identity>_<video>`` (the source clip id, which
starts with its VoxCeleb2 identity), fakes ``<target>-<audio>`` as identities
(``id00420-id07445``) or, where an identity is forged more than once in a subset,
as clip ids. The release has VoxCeleb2 identities only: a build of other
identities (the studio corpus itself) is refused — write its ``voxceleb2``
replica, ingest it and forge that.
"""
from __future__ import annotations

import re
from collections import Counter, defaultdict

from pipeline.clip import Clip, safe_id
from pipeline.ingest.cmdfd import CMDFD_METHODS, COLUMNS
from pipeline.replicas.base import LINK, WAV, ReplicaError, ReplicaInputs, ReplicaPlan, audio_key, csv_text, target_key

ROOT = "My_Test"
# The authors' prefix in the released lists (the adapter drops everything up to My_Test).
AUTHOR_PREFIX = "/data2/caiyu/data/My_Test"
# method -> (list stem, folder and ID_Name prefix) as released.
SUBSET_NAMES = {method: (subset, {"W2L": "wav2lip"}.get(subset, subset)) for subset, method in CMDFD_METHODS.items()}
_IDENTITY = re.compile(r"^id\d+$")


def _clip_name(key: str, identity: str) -> str:
    """A source clip as one released name part: ``<identity>_<the rest of its key>`` (``id00420_<video>``),
    the form the adapter reads the identity from, whatever separators the source corpus' keys use."""
    rest = key.split("/", 1)[1].replace("/", "_")
    if rest.startswith(identity):
        rest = rest[len(identity):].lstrip("_-")
    return f"{identity}_{safe_id(rest)}" if rest else identity


def _row(clip: Clip, id_name: str, audio: str, video: str) -> list[str]:
    values = {
        "ID_Name": id_name, "Audio_Path": f"{AUTHOR_PREFIX}/{audio}", "Video_Path": f"{AUTHOR_PREFIX}/{video}",
        "ENtire_Label": clip.label, "Audio_Label": int(clip.audio_fake), "Video_Label": int(clip.video_fake),
        "Identi_Label": int(clip.label == 0 or bool(clip.self_audio)), "Sync_Label": int(bool(clip.sync)),
        "Frame_Len": float(clip.num_frames or 0), "Audio_Len": int(clip.num_samples or 0),
        "FPS": float(clip.fps or 25.0), "AudioSamRate": int(clip.sample_rate or 16000),
    }
    return [str(values[c]) for c in COLUMNS]


def plan(inputs: ReplicaInputs) -> ReplicaPlan:
    out = ReplicaPlan("cmdfd", root=ROOT)
    if not inputs.reals or not inputs.fakes:
        raise ReplicaError(f"cmdfd: a CMDFD build has real (origin) and fake clips; got {len(inputs.reals)} and "
                           f"{len(inputs.fakes)} (pass the build's manifest: --studio generated/cmdfd/manifest.parquet)")
    wrong = sorted({c.identity for c in [*inputs.reals, *inputs.fakes] if not _IDENTITY.match(c.identity or "")})
    if wrong:
        raise ReplicaError(f"cmdfd: the released layout names clips by VoxCeleb2 identity (idNNNNN); identities "
                           f"{wrong[:3]} are not (write a voxceleb2 replica, ingest it and forge that)")
    wavs: set[str] = set()

    def wav(key: str, rel: str) -> None:
        # One wav per name (a driving clip may drive several fakes): made once, from the first.
        if rel not in wavs:
            wavs.add(rel)
            out.place(key, rel, WAV)

    origin_rows, real_name = [], {}  # source clip key -> released name
    for c in inputs.reals:
        source = c.source_keys[0] if c.source_keys else c.key
        name = real_name[source] = _clip_name(source, c.identity)
        out.place(c.key, f"{ROOT}/origin/{name}.mp4")
        wav(c.key, f"{ROOT}/origin/{name}.wav")
        origin_rows.append(_row(c, f"origin+{name}", f"origin/{name}.wav", f"origin/{name}.mp4"))

    by_subset: dict[str, list[Clip]] = defaultdict(list)
    for c in inputs.fakes:
        if c.method not in SUBSET_NAMES:
            out.skip(c.key, f"method {c.method!r} is not one of CMDFD's ({', '.join(sorted(SUBSET_NAMES))})")
            continue
        by_subset[SUBSET_NAMES[c.method][0] + ("_Self" if c.self_audio else "")].append(c)
    for subset, members in sorted(by_subset.items()):
        folder = SUBSET_NAMES[members[0].method][1] + ("_Self" if subset.endswith("_Self") else "")
        pairs = Counter((c.identity, c.audio_source_identity) for c in members)
        rows = []
        for c in members:
            target, driver = target_key(c) or "", audio_key(c) or ""
            # Identities where they name the fake uniquely (as released), clip ids otherwise.
            pair = (f"{c.identity}-{c.audio_source_identity}" if pairs[(c.identity, c.audio_source_identity)] == 1
                    else f"{real_name.get(target) or _clip_name(target, c.identity)}-"
                         f"{real_name.get(driver) or _clip_name(driver, c.audio_source_identity)}")
            if not out.place(c.key, f"{ROOT}/{folder}/{pair}.mp4"):
                continue
            if c.sync:  # lip-sync lists point at the driving real clip's own wav (the fake carries that audio)
                audio = f"origin/{real_name.get(driver) or _clip_name(driver, c.audio_source_identity)}.wav"
            else:  # talking-head lists keep the fake's wav beside it
                audio = f"{folder}/{pair}.wav"
            wav(c.key, f"{ROOT}/{audio}")
            rows.append(_row(c, f"{folder}+{pair}", audio, f"{folder}/{pair}.mp4"))
        out.texts[f"lists/{subset}.csv"] = csv_text([list(COLUMNS), *origin_rows, *rows])
    return out
