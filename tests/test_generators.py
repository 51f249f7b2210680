"""Every registered built-in generator gets the same checks (timm-style), plus per-kind region checks.

The clips and the generator instances are built once per module, and each
generator's output once (tests read it through ``generated``): the face
backend behind every built-in is shared per process, so its start-up is
paid once, not once per generator or per test.
"""
from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from generators.base import Generator
from generators.builtin import BUILTINS
from generators.builtin.common import RATE_TOLERANCE, ping_pong
from generators.registry import GENERATORS
from generators.synthetic import make_talking_clip
from pipeline.errors import MediaError, RegistryError
from pipeline.media import decode_audio, decode_video, probe, read_tags

SIZE = 144
# The driving audio outlasts the target video: generators must extend the target (ping-pong).
TARGET_S, DRIVING_S = 0.6, 0.8
N_FRAMES = round(DRIVING_S * 25)
S = SIZE / 192
CX, CY = 96 * S, 100 * S
MOUTH = (slice(int(CY + 22 * S), int(CY + 55 * S)), slice(int(CX - 24 * S), int(CX + 24 * S)))
EYES = (slice(int(CY - 32 * S), int(CY - 6 * S)), slice(int(CX - 36 * S), int(CX + 36 * S)))
FACE = (slice(int(CY - 30 * S), int(CY + 30 * S)), slice(int(CX - 30 * S), int(CX + 30 * S)))
CORNER = (slice(0, int(18 * S)), slice(0, int(18 * S)))

VIDEO_FORGERS = sorted(n for n in BUILTINS if GENERATORS.get(n).kind in ("lipsync", "faceswap"))
TALKING_HEADS = sorted(n for n in BUILTINS if GENERATORS.get(n).kind == "talking_head")


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("gen_media")
    return {
        "target": make_talking_clip(d / "target.mp4", seconds=TARGET_S, size=SIZE, seed=0),
        "driving": make_talking_clip(d / "driving.mp4", seconds=DRIVING_S, size=SIZE, seed=1, f0=200),
        "source": _marked_source(d / "source.mp4"),
        "dir": d,
    }


def _marked_source(path: Path) -> Path:
    """Another identity: same drawing but darker skin, cheek marks and a moustache (what a swap must carry over)."""
    import cv2

    from generators.synthetic import draw_face, speech_like
    from pipeline.media import write_mp4

    frames = []
    for t in range(N_FRAMES):
        f = draw_face(SIZE, opening=0.3 * (t % 5) / 4, skin=(150, 110, 80), seed=2).copy()
        for dx in (-28, 28):
            cv2.circle(f, (int(CX + dx * S), int(CY + 12 * S)), int(8 * S), (40, 30, 30), -1)
        cv2.rectangle(f, (int(CX - 16 * S), int(CY + 24 * S)), (int(CX + 16 * S), int(CY + 29 * S)), (30, 20, 20), -1)
        frames.append(f)
    return write_mp4(path, np.stack(frames), speech_like(N_FRAMES / 25, seed=2))


@pytest.fixture(scope="module")
def generators() -> dict[str, Generator]:
    """One instance per built-in for the whole module (weights/backends load once)."""
    return {name: GENERATORS.get(name)() for name in BUILTINS}


@pytest.fixture(scope="module")
def generated(clips, generators) -> Callable[[str], Path]:
    """``generated(name)``: that generator's fake of the test target (made on first use, then reused)."""
    outputs: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in outputs:
            gen = generators[name]
            kw = {"source_video": clips["source"]} if gen.kind == "faceswap" else {}
            outputs[name] = gen(clips["target"], clips["driving"], clips["dir"] / name,
                                source_keys=["test/target", "test/driving"], **kw)
        return outputs[name]

    return get


@pytest.fixture(scope="module")
def frames(clips, generated) -> Callable[[str], np.ndarray]:
    """``frames(name)``: the decoded fake (``frames("target")``: the target fitted to the
    driving audio's frames), each decoded once for the module."""
    cache: dict[str, np.ndarray] = {}

    def get(name: str) -> np.ndarray:
        if name not in cache:
            cache[name] = (ping_pong(decode_video(clips["target"]), N_FRAMES) if name == "target"
                           else decode_video(generated(name)))
        return cache[name]

    return get


@pytest.mark.parametrize("name", sorted(BUILTINS))
def test_output_contract(name, generated, frames):
    out = generated(name)
    cls = GENERATORS.get(name)
    info = probe(out)
    assert info.video.fps == 25 and not info.video.vfr
    assert info.audio.sample_rate == 16000 and info.audio.channels == 1
    # As long as the driving audio, within one frame.
    assert abs(info.duration_s - DRIVING_S) <= 0.04 + 1e-6
    assert abs(len(frames(name)) - N_FRAMES) <= 1
    tags = read_tags(out)
    assert tags["avdf_synthetic"] == "1"
    assert tags["avdf_generator"] == f"{cls.name}@{cls.version}"
    assert tags["avdf_source_keys"] == "test/target,test/driving"
    # The target's frame size (a 256 px talking head was told from its real clip by size alone) and
    # its video bitrate (a fixed CRF gave fakes ~10 % more: a container shortcut).
    assert (info.video.width, info.video.height) == (SIZE, SIZE)
    target_kbps = probe(clips_target_of(name, generated)).video.bit_rate_kbps
    assert abs(info.video.bit_rate_kbps / target_kbps - 1) <= RATE_TOLERANCE


def clips_target_of(name: str, generated) -> Path:
    """The clip a built-in forged in ``generated``: the test target (its folder holds the outputs)."""
    return generated(name).parent.parent / "target.mp4"


def _diff(a: np.ndarray, b: np.ndarray, region) -> float:
    return float(np.abs(a[:, region[0], region[1]].astype(np.float32) - b[:, region[0], region[1]]).mean())


def _flicker(out: np.ndarray, target: np.ndarray, region) -> float:
    """Frame-to-frame change of what the forgery added (out - target): seams and jitter."""
    residual = out[:, region[0], region[1]].astype(np.float32) - target[:, region[0], region[1]]
    return float(np.abs(np.diff(residual, axis=0)).mean())


@pytest.mark.parametrize("name", VIDEO_FORGERS)
def test_forged_region_changed_rest_kept(name, frames):
    out = frames(name)
    target = frames("target")[: len(out)]
    if GENERATORS.get(name).kind == "lipsync":
        assert _diff(out, target, MOUTH) > 3 * _diff(out, target, EYES)
        assert _diff(out, target, MOUTH) > 4.0
    else:  # a swapped face: the face changes, the background corner does not
        assert _diff(out, target, FACE) > 10.0
    assert _diff(out, target, CORNER) < 3.0


def test_smooth_swap_carries_identity_and_blends_smoother(frames):
    """The FSGAN stand-in shows the source's marks, and flickers less than the plain swap."""
    smooth, plain = frames("faceswap-smooth"), frames("faceswap")
    target = frames("target")[: len(smooth)]
    # The source's dark cheek marks land on the target's cheeks.
    cheek = (slice(int(CY + 6 * S), int(CY + 18 * S)), slice(int(CX - 34 * S), int(CX - 22 * S)))
    assert smooth[:, cheek[0], cheek[1]].mean() < target[:, cheek[0], cheek[1]].mean() - 25
    assert _flicker(smooth, target, FACE) < _flicker(plain, target, FACE)


def _box_size_cv(frames: np.ndarray) -> float:
    """SD / median of the face detector's box side sqrt(w h) over the frames (clip_facts' face_size_cv)."""
    from generators.face_geometry import shared_face_backend

    backend = shared_face_backend("mediapipe")
    sides = []
    for frame in frames:
        faces = backend.detect(np.ascontiguousarray(frame))
        if faces:
            x0, y0, x1, y1 = max(faces, key=lambda f: f.area).box
            sides.append(np.sqrt((x1 - x0) * (y1 - y0)))
    assert len(sides) >= 0.9 * len(frames)
    return float(np.std(sides) / np.median(sides))


@pytest.fixture(scope="module")
def studio_targets(tmp_path_factory) -> list[Path]:
    """Three clips of the built-in studio corpus (the faces the default DAG forges)."""
    from pipeline.atomic import sha256_json
    from pipeline.studio import build
    from pipeline.studio.plan import params_record, plan_clips

    d = tmp_path_factory.mktemp("studio")
    specs = plan_clips(3, 1, 0)
    sha = sha256_json(params_record(3, 1, 0))
    return [d / build.render_clip(spec, str(d), sha)["path"] for spec in specs]


@pytest.mark.parametrize("name", sorted(n for n in BUILTINS if GENERATORS.get(n).kind == "lipsync"))
def test_lipsync_keeps_the_face_box_steady(name, studio_targets, generators, tmp_path):
    # A driven mouth opening wider than the studio reals' (0.45 vs their 0.15 inter-ocular distances),
    # the chin dragged along, made the face detector's box jitter 2.3 times as much as in the real
    # clips: a face-box shortcut (clip_facts' face_size_cv), not a forgery trace.
    real, fake = [], []
    for i, target in enumerate(studio_targets):
        out = generators[name](target, None, tmp_path / str(i))
        real.append(_box_size_cv(decode_video(target)))
        fake.append(_box_size_cv(decode_video(out)))
    assert np.mean(fake) <= 1.3 * np.mean(real), (fake, real)


@pytest.mark.parametrize("text", ["The children played football in the park.", None], ids=["tts", "converted"])
def test_cloned_voice_costs_the_encoder_what_the_real_one_does(text, studio_targets, generators, tmp_path):
    # Clones silent around their speech: AAC spends almost nothing on digital silence, so the voice
    # fakes' audio streams were 62 against the reals' 68 kbit/s and probe-container found them by
    # bitrate alone. Around the speech they keep the real clip's room tone.
    from pipeline.media import probe

    ratios = []
    for i, target in enumerate(studio_targets):
        out = generators["voice"](target, None, tmp_path / str(i), source_keys=[f"studio/{i}"], text=text)
        ratios.append(probe(out).audio.bit_rate_kbps / probe(target).audio.bit_rate_kbps)
    assert abs(np.mean(ratios) - 1) <= 0.03, ratios


@pytest.mark.parametrize("name", TALKING_HEADS)
def test_talking_head_moves_head_and_mouth(name, frames):
    out = frames(name).astype(np.float32)
    # One frame animated: consecutive frames differ, most of all around the mouth (lower middle).
    motion = np.abs(np.diff(out, axis=0)).mean(axis=(0, 3))
    assert motion.mean() > 0.5
    assert motion[MOUTH].mean() > motion[: int(18 * S)].mean()


def test_voice_changes_audio_not_video(clips, generated, frames):
    out = generated("voice")
    video = frames("voice")
    target = frames("target")[: len(video)]
    assert np.abs(video.astype(np.float32) - target).mean() < 3.0
    fake = decode_audio(out)
    real = decode_audio(clips["driving"], num_samples=len(fake))
    assert np.abs(fake).max() > 0.05
    corr = np.corrcoef(fake, real)[0, 1]
    assert corr < 0.5, "the converted voice should not be the driving waveform"
    # As loud as the voice it replaces (the first clones were 1.8 dB louder: a loudness shortcut).
    assert abs(_dbfs(fake) - _dbfs(real)) <= 0.5


def _dbfs(audio: np.ndarray) -> float:
    return float(10 * np.log10(np.mean(np.square(audio, dtype=np.float64))))
    from generators.builtin.voice import estimate_f0

    assert abs(estimate_f0(fake) - estimate_f0(real)) > 20


def test_registry_refuses_non_generators():
    class NotAGenerator:
        name = "x"

    class Abstract(Generator):
        name, version, kind = "abstract", "1", "lipsync"

    for cls in (NotAGenerator, Abstract):
        with pytest.raises(RegistryError):
            GENERATORS._validate("x", cls)
    with pytest.raises(RegistryError, match="did you mean"):
        GENERATORS.get("wav2lipp")


def test_no_face_is_a_clear_media_error(tmp_path, make_clip, generators):
    blank = make_clip("testsrc.mp4", duration=0.4, size="96x96")
    with pytest.raises(MediaError, match="no face"):
        generators["wav2lip"](blank, None, tmp_path / "w")


def test_triangulate_names_each_vertex_by_the_first_of_its_points():
    from generators.face_geometry import triangulate

    square = np.array([[10, 10], [90, 10], [90, 90], [10, 90], [50, 50]], np.float32)
    tris = triangulate(square, (100, 100))
    assert sorted(sorted(t) for t in tris.tolist()) == [[0, 1, 4], [0, 3, 4], [1, 2, 4], [2, 3, 4]]
    # Points within 1/1000 px of an earlier one are that vertex: never inserted, never named.
    repeated = np.concatenate([square, square[[4]] + 0.0004, square[[0]]])
    assert np.array_equal(triangulate(repeated, (100, 100)), tris)
    # Points that float32 (what the triangulation keeps) cannot hold are found by their rounded position.
    assert np.array_equal(triangulate(square.astype(np.float64) + 1e-9, (100, 100)), tris)


# -- real faces ------------------------------------------------------------------------------------------------

REAL_TARGET = "real_talking/OpenTalker_video-retalking__examples_face_2.mp4"
REAL_SOURCE = "real_talking/OpenTalker_video-retalking__examples_face_3.mp4"  # another identity (swap donor)
REAL_STILL = "still_face/wangsuzhen_Audio2Head__demo_img_obama.jpg"


@pytest.fixture(scope="module")
def real(shared_media, tmp_path_factory) -> dict[str, Path]:
    """0.6 s of two real speakers at 256 px, 25 fps, 16 kHz, and a still face."""
    paths = {k: shared_media / v for k, v in (("target", REAL_TARGET), ("source", REAL_SOURCE), ("still", REAL_STILL))}
    if not all(p.exists() for p in paths.values()):
        pytest.skip("real media files absent")
    d = tmp_path_factory.mktemp("real_media")
    for key in ("target", "source"):
        short = d / f"{key}.mp4"
        subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-t", "0.6", "-i", str(paths[key]), "-vf",
                        "scale=256:256", "-r", "25", "-ar", "16000", "-ac", "1", str(short)], check=True)
        paths[key] = short
    return {**paths, "dir": d}


@pytest.mark.realmedia
@pytest.mark.parametrize("name", VIDEO_FORGERS + TALKING_HEADS)
def test_builtins_on_real_faces(name, real, generators):
    gen = generators[name]
    # One-shot talking heads animate a single still photo; the rest forge the real video.
    target = real["still"] if gen.kind == "talking_head" else real["target"]
    kw = {"source_video": real["source"]} if gen.kind == "faceswap" else {}
    out = gen(target, real["target"], real["dir"] / name, source_keys=["real/x"], **kw)
    info = probe(out)
    assert info.video.fps == 25 and abs(info.duration_s - 0.6) <= 0.05
    fake = decode_video(out).astype(np.float32)
    if gen.kind == "talking_head":
        assert np.abs(np.diff(fake, axis=0)).mean() > 0.3  # the still photo moves
        return
    real_frames = decode_video(real["target"])[: len(fake)].astype(np.float32)
    diff = np.abs(fake - real_frames).mean(axis=(0, 3))
    top = diff[:40, :].mean()  # above the head: kept (only re-encoding noise)
    if gen.kind == "lipsync":
        lower = max(diff[y:y + 32, x:x + 32].mean() for y in range(128, 224, 16) for x in range(64, 192, 16))
        assert lower > 2 * top  # somewhere in the lower face was re-rendered, the top kept
    else:
        # The face (the middle of the frame) is another person's: far more changed than the background.
        assert diff[80:200, 70:190].mean() > 2.5 * top
        assert diff[80:200, 70:190].mean() > 3.0


@pytest.mark.realmedia
def test_smooth_swap_flickers_less_on_real_faces(real, generators):
    target = decode_video(real["target"])
    flicker = {}
    for name in ("faceswap", "faceswap-smooth"):
        path = real["dir"] / name / f"{name}.mp4"
        if not path.exists():  # made by test_builtins_on_real_faces when it ran first
            generators[name](real["target"], real["target"], real["dir"] / name, source_video=real["source"])
        out = decode_video(path)
        flicker[name] = _flicker(out, target[: len(out)], (slice(60, 220), slice(50, 210)))
    assert flicker["faceswap-smooth"] < flicker["faceswap"]


@pytest.mark.parametrize("text", ["The children played football in the park.", None], ids=["tts", "converted"])
def test_cloned_speech_keeps_the_real_clips_silences(text, clips, generators, tmp_path):
    """A voice clone (TTS, or the real speech voice-converted) speaks where the real speaker spoke: its
    leading and trailing silence are the real clip's (else probe-silence tells fakes from reals by the
    first 0.2 s alone: TTS clones started at once, converted ones 16 ms early in 15 of 16 studio clips)."""
    from pipeline.clip_facts import clip_facts, fact_indices
    from pipeline.media import write_mp4

    video = ping_pong(decode_video(clips["target"]), 62)  # 2.48 s
    audio = np.zeros(len(video) * 640, np.float32)
    lead, tail = 8000, 4000  # 0.5 s before the speech, 0.25 s after it
    body = np.resize(decode_audio(clips["driving"]), len(audio) - lead - tail)
    audio[lead : lead + len(body)] = body / max(1e-6, np.abs(body).max()) * 0.5
    target = write_mp4(tmp_path / "paused.mp4", video, audio)
    out = generators["voice"](target, None, tmp_path / "voice", source_keys=["test/paused"], text=text)
    silence = fact_indices("silence")

    def silences(samples):
        return clip_facts({"audio": samples}, {})[silence]

    real, fake = silences(decode_audio(target)), silences(decode_audio(out))
    assert real[0] >= 0.45  # the target as written: half a second of silence first
    assert abs(fake[0] - real[0]) <= 0.01 and abs(fake[1] - real[1]) <= 0.05, (real, fake)
