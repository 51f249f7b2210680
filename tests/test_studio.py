"""The studio corpus: parameters, determinism, media, faces, lip sync, identities, resume."""
from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from pipeline.errors import AvdfError
from pipeline.manifest import read_manifest
from pipeline.media import SAMPLES_PER_FRAME, decode_audio, decode_video, probe
from pipeline.studio import GENDERS, GROUPS, StudioParamError, build_studio
from pipeline.studio.plan import plan_clips, plan_identities

IDENTITIES, UTTERANCES, SEED = 10, 2, 3


@pytest.fixture(scope="session")
def corpus(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("studio") / "corpus"
    build_studio(out, identities=IDENTITIES, utterances=UTTERANCES, seed=SEED, workers=2)
    return out


@pytest.fixture(scope="session")
def clips(corpus: Path) -> list[dict]:
    return read_manifest(corpus / "manifest.parquet").to_pylist()


@pytest.fixture(scope="session")
def decoded(corpus: Path, clips: list[dict]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Each clip decoded once for all the tests that look at pixels or samples."""
    return {
        c["key"]: (decode_video(corpus / c["path"]), decode_audio(corpus / c["path"], num_samples=c["num_samples"]))
        for c in clips
    }


@pytest.fixture(scope="session")
def face_tools():
    mp = pytest.importorskip("mediapipe")
    det = mp.solutions.face_detection.FaceDetection(model_selection=0, min_detection_confidence=0.5)
    mesh = mp.solutions.face_mesh.FaceMesh(static_image_mode=False, max_num_faces=1)
    yield det, mesh
    det.close()
    mesh.close()


# ------------------------------------------------------------------ parameters


@pytest.mark.parametrize(
    "kwargs, needle",
    [
        (dict(identities=9), "at least 10"),
        (dict(identities=0), "at least 10"),
        (dict(utterances=0), "utterances must be between 1"),
        (dict(seed=-1), "seed must be between 0"),
        (dict(identities="20"), "identities must be an integer"),
        (dict(identities=12.5), "identities must be an integer"),
        (dict(seed=True), "seed must be an integer"),
        (dict(workers=0), "workers must be a positive integer"),
    ],
)
def test_bad_parameters_are_clear_errors(tmp_path: Path, kwargs: dict, needle: str) -> None:
    with pytest.raises(StudioParamError, match=needle):
        build_studio(tmp_path / "out", **kwargs)
    assert not (tmp_path / "out").exists()


def test_plan_is_balanced_and_stable() -> None:
    people = plan_identities(20, 0)
    cells = Counter((p.group, p.gender) for p in people)
    assert set(cells) == {(g, s) for g in GROUPS for s in GENDERS}
    assert set(cells.values()) == {2}
    # Adding identities never changes the ones already drawn.
    assert plan_identities(30, 0)[:20] == people
    assert plan_identities(20, 1) != people
    specs = plan_clips(20, 3, 0)
    assert len({s.key for s in specs}) == 60
    # Utterances of a session share a video (splits never cut it); sessions hold at most two.
    per_video = Counter(s.video_id for s in specs)
    assert max(per_video.values()) == 2 and len(per_video) == 40
    assert any(s.read_file for s in specs) and any(s.text for s in specs)


def test_groups_balanced_and_rows_complete(clips: list[dict]) -> None:
    assert len(clips) == IDENTITIES * UTTERANCES
    people = {c["identity"]: (c["ethnicity"], c["gender"]) for c in clips}
    assert Counter(people.values()) == Counter({(g, s): 1 for g in GROUPS for s in GENDERS})
    for c in clips:
        assert c["corpus"] == "studio" and c["label"] == 0 and c["category"] == "RVRA"
        assert c["key"] == f"studio/{c['identity']}-u{int(c['key'][-2:]):02d}"
        assert c["num_samples"] == c["num_frames"] * SAMPLES_PER_FRAME
        extra = json.loads(c["extra"])
        assert extra["transcript"] and extra["phones"] and extra["group"] == c["ethnicity"]
        assert extra["speech_source"] in ("tts", "read")
        starts = [p[1] for p in extra["phones"]]
        assert starts == sorted(starts) and extra["phones"][-1][2] <= c["duration_s"] + 1e-6
    assert {json.loads(c["extra"])["speech_source"] for c in clips} == {"tts", "read"}


# ------------------------------------------------------------------ media


def test_every_clip_probes_25fps_16k_with_matching_durations(corpus: Path, clips: list[dict]) -> None:
    for c in clips:
        info = probe(corpus / c["path"])
        assert info.video is not None and info.audio is not None
        assert info.video.fps == pytest.approx(25.0) and not info.video.vfr
        assert info.video.width == info.video.height == 224
        assert info.audio.sample_rate == 16000 and info.audio.channels == 1
        assert info.video.num_frames == c["num_frames"]
        assert abs(info.video.duration_s - info.audio.duration_s) <= 0.04 + 1e-6
        assert abs(info.video.duration_s - c["duration_s"]) <= 0.04 + 1e-6


def test_same_seed_gives_identical_media(corpus: Path, clips: list[dict], tmp_path: Path) -> None:
    from pipeline.atomic import sha256_json
    from pipeline.studio import build
    from pipeline.studio.plan import params_record

    specs = plan_clips(IDENTITIES, UTTERANCES, SEED)
    # A TTS clip of a woman, a read-speech clip of a man, and a second-session clip.
    chosen = [specs[0], next(s for s in specs if s.read_file), specs[-1]]
    build._renderers.clear()
    sha = sha256_json(params_record(IDENTITIES, UTTERANCES, SEED))
    by_key = {c["key"]: c for c in clips}
    for spec in chosen:
        row = build.render_clip(spec, str(tmp_path), sha)
        assert row == by_key[spec.key]


# ------------------------------------------------------------------ rendering


def test_compositing_is_the_exact_integer_over() -> None:
    """face.over (OpenCV calls, per frame) is rgb + round(backdrop * (255 - alpha) / 255), saturated,
    for every rgb, alpha and backdrop byte."""
    from pipeline.studio.face import over

    alpha, back = np.meshgrid(np.arange(256), np.arange(256), indexing="ij")
    backdrop = np.repeat(back[..., None], 3, axis=2).astype(np.uint8)
    for value in range(256):
        rgba = np.dstack([np.full((256, 256, 3), value), alpha]).astype(np.uint8)
        exact = np.minimum(value + (back * (255 - alpha) + 127) // 255, 255)
        assert np.array_equal(over(rgba, backdrop), np.repeat(exact[..., None], 3, axis=2)), value


def test_a_renderer_draws_each_frame_as_a_new_one_would() -> None:
    """A renderer redraws the mouth and lids once per shape and closure and reuses them: after
    other frames it draws a frame exactly as a renderer that drew nothing before."""
    from pipeline.studio.build import _seed_int
    from pipeline.studio.face import FaceRenderer

    spec = plan_clips(IDENTITIES, UTTERANCES, SEED)[0]

    def renderer() -> FaceRenderer:
        return FaceRenderer(spec.identity.face, spec.look, _seed_int(spec.seed, 7, spec.identity.index, spec.session))

    pose = np.array([2.0, -1.0, 0.5, 1.0, -1.0, 1.0])
    frames = [(0.0, 1.0, 0.0), (0.6, 1.0, 0.0), (0.6, 0.8, 0.85), (0.6, 0.8, 0.35), (0.0, 1.0, 0.85)]
    used = renderer()
    for f in frames:
        used.render(*f, pose)
    for f in frames[::-1]:
        assert np.array_equal(used.render(*f, pose), renderer().render(*f, pose)), f


# ------------------------------------------------------------------ faces and lip sync


def _inner_lip_gap(mesh, frame: np.ndarray) -> float | None:
    res = mesh.process(frame)
    if not res.multi_face_landmarks:
        return None
    lm = res.multi_face_landmarks[0].landmark
    # Inner-lip gap (13: upper, 14: lower) relative to the face height (10: forehead, 152: chin).
    return (lm[14].y - lm[13].y) / (lm[152].y - lm[10].y)


def test_face_detector_finds_faces_and_landmarks(clips: list[dict], decoded, face_tools) -> None:
    det, mesh = face_tools
    found = landmarks = total = 0
    for c in clips:
        for frame in decoded[c["key"]][0][::4]:
            total += 1
            found += bool(det.process(frame).detections)
            landmarks += _inner_lip_gap(mesh, frame) is not None
    assert total >= 300
    assert found / total >= 0.99, f"face found in {found}/{total} frames"
    assert landmarks / total >= 0.99, f"landmarks found in {landmarks}/{total} frames"


def _envelope(audio: np.ndarray, frames: int) -> np.ndarray:
    return np.sqrt((audio[: frames * SAMPLES_PER_FRAME].reshape(frames, -1) ** 2).mean(1))


def test_mouth_opening_follows_speech(clips: list[dict], decoded, face_tools) -> None:
    """Landmark mouth opening (measured, not the renderer's state) vs the audio envelope."""
    _, mesh = face_tools
    shift = 12  # 0.5 s at 25 fps
    gaps_all, env_all, env_shifted = [], [], []
    for c in clips[::3]:
        video, audio = decoded[c["key"]]
        env = _envelope(audio, len(video))
        gaps = np.array([_inner_lip_gap(mesh, f) or 0.0 for f in video])
        gaps_all.append(gaps[shift:])
        env_all.append(env[shift:])
        env_shifted.append(env[:-shift])
    gaps, env, shifted = (np.concatenate(x) for x in (gaps_all, env_all, env_shifted))
    aligned = np.corrcoef(gaps, env)[0, 1]
    off = np.corrcoef(gaps, shifted)[0, 1]
    assert aligned > 0.45, f"mouth/envelope correlation {aligned:.2f}"
    assert off < 0.5 * aligned and off < 0.25, f"shifted correlation {off:.2f} vs aligned {aligned:.2f}"


# ------------------------------------------------------------------ identities


def _face_embedding(frame: np.ndarray, det) -> np.ndarray:
    box = det.process(frame).detections[0].location_data.relative_bounding_box
    h, w = frame.shape[:2]
    x0, y0 = max(0, int(box.xmin * w)), max(0, int(box.ymin * h))
    crop = frame[y0: y0 + int(box.height * h), x0: x0 + int(box.width * w)].astype(np.float32)
    hist = [np.histogram(crop[..., ch], bins=16, range=(0, 256))[0] for ch in range(3)]
    hist = np.concatenate(hist).astype(np.float32)
    return np.concatenate([hist / hist.sum(), [box.width * 2, box.height / box.width]])


def _voice_embedding(audio: np.ndarray) -> np.ndarray:
    """Mean log-mel spectrum of voiced frames: timbre and pitch register in one vector."""
    frames = audio[: len(audio) // 400 * 400].reshape(-1, 400) * np.hanning(400)
    spec = np.abs(np.fft.rfft(frames, 512)) ** 2
    energy = spec.sum(1)
    spec = spec[energy > 0.1 * np.median(energy[energy > 0]) if (energy > 0).any() else slice(None)]
    edges = np.geomspace(60, 7000, 33)
    freqs = np.fft.rfftfreq(512, 1 / 16000)
    bands = np.stack([spec[:, (freqs >= lo) & (freqs < hi)].sum(1) for lo, hi in zip(edges[:-1], edges[1:])], 1)
    logmel = np.log(bands + 1e-8)
    v = logmel.mean(0)
    return v - v.mean()


def _within_between(emb: dict[str, list[np.ndarray]]) -> tuple[float, float]:
    items = [(k, e) for k, es in emb.items() for e in es]
    within, between = [], []
    for i, (ki, ei) in enumerate(items):
        for kj, ej in items[i + 1:]:
            (within if ki == kj else between).append(float(np.linalg.norm(ei - ej)))
    return float(np.mean(within)), float(np.mean(between))


def test_identities_differ_in_face_and_voice(clips: list[dict], decoded, face_tools) -> None:
    det, _ = face_tools
    faces: dict[str, list] = {}
    voices: dict[str, list] = {}
    for c in clips:
        video, audio = decoded[c["key"]]
        faces.setdefault(c["identity"], []).append(_face_embedding(video[len(video) // 2], det))
        voices.setdefault(c["identity"], []).append(_voice_embedding(audio))
    fw, fb = _within_between(faces)
    vw, vb = _within_between(voices)
    assert fw < 0.5 * fb, f"face distances: within {fw:.3f}, between {fb:.3f}"
    assert vw < 0.8 * vb, f"voice distances: within {vw:.3f}, between {vb:.3f}"


# ------------------------------------------------------------------ idempotence and resume


def test_rerun_on_complete_folder_does_nothing(corpus: Path, capsys) -> None:
    before = {p: p.stat().st_mtime_ns for p in corpus.rglob("*") if p.is_file()}
    table = build_studio(corpus, identities=IDENTITIES, utterances=UTTERANCES, seed=SEED, workers=2)
    after = {p: p.stat().st_mtime_ns for p in corpus.rglob("*") if p.is_file()}
    assert before == after
    assert table.num_rows == IDENTITIES * UTTERANCES
    assert "0 rendered" in capsys.readouterr().out


def test_resume_renders_only_missing_clips(corpus: Path, clips: list[dict], tmp_path: Path, capsys) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(corpus, copy)
    victim = copy / clips[5]["path"]
    victim.unlink()
    untouched = copy / clips[0]["path"]
    mtime = untouched.stat().st_mtime_ns
    table = build_studio(copy, identities=IDENTITIES, utterances=UTTERANCES, seed=SEED, workers=1)
    assert "1 rendered" in capsys.readouterr().out
    assert victim.exists() and untouched.stat().st_mtime_ns == mtime
    assert table.to_pylist() == clips


def test_other_parameters_in_same_folder_is_an_error(corpus: Path) -> None:
    with pytest.raises(AvdfError, match="other parameters.*seed"):
        build_studio(corpus, identities=IDENTITIES, utterances=UTTERANCES, seed=SEED + 1)
