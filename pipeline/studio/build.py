"""``build_studio``: render the studio corpus into a folder, resumably.

Layout of the output folder::

    studio.json                 parameters (identities, utterances, seed, version)
    clips/<identity>/<clip>.mp4 25 fps, 16 kHz mono audio
    clips/<identity>/<clip>.json the clip's manifest row (written after its mp4)
    manifest.parquet            all rows; its stamp records the parameters' hash

Every file is written atomically. A clip counts as done when its mp4 and its
row exist for the same parameters, so an interrupted run renders only what is
missing, and a complete folder with the same parameters is left untouched.
"""
from __future__ import annotations

import concurrent.futures as cf
import json
import multiprocessing
import os
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from pipeline.atomic import is_up_to_date, mark_done, sha256_file, sha256_json, write_json_atomic
from pipeline.clip import Clip
from pipeline.errors import AvdfError
from pipeline.manifest import read_manifest, write_manifest
from pipeline.media import FPS, SAMPLE_RATE, SAMPLES_PER_FRAME, write_mp4
from pipeline.studio.plan import ClipSpec, StudioParamError, check_params, params_record, plan_clips

PARAMS_NAME = "studio.json"
MANIFEST_NAME = "manifest.parquet"

_renderers: dict[tuple, Any] = {}  # per worker process: identity-session -> FaceRenderer


def _seed_int(*parts: int) -> int:
    return int(np.random.SeedSequence(list(parts)).generate_state(1)[0])


def _renderer(spec: ClipSpec):
    from pipeline.studio.face import FaceRenderer

    key = (spec.seed, spec.identity.index, spec.session)
    if key not in _renderers:
        _renderers.clear()  # clips arrive grouped by identity: keep only the current one
        _renderers[key] = FaceRenderer(spec.identity.face, spec.look, _seed_int(spec.seed, 7, spec.identity.index, spec.session))
    return _renderers[key]


def _row_path(out: Path, spec: ClipSpec) -> Path:
    return out / spec.rel_path.replace(".mp4", ".json")


def render_clip(spec: ClipSpec, out: str, params_sha: str,
                lap: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Render one clip (speech, mouth track, frames), write its mp4 and row; return the row.

    ``lap(phase)`` is called as each phase ends: speech, renderer, frames, write (``avdf bench
    studio`` times them)."""
    from pipeline.studio.motion import blinks, head_pose
    from pipeline.studio.speech import make_speech
    from pipeline.studio.visemes import mouth_track

    lap = lap or (lambda phase: None)
    root = Path(out)
    person = spec.identity
    speech = make_speech(spec.text, spec.read_file, person.voice)
    num_frames = int(np.ceil(len(speech.audio) / SAMPLES_PER_FRAME))
    num_samples = num_frames * SAMPLES_PER_FRAME
    audio = np.pad(speech.audio, (0, num_samples - len(speech.audio)))
    open_, width = mouth_track(speech.phones, num_frames, FPS)
    rng = np.random.default_rng(np.random.SeedSequence([spec.seed, 5, person.index, spec.utterance]))
    pose = head_pose(rng, num_frames, open_, FPS)
    closure = blinks(rng, num_frames, FPS)
    lap("speech")
    renderer = _renderer(spec)
    lap("renderer")
    frames = np.stack([renderer.render(open_[i], width[i], closure[i], pose[i]) for i in range(num_frames)])
    lap("frames")
    path = root / spec.rel_path
    write_mp4(path, frames, audio, fps=FPS, sample_rate=SAMPLE_RATE,
              metadata={"comment": f"avdf studio corpus {spec.key}"})
    lap("write")
    extra = {
        "transcript": speech.transcript,
        "phones": speech.phones,
        "phoneset": speech.phoneset,
        "speech_source": person.voice.source,
        "speech_engine": speech.engine,
        "read_file": spec.read_file,
        "voice": asdict(person.voice),
        "group": person.group,
        "session": spec.session,
        "face": {k: v for k, v in asdict(person.face).items() if k in ("hair_style", "face_aspect", "skin")},
        "blinks": int(np.sum(np.diff((closure > 0.5).astype(int)) == 1)),
    }
    clip = Clip(
        key=spec.key, corpus="studio", identity=person.name, video_id=spec.video_id, path=spec.rel_path,
        ethnicity=person.group, gender=person.gender, fps=float(FPS), sample_rate=SAMPLE_RATE,
        num_frames=num_frames, num_samples=num_samples, duration_s=num_frames / FPS,
        sha256=sha256_file(path), extra=json.dumps(extra, sort_keys=True),
    )
    row = clip.to_row()
    write_json_atomic(_row_path(root, spec), {"params_sha256": params_sha, "row": row})
    return row


def render_clips(specs: list[ClipSpec], out: str, params_sha: str) -> list[dict[str, Any]]:
    """``render_clip`` for clips of one identity and session (they share one FaceRenderer)."""
    return [render_clip(spec, out, params_sha) for spec in specs]


def _by_renderer(specs: list[ClipSpec]) -> list[list[ClipSpec]]:
    """Specs grouped by the FaceRenderer they need (identity and session), in order: a worker
    process given a whole group builds its renderer once, where clips handed out one by one
    would have both workers build most renderers (~0.25 s each)."""
    groups: dict[tuple, list[ClipSpec]] = {}
    for spec in specs:
        groups.setdefault((spec.identity.index, spec.session), []).append(spec)
    return list(groups.values())


def _done_row(out: Path, spec: ClipSpec, params_sha: str) -> dict[str, Any] | None:
    """The stored row of a clip rendered with these parameters whose mp4 is in place, else None."""
    row_file = _row_path(out, spec)
    if not row_file.exists() or not (out / spec.rel_path).exists():
        return None
    try:
        stored = json.loads(row_file.read_text())
    except (OSError, json.JSONDecodeError):
        return None
    return stored["row"] if stored.get("params_sha256") == params_sha else None


def _check_folder(out: Path, record: dict[str, Any]) -> None:
    params_file = out / PARAMS_NAME
    if out.exists() and not out.is_dir():
        raise AvdfError(f"studio: output {out} exists and is not a folder")
    if params_file.exists():
        try:
            existing = json.loads(params_file.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise AvdfError(f"studio: {params_file} is unreadable ({exc}); delete it or choose another --out") from None
        if existing != record:
            diff = {k: (existing.get(k), v) for k, v in record.items() if existing.get(k) != v}
            raise AvdfError(
                f"studio: {out} holds a studio corpus made with other parameters "
                f"({', '.join(f'{k}: {a!r} there, {b!r} asked' for k, (a, b) in diff.items())}); "
                "choose another --out or delete that folder"
            )


def _check_workers(workers: object) -> int:
    if workers is None:
        return max(1, os.cpu_count() or 1)
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise StudioParamError(f"studio: workers must be a positive integer, got {workers!r}")
    return workers


def _worker_init() -> None:
    import cv2

    cv2.setNumThreads(1)  # parallelism comes from the processes


def build_studio(
    out: Path, identities: int = 20, utterances: int = 3, seed: int = 0, workers: int | None = None
) -> pa.Table:
    """Generate the studio corpus into ``out`` and return its manifest table.

    Deterministic in (identities, utterances, seed); idempotent (a complete
    folder with the same parameters is left as it is) and resumable (only
    clips whose mp4 or row is missing are rendered).
    """
    from tqdm import tqdm

    identities, utterances, seed = check_params(identities, utterances, seed)
    n_workers = _check_workers(workers)
    out = Path(out)
    record = params_record(identities, utterances, seed)
    params_sha = sha256_json(record)
    _check_folder(out, record)
    specs = plan_clips(identities, utterances, seed)
    manifest = out / MANIFEST_NAME
    t0 = time.perf_counter()
    if is_up_to_date(manifest, params_sha) and all((out / s.rel_path).exists() for s in specs):
        table = read_manifest(manifest)
        _summary(table, 0, len(specs), time.perf_counter() - t0, out)
        return table
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / PARAMS_NAME, record)
    rows: dict[str, dict[str, Any]] = {}
    todo = []
    for spec in specs:
        row = _done_row(out, spec, params_sha)
        if row is None:
            todo.append(spec)
        else:
            rows[spec.key] = row
    bar = tqdm(total=len(todo), desc="studio", unit="clip", disable=not todo)
    try:
        if n_workers == 1 or len(todo) <= 1:
            _worker_init()
            for spec in todo:
                rows[spec.key] = render_clip(spec, str(out), params_sha)
                bar.update()
        else:
            ctx = multiprocessing.get_context("spawn")  # no inherited threads or onnx sessions
            with cf.ProcessPoolExecutor(n_workers, mp_context=ctx, initializer=_worker_init) as pool:
                futures = {pool.submit(render_clips, group, str(out), params_sha): group
                           for group in _by_renderer(todo)}
                for fut in cf.as_completed(futures):
                    for spec, row in zip(futures[fut], fut.result()):
                        rows[spec.key] = row
                    bar.update(len(futures[fut]))
    finally:
        bar.close()
    table = write_manifest([Clip.from_row(rows[s.key]) for s in specs], manifest)
    mark_done(manifest, params_sha)
    _summary(table, len(todo), len(specs) - len(todo), time.perf_counter() - t0, out)
    return table


def _summary(table: pa.Table, rendered: int, kept: int, seconds: float, out: Path) -> None:
    minutes = sum(table.column("duration_s").to_pylist()) / 60
    print(
        f"studio: {table.num_rows} clips ({rendered} rendered, {kept} already there), "
        f"{minutes:.2f} min of video, {seconds:.1f} s -> {out}"
    )
