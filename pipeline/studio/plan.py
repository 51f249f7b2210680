"""What the studio corpus contains: identities, their looks and voices, and the clips.

Everything here is a pure function of (identities, utterances, seed): the plan
is drawn from seeded generators keyed by the identity index, so adding
identities never changes the ones already drawn, and two runs with the same
parameters plan the same corpus.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from pipeline.errors import AvdfError

GROUPS = ("group-a", "group-b", "group-c", "group-d", "group-e")
GENDERS = ("female", "male")
MIN_IDENTITIES = len(GROUPS) * len(GENDERS)
MAX_IDENTITIES = 9999
MAX_UTTERANCES = 99
# Utterances recorded in one "session" share background, lighting and framing
# (one video_id); an identity with more utterances than this has several videos.
UTTERANCES_PER_SESSION = 2
# A TTS utterance is this many sentences: one is about 2.2 s of speech (3 segments of 16
# frames), so the default corpus affords hundreds of clips within the DAG's time budget.
SENTENCES_PER_UTTERANCE = 1
# Plan version: bump when a change alters what a given (identities, utterances, seed) renders.
# 2: one sentence per utterance (was two).
STUDIO_VERSION = "2"


class StudioParamError(AvdfError):
    """Studio corpus sizes or seed that cannot make a balanced corpus."""


def _check_int(name: str, value: object, low: int, high: int, why: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise StudioParamError(f"studio: {name} must be an integer, got {value!r} ({type(value).__name__})")
    if not low <= int(value) <= high:
        raise StudioParamError(f"studio: {name} must be between {low} and {high} ({why}), got {value}")
    return int(value)


def check_params(identities: object, utterances: object, seed: object) -> tuple[int, int, int]:
    """Validate the corpus size and seed; return them as ints or raise StudioParamError."""
    n = _check_int(
        "identities", identities, MIN_IDENTITIES, MAX_IDENTITIES,
        f"at least {MIN_IDENTITIES} so that {len(GROUPS)} groups x {len(GENDERS)} genders are balanced",
    )
    m = _check_int("utterances", utterances, 1, MAX_UTTERANCES, "utterances per identity")
    s = _check_int("seed", seed, 0, 2**32 - 1, "a non-negative 32-bit integer")
    return n, m, s


# Per group: the family of looks it models (FakeAVCeleb's five ethnicity groups
# differ mostly in skin tone, face shape and hair/eye colours). Colours are RGB.
GROUP_LOOKS: dict[str, dict[str, Any]] = {
    "group-a": dict(  # darkest skin tones, broad nose, full lips, short curly dark hair
        skin=[(92, 58, 40), (110, 72, 50), (78, 50, 36), (124, 84, 58)],
        hair=[(18, 14, 12), (28, 20, 16)], iris=[(45, 28, 18), (35, 22, 15)],
        face_aspect=(1.22, 1.32), nose_width=(1.15, 1.35), lip_thickness=(1.2, 1.45), jaw=(0.12, 0.22),
        eye_open=(0.95, 1.1), curly=True,
    ),
    "group-b": dict(  # light-medium tones with a yellow cast, rounder faces, narrower eyes
        skin=[(226, 190, 160), (214, 176, 142), (232, 198, 170), (204, 166, 130)],
        hair=[(16, 14, 14), (26, 22, 20)], iris=[(42, 28, 20), (30, 22, 18)],
        face_aspect=(1.14, 1.24), nose_width=(0.95, 1.1), lip_thickness=(0.95, 1.1), jaw=(0.10, 0.18),
        eye_open=(0.72, 0.85), curly=False,
    ),
    "group-c": dict(  # medium-brown tones, oval faces, dark hair
        skin=[(170, 118, 84), (156, 106, 74), (184, 132, 96), (146, 98, 68)],
        hair=[(20, 16, 14), (34, 24, 18)], iris=[(50, 32, 20), (40, 26, 18)],
        face_aspect=(1.26, 1.36), nose_width=(1.0, 1.15), lip_thickness=(1.05, 1.2), jaw=(0.16, 0.26),
        eye_open=(1.0, 1.12), curly=False,
    ),
    "group-d": dict(  # light tones, varied hair from dark brown to blond
        skin=[(236, 196, 172), (226, 182, 154), (240, 206, 184), (218, 170, 140)],
        hair=[(60, 40, 26), (110, 76, 44), (170, 130, 80), (40, 28, 20)],
        iris=[(70, 100, 140), (60, 90, 60), (80, 56, 36)],
        face_aspect=(1.28, 1.4), nose_width=(0.85, 1.0), lip_thickness=(0.85, 1.0), jaw=(0.18, 0.3),
        eye_open=(0.95, 1.08), curly=False,
    ),
    "group-e": dict(  # light-olive tones, longer faces, dark-to-brown hair
        skin=[(216, 172, 138), (204, 160, 124), (222, 180, 148), (196, 150, 114)],
        hair=[(44, 30, 22), (70, 46, 30), (30, 22, 18)], iris=[(60, 44, 30), (80, 90, 70)],
        face_aspect=(1.32, 1.44), nose_width=(0.95, 1.1), lip_thickness=(0.95, 1.1), jaw=(0.2, 0.3),
        eye_open=(0.95, 1.08), curly=False,
    ),
}

# Sentences for the TTS voices: short, phonetically varied, written for this corpus.
SENTENCES = (
    "The morning train was late again today.",
    "Please bring the blue map to the meeting.",
    "We walked along the river until it got dark.",
    "My brother moved to a small town by the sea.",
    "Open the window and let some fresh air in.",
    "She bought five apples and a loaf of bread.",
    "The music was loud but nobody seemed to mind.",
    "Could you call me back before noon tomorrow?",
    "Every book on that shelf belongs to my mother.",
    "The weather should be warm and bright all week.",
    "Put the boxes by the door when you are done.",
    "I think we should paint the kitchen yellow.",
    "He found an old photo behind the mirror.",
    "Our neighbors keep a garden full of roses.",
    "The bus stops right in front of the museum.",
    "Maybe we can meet for lunch on Monday.",
    "The children played football in the park.",
    "You will need a pen and a piece of paper.",
    "Who left the lights on in the office?",
    "We booked a room with a view of the mountains.",
    "The baker opens his shop at six every morning.",
    "Remember to water the plants while I am away.",
    "A cold wind blew through the empty streets.",
    "This road goes all the way to the border.",
    "Bob made a big pot of soup for the whole family.",
    "Move the lamp a little closer to the piano.",
    "The first movie was much better than the second.",
    "Nobody knew where the old map had gone.",
    "We should leave early to beat the traffic.",
    "Her voice was calm, warm and very clear.",
)

# Real read speech: Debian's pocketsphinx-testdata (two male readers).
READ_SPEECH_DIR = "/usr/share/pocketsphinx/test/data"
READERS = ("librivox", "cards")


@dataclass(frozen=True)
class FaceStyle:
    """Looks of one identity (colours RGB 0-255, sizes relative to the face)."""

    skin: tuple[int, int, int]
    hair: tuple[int, int, int]
    iris: tuple[int, int, int]
    lip: tuple[int, int, int]
    clothes: tuple[int, int, int]
    face_width: float  # half-width of the face in pixels at 224 px
    face_aspect: float  # height / width
    jaw: float  # how much the jaw narrows towards the chin
    nose_width: float
    lip_thickness: float
    mouth_width: float
    eye_open: float
    eye_spacing: float
    brow_thickness: float
    brow_arch: float
    hair_style: str  # short | curly | long | bob
    female: bool


@dataclass(frozen=True)
class VoiceParams:
    """One identity's voice: the same for all its utterances."""

    source: str  # "tts" or "read"
    reader: str | None  # read speech: which recorded reader
    pitch: float  # resampling factor: pitch and formants move together (>1 higher)
    tempo: float  # speaking-rate factor (>1 faster)
    eq_hz: float  # centre of a timbre peak/notch
    eq_db: float
    tilt: float  # spectral tilt: >0 brighter


@dataclass(frozen=True)
class SessionLook:
    """What one recording session (one video_id) looks like."""

    background: tuple[tuple[int, int, int], tuple[int, int, int]]
    light: tuple[float, float]  # light direction (x, y), image coordinates
    light_strength: float
    warmth: float  # colour temperature shift of the lighting
    offset: tuple[float, float]  # framing: where the head sits, in pixels
    scale: float


@dataclass(frozen=True)
class Identity:
    index: int
    name: str
    group: str
    gender: str
    face: FaceStyle
    voice: VoiceParams


@dataclass(frozen=True)
class ClipSpec:
    """One clip to render; everything a worker needs, picklable."""

    identity: Identity
    utterance: int
    session: int
    seed: int
    text: str | None  # TTS sentence (None for read speech)
    read_file: str | None  # read speech: recording id
    look: SessionLook = field(compare=False)

    @property
    def clip_id(self) -> str:
        return f"{self.identity.name}-u{self.utterance:02d}"

    @property
    def key(self) -> str:
        return f"studio/{self.clip_id}"

    @property
    def video_id(self) -> str:
        return f"{self.identity.name}-v{self.session:02d}"

    @property
    def rel_path(self) -> str:
        return f"clips/{self.identity.name}/{self.clip_id}.mp4"


def _rng(seed: int, *parts: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, *parts]))


def _pick(rng: np.random.Generator, options: list) -> tuple:
    return tuple(options[int(rng.integers(len(options)))])


def _uniform(rng: np.random.Generator, lo_hi: tuple[float, float]) -> float:
    return float(rng.uniform(*lo_hi))


def _jitter(rng: np.random.Generator, colour: tuple, amount: float) -> tuple[int, int, int]:
    c = np.array(colour, float) * (1 + rng.normal(0, amount, 3).clip(-2 * amount, 2 * amount))
    return tuple(int(v) for v in c.clip(0, 255))


def _face_style(rng: np.random.Generator, group: str, female: bool) -> FaceStyle:
    looks = GROUP_LOOKS[group]
    skin = _jitter(rng, _pick(rng, looks["skin"]), 0.05)
    lip_base = np.array(skin, float) * np.array([0.92, 0.62, 0.62]) + (np.array([28, 0, 8]) if female else 0)
    if looks["curly"]:
        styles = ["curly", "long"] if female else ["curly", "short"]
    else:
        styles = ["long", "bob"] if female else ["short", "short", "curly"]
    return FaceStyle(
        skin=skin,
        hair=_jitter(rng, _pick(rng, looks["hair"]), 0.1),
        iris=_jitter(rng, _pick(rng, looks["iris"]), 0.08),
        lip=tuple(int(v) for v in lip_base.clip(0, 255)),
        clothes=tuple(int(v) for v in rng.integers(30, 220, 3)),
        face_width=float(rng.uniform(50, 56) * (0.96 if female else 1.0)),
        face_aspect=_uniform(rng, looks["face_aspect"]),
        jaw=_uniform(rng, looks["jaw"]) + (0.06 if female else 0.0),
        nose_width=_uniform(rng, looks["nose_width"]) * (0.92 if female else 1.0),
        lip_thickness=_uniform(rng, looks["lip_thickness"]) * (1.08 if female else 1.0),
        mouth_width=float(rng.uniform(0.9, 1.08)),
        eye_open=_uniform(rng, looks["eye_open"]),
        eye_spacing=float(rng.uniform(0.95, 1.05)),
        brow_thickness=float(rng.uniform(0.7, 0.9) if female else rng.uniform(1.0, 1.3)),
        brow_arch=float(rng.uniform(0.6, 1.0) if female else rng.uniform(0.2, 0.6)),
        hair_style=styles[int(rng.integers(len(styles)))],
        female=female,
    )


def _voice(rng: np.random.Generator, female: bool, reader: str | None) -> VoiceParams:
    if reader is not None:
        # Real recordings: keep the reader's voice close to natural.
        return VoiceParams(
            source="read", reader=reader, pitch=float(rng.uniform(0.94, 1.06)), tempo=1.0,
            eq_hz=float(rng.uniform(900, 2600)), eq_db=float(rng.uniform(-3, 3)), tilt=float(rng.uniform(-0.3, 0.3)),
        )
    return VoiceParams(
        source="tts", reader=None,
        # The TTS voice is male (~100 Hz); female voices are shifted up.
        pitch=float(rng.uniform(1.45, 1.7) if female else rng.uniform(0.88, 1.15)),
        tempo=float(rng.uniform(0.9, 1.12)),
        eq_hz=float(rng.uniform(900, 2600)), eq_db=float(rng.uniform(-5, 5)), tilt=float(rng.uniform(-0.6, 0.6)),
    )


def _session_look(rng: np.random.Generator) -> SessionLook:
    hue = rng.uniform(0, 1)
    base = np.array([np.cos(2 * np.pi * (hue + k / 3)) for k in range(3)]) * 50 + rng.uniform(90, 170)
    other = base * rng.uniform(0.6, 0.9) + rng.normal(0, 15, 3)
    angle = rng.uniform(-np.pi * 0.85, -np.pi * 0.15)  # from above, left or right
    return SessionLook(
        background=(tuple(int(v) for v in base.clip(20, 235)), tuple(int(v) for v in other.clip(10, 235))),
        light=(float(np.cos(angle)), float(np.sin(angle))),
        light_strength=float(rng.uniform(0.35, 0.6)),
        warmth=float(rng.uniform(-0.06, 0.06)),
        offset=(float(rng.uniform(-8, 8)), float(rng.uniform(-5, 5))),
        scale=float(rng.uniform(0.95, 1.05)),
    )


def plan_identities(identities: int, seed: int) -> list[Identity]:
    """Identities dealt round-robin over groups x genders; every fourth man reads real speech."""
    out = []
    cells = [(g, s) for s in GENDERS for g in GROUPS]
    for i in range(identities):
        group, gender = cells[i % len(cells)]
        rng = _rng(seed, 1, i)
        female = gender == "female"
        # The read-speech recordings are of two men: every fourth man reads,
        # alternating between the two readers.
        male_rank = (i // len(cells)) * len(GROUPS) + i % len(GROUPS)
        reader = READERS[(male_rank // 4) % len(READERS)] if not female and male_rank % 4 == 0 else None
        out.append(
            Identity(
                index=i, name=f"s{i:03d}", group=group, gender=gender,
                face=_face_style(rng, group, female), voice=_voice(rng, female, reader),
            )
        )
    return out


def read_speech_items(reader: str) -> list[tuple[str, str]]:
    """(recording id, transcript) of one reader's recordings in pocketsphinx-testdata."""
    if reader == "librivox":
        listing = f"{READ_SPEECH_DIR}/librivox/transcription"
    else:
        listing = f"{READ_SPEECH_DIR}/cards/cards.transcription"
    items = []
    try:
        lines = open(listing, encoding="utf-8").read().splitlines()
    except OSError:
        return []
    for line in lines:
        line = line.strip()
        if not line.endswith(")") or "(" not in line:
            continue
        text, _, rec = line.rpartition("(")
        words = [w for w in text.split() if w not in ("<s>", "</s>")]
        items.append((f"{reader}/{rec.rstrip(')').strip()}", " ".join(words)))
    return items


def plan_clips(identities: int, utterances: int, seed: int) -> list[ClipSpec]:
    """Every clip of the corpus, in identity order."""
    people = plan_identities(identities, seed)
    specs = []
    for person in people:
        rng = _rng(seed, 2, person.index)
        order = rng.permutation(len(SENTENCES))
        recordings = read_speech_items(person.voice.reader) if person.voice.reader else []
        if person.voice.reader and not recordings:
            # Without the Debian test data every voice falls back to TTS.
            person = Identity(
                person.index, person.name, person.group, person.gender, person.face,
                _voice(_rng(seed, 4, person.index), False, None),
            )
        rec_order = rng.permutation(len(recordings)) if recordings else []
        looks = {}
        for u in range(utterances):
            session = u // UTTERANCES_PER_SESSION
            if session not in looks:
                looks[session] = _session_look(_rng(seed, 3, person.index, session))
            if recordings:
                rec_id, _ = recordings[int(rec_order[u % len(recordings)])]
                text, read_file = None, rec_id
            else:
                first = SENTENCES_PER_UTTERANCE * u
                picked = [SENTENCES[int(order[(first + k) % len(SENTENCES)])] for k in range(SENTENCES_PER_UTTERANCE)]
                text, read_file = " ".join(picked), None
            specs.append(
                ClipSpec(
                    identity=person, utterance=u, session=session, seed=seed,
                    text=text, read_file=read_file, look=looks[session],
                )
            )
    return specs


def params_record(identities: int, utterances: int, seed: int) -> dict[str, Any]:
    """What the parameters file of a corpus folder holds (compared on re-runs)."""
    return {"corpus": "studio", "version": STUDIO_VERSION, "identities": identities,
            "utterances": utterances, "seed": seed}


def style_json(identity: Identity) -> str:
    return json.dumps(asdict(identity), sort_keys=True)
