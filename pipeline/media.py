"""Media I/O over ffmpeg (through ffmpeg-python; which ffmpeg: ``pipeline.ffmpeg_bin``).

Every stage sees media the same way: video as 25 fps RGB uint8 frames, audio
as 16 kHz mono float32 with an exact sample count. Variable frame rates,
29.97/30 fps and 44.1/48 kHz stereo inputs are resampled here, once.

Frames come out upright, as players show them: a phone clip whose rotation is
stored as display-matrix side data is rotated by ffmpeg (its default
autorotation), and ``probe`` reports the displayed size. Decoding counts the
errors ffmpeg reports (a corrupt H.264 stream still yields frames), so callers
can refuse damaged clips instead of learning from their artefacts.

A process start costs more than decoding a short 224 px clip (the static ffmpeg
build starts in ~0.01 s; Debian's ffprobe took ~0.08 s of CPU before any work). So
``probe`` opens the file in-process with libav (``pipeline.libav_probe``; the program
``$AVDF_FFPROBE`` names instead, if set), a caller holding a ``probe`` passes it on
(``info=``), ``probe`` remembers the files it has described (until they change), and
``iter_frames(..., audio=AudioCapture())`` decodes the audio track in the same ffmpeg
run as the frames: one probe and one decode per clip.
"""
from __future__ import annotations

import json
import math
import os
import queue
import re
import subprocess
import tempfile
import threading
from collections import OrderedDict, deque
from collections.abc import Generator, Iterator
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Any, TypeVar

import ffmpeg
import numpy as np

from pipeline.atomic import atomic_path
from pipeline.errors import MediaError
from pipeline.ffmpeg_bin import ffmpeg_exe, ffprobe_exe
from pipeline.libav_probe import ProbeFailed, probe_json

FPS = 25
SAMPLE_RATE = 16000
SAMPLES_PER_FRAME = SAMPLE_RATE // FPS  # 640: frame t <-> samples [640 t, 640 (t+1))


@dataclass(frozen=True)
class VideoStream:
    codec: str
    width: int  # displayed size: the coded size with width and height swapped for a 90/270 degree rotation
    height: int
    fps: float  # average frame rate
    nominal_fps: float  # r_frame_rate: the container's declared rate
    vfr: bool
    num_frames: int | None
    duration_s: float | None
    rotation: int = 0  # degrees counter-clockwise (ffprobe's display-matrix convention); decoded frames are upright
    bit_rate_kbps: float | None = None  # as the container declares it; None where it does not (e.g. some webm)
    start_time_s: float | None = None  # presentation time of the first frame (an -itsoffset or edit list moves it)


@dataclass(frozen=True)
class AudioStream:
    codec: str
    sample_rate: int
    channels: int
    duration_s: float | None
    bit_rate_kbps: float | None = None
    start_time_s: float | None = None


@dataclass(frozen=True)
class Probe:
    path: str
    format: str
    duration_s: float
    size_bytes: int
    video: VideoStream | None
    audio: AudioStream | None
    bit_rate_kbps: float | None = None  # whole file: ffprobe's bit_rate, else size / duration

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2)


def _rate(text: str | None) -> float:
    if not text or text in ("0/0", "0"):
        return 0.0
    return float(Fraction(text))


def _float(value: object) -> float | None:
    try:
        out = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def _kbps(bits_per_s: object) -> float | None:
    value = _float(bits_per_s)
    return value / 1000 if value is not None and value > 0 else None


def _ffmpeg_reason(stderr: bytes) -> str:
    """The most telling line of an ffmpeg/ffprobe error output."""
    lines = [ln.strip() for ln in stderr.decode(errors="replace").splitlines() if ln.strip()]
    for needle in ("moov atom not found", "Invalid data found", "End of file", "corrupt", "error", "Error"):
        for ln in lines:
            if needle in ln:
                return ln
    return lines[-1] if lines else "ffmpeg failed without a message"


def _rotation(stream: dict) -> int:
    """Counter-clockwise rotation (degrees, in (-180, 180]) a player applies to this video stream.

    ffprobe >= 5 reports the display matrix as side data (``rotation``, counter-clockwise);
    older ones as the ``rotate`` tag, which counts clockwise.
    """
    degrees = None
    for side in stream.get("side_data_list") or []:
        if "rotation" in side:
            degrees = _float(side["rotation"])
            break
    if degrees is None:
        cw = _float((stream.get("tags") or {}).get("rotate"))
        degrees = -cw if cw is not None else None
    if degrees is None:
        return 0
    degrees = int(round(degrees)) % 360
    return degrees - 360 if degrees > 180 else degrees


def _is_quarter_turn(rotation: int) -> bool:
    # ffmpeg autorotates multiples of 90 degrees only; other angles are shown unrotated.
    return rotation % 180 == 90


def _check_file(path: Path) -> None:
    if not path.exists():
        raise MediaError(path, "file does not exist", "missing")
    if path.is_dir():
        raise MediaError(path, "is a directory, not a media file", "not_media")
    if path.stat().st_size == 0:
        raise MediaError(path, "file is empty (0 bytes)", "empty")


def _has_ftyp(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(8)[4:8] == b"ftyp"


# The last descriptions probe() gave, by file and its state: a stage often probes one source several
# times (a generator reads its target clip, sizes it, then matches its bitrate).
_PROBED: OrderedDict[tuple, Probe] = OrderedDict()
_PROBED_MAX = 512
_PROBED_LOCK = threading.Lock()


def probe(path: str | Path) -> Probe:
    """Describe a media file's container, video and audio streams.

    A file probed before in this process, and unchanged since (same inode, size, mtime and
    ctime), is described from memory. Raises MediaError for a missing, empty, truncated or
    non-media file, or a file with neither a video nor an audio stream.
    """
    path = Path(path)
    _check_file(path)
    st = path.stat()
    key = (str(path), st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
    with _PROBED_LOCK:
        if key in _PROBED:
            _PROBED.move_to_end(key)
            return _PROBED[key]
    info = _probe(path)
    with _PROBED_LOCK:
        _PROBED[key] = info
        while len(_PROBED) > _PROBED_MAX:
            _PROBED.popitem(last=False)
    return info


def _probe_json(path: Path) -> dict[str, Any]:
    """ffprobe's ``-show_format -show_streams`` JSON of ``path``: from libav in-process, or the
    program ``$AVDF_FFPROBE`` names; MediaError when neither can read it as media."""
    program = ffprobe_exe()
    try:
        if program is None:
            return probe_json(path)
        return ffmpeg.probe(str(path), cmd=program)
    except ProbeFailed as exc:
        reason = _ffmpeg_reason(exc.reason.encode())
    except ffmpeg.Error as exc:
        reason = _ffmpeg_reason(exc.stderr or b"")
    # A cut-off mp4 still starts with its 'ftyp' box; a text file named .mp4 does not.
    kind = "truncated" if "moov atom not found" in reason and _has_ftyp(path) else "not_media"
    what = "truncated or incomplete media file" if kind == "truncated" else "not a readable media file"
    raise MediaError(path, f"{what} ({reason})", kind)


def _probe(path: Path) -> Probe:
    info = _probe_json(path)
    fmt = info.get("format", {})
    video = audio = None
    for s in info.get("streams", []):
        if s.get("codec_type") == "video" and video is None and not s.get("disposition", {}).get("attached_pic"):
            avg, nominal = _rate(s.get("avg_frame_rate")), _rate(s.get("r_frame_rate"))
            nb = s.get("nb_frames")
            rotation = _rotation(s)
            width, height = int(s["width"]), int(s["height"])
            if _is_quarter_turn(rotation):
                width, height = height, width
            video = VideoStream(
                codec=s.get("codec_name", "?"),
                width=width,
                height=height,
                fps=avg or nominal,
                nominal_fps=nominal or avg,
                # Declared and average rates disagree on variable-frame-rate files.
                vfr=bool(avg and nominal and abs(avg - nominal) / nominal > 0.01),
                num_frames=int(nb) if nb and str(nb).isdigit() else None,
                duration_s=_float(s.get("duration")),
                rotation=rotation,
                bit_rate_kbps=_kbps(s.get("bit_rate")),
                start_time_s=_float(s.get("start_time")),
            )
        elif s.get("codec_type") == "audio" and audio is None:
            audio = AudioStream(
                codec=s.get("codec_name", "?"),
                sample_rate=int(s.get("sample_rate") or 0),
                channels=int(s.get("channels") or 0),
                duration_s=_float(s.get("duration")),
                bit_rate_kbps=_kbps(s.get("bit_rate")),
                start_time_s=_float(s.get("start_time")),
            )
    if video is None and audio is None:
        raise MediaError(path, "no video or audio stream", "not_media")
    duration = _float(fmt.get("duration")) or max(
        (s.duration_s or 0.0 for s in (video, audio) if s is not None), default=0.0
    )
    size_bytes = int(fmt.get("size") or path.stat().st_size)
    bit_rate = _kbps(fmt.get("bit_rate"))
    if bit_rate is None and duration > 0:
        bit_rate = size_bytes * 8 / duration / 1000
    return Probe(
        path=str(path),
        format=fmt.get("format_name", "?"),
        duration_s=duration,
        size_bytes=size_bytes,
        video=video,
        audio=audio,
        bit_rate_kbps=bit_rate,
    )


def expected_frames(duration_s: float, fps: int = FPS) -> int:
    """Frames an fps-resampled video of this duration has (ffmpeg's fps filter rounds)."""
    return int(round(duration_s * fps))


def _require_video(info: Probe) -> VideoStream:
    if info.video is None:
        raise MediaError(info.path, "no video stream", "no_video")
    return info.video


def _require_audio(info: Probe) -> AudioStream:
    if info.audio is None:
        raise MediaError(info.path, "no audio stream", "no_audio")
    return info.audio


def _video_duration(info: Probe, stream: VideoStream) -> float:
    return stream.duration_s or info.duration_s


@dataclass
class AudioCapture:
    """The audio track decoded beside the frames by ``iter_frames(..., audio=...)``: 16 kHz (or
    ``sample_rate``) mono float32, sized as ``decode_audio`` sizes it; filled in once the
    iteration has run to its end."""

    sample_rate: int = SAMPLE_RATE
    samples: np.ndarray | None = None


@dataclass
class DecodeReport:
    """What ffmpeg said while decoding a video: filled in when the decode runs to its end.

    ``errors`` counts ffmpeg's error-level log lines (a clean file gives 0; a
    corrupt H.264 stream gives lines such as "Invalid NAL unit size" or "error
    while decoding MB" while frames still come out). ``lines`` keeps the first
    few, with decoder addresses removed so that messages are reproducible.
    """

    errors: int = 0
    frames: int = 0
    lines: list[str] = field(default_factory=list)
    complete: bool = False

    @property
    def first_error(self) -> str | None:
        return self.lines[0] if self.lines else None


# "[h264 @ 0x55bb1cd346c0] error while decoding MB 2 5" -> "[h264] error while decoding MB 2 5"
_ADDRESS = re.compile(r" @ 0x[0-9a-fA-F]+\]")
_KEPT_LINES = 20


class _PipeReader:
    """Read a pipe to its end on a thread (see ``iter_frames``'s audio output)."""

    def __init__(self, fd: int) -> None:
        self._chunks: list[bytes] = []
        self._file = os.fdopen(fd, "rb")
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        with self._file:
            while chunk := self._file.read(1 << 16):
                self._chunks.append(chunk)

    def join(self) -> bytes:
        self._thread.join()
        return b"".join(self._chunks)


class _StderrDrain:
    """Read a process's stderr on a thread: ffmpeg blocks once the pipe buffer (64 KiB) is full,
    and a corrupt file can print far more than that while we are reading frames from stdout."""

    def __init__(self, stream) -> None:
        self.count = 0
        self.first: list[str] = []
        self.last: deque[str] = deque(maxlen=_KEPT_LINES)
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream) -> None:
        for raw in stream:
            line = _ADDRESS.sub("]", raw.decode(errors="replace").strip())
            if not line:
                continue
            self.count += 1
            if len(self.first) < _KEPT_LINES:
                self.first.append(line)
            self.last.append(line)

    def join(self) -> None:
        self._thread.join()

    def text(self) -> bytes:
        """The first and last lines (for the reason of a failure), each once."""
        return "\n".join(dict.fromkeys([*self.first, *self.last])).encode()


T = TypeVar("T")
_END = object()


def read_ahead(items: Generator[T, None, None], depth: int = 6) -> Iterator[T]:
    """Run ``items`` on a thread, up to ``depth`` items ahead of the consumer.

    For ``iter_frames``: ffmpeg decodes and the pipe is read (both outside the GIL) while the
    consumer works on earlier frames (face detection), instead of each waiting for the other
    through a 64 KiB pipe. Errors are raised in the consumer; a consumer that stops early stops
    the thread, which closes ``items`` (ending ffmpeg) on its own side.
    """
    slots: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(entry: tuple[Any, BaseException | None]) -> bool:
        while not stop.is_set():
            try:
                slots.put(entry, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put((item, None)):
                    return
            put((_END, None))
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer, which raises it
            put((_END, exc))
        finally:
            items.close()

    thread = threading.Thread(target=produce, name="avdf-read-ahead", daemon=True)
    thread.start()
    try:
        while True:
            item, error = slots.get()
            if item is _END:
                if error is not None:
                    raise error
                return
            yield item
    finally:
        stop.set()
        thread.join()


def iter_frames(
    path: str | Path,
    fps: int = FPS,
    size: tuple[int, int] | None = None,
    crop: tuple[int, int, int, int] | None = None,
    info: Probe | None = None,
    report: DecodeReport | None = None,
    audio: AudioCapture | None = None,
) -> Iterator[np.ndarray]:
    """Stream upright frames resampled to ``fps`` as RGB uint8 arrays of shape (H, W, 3).

    ``crop`` = (x, y, w, h) in displayed (upright) pixels is applied before ``size`` = (w, h).
    Constant memory: one frame at a time, whatever the clip length. Pass a
    ``report`` to learn how many errors ffmpeg reported (filled in once the
    iteration has run to its end). Pass ``audio`` to get the first audio stream
    from the same ffmpeg run (no second process start); the file must have one
    (``MediaError`` ``no_audio``). The result equals ``decode_audio``'s, errors
    included: where the shared run reports any error, the frames' error count and
    the audio come from separate runs, which tell video and audio errors apart.
    """
    info = info or probe(path)
    stream = _require_video(info)
    if audio is not None:
        _require_audio(info)
    # ffmpeg's default autorotation turns the frames upright before the filters below, so the
    # displayed size from probe() is what comes out of the pipe (and crops are in upright pixels).
    source = ffmpeg.input(str(path))
    stream_in = source.video.filter("fps", fps=fps)
    out_w, out_h = stream.width, stream.height
    if crop is not None:
        x, y, w, h = crop
        stream_in = stream_in.filter("crop", w, h, x, y)
        out_w, out_h = w, h
    if size is not None:
        out_w, out_h = size
        stream_in = stream_in.filter("scale", out_w, out_h, flags="area")
    outputs = [stream_in.output("pipe:", format="rawvideo", pix_fmt="rgb24", fps_mode="cfr")]
    audio_read = audio_write = None
    if audio is not None:
        # The audio goes to a second pipe, read on a thread (ffmpeg interleaves both outputs, so
        # either pipe filling up would stall the other).
        audio_read, audio_write = os.pipe()
        outputs.append(_audio_output(source, f"pipe:{audio_write}", audio.sample_rate))
    args = ffmpeg.merge_outputs(*outputs).global_args("-nostdin", "-loglevel", "error").compile(cmd=ffmpeg_exe())
    try:
        proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                pass_fds=(audio_write,) if audio_write is not None else ())
    except BaseException:
        if audio_read is not None:
            os.close(audio_read)
        raise
    finally:
        if audio_write is not None:
            os.close(audio_write)  # the child holds its copy: end-of-file comes when ffmpeg exits
    audio_reader = _PipeReader(audio_read) if audio_read is not None else None
    drain = _StderrDrain(proc.stderr)
    frame_bytes = out_w * out_h * 3
    count = leftover = 0
    try:
        while True:
            buf = proc.stdout.read(frame_bytes)
            if len(buf) < frame_bytes:
                leftover = len(buf)
                break
            count += 1
            yield np.frombuffer(buf, np.uint8).reshape(out_h, out_w, 3)
    finally:
        # Also on an early stop: closing stdout ends ffmpeg (broken pipe) and the reader threads.
        proc.stdout.close()
        rc = proc.wait()
        drain.join()
        proc.stderr.close()
        raw_audio = audio_reader.join() if audio_reader is not None else b""
    if audio is not None and (rc != 0 or drain.count):
        # Shared-run errors cannot be told apart by stream: count the frames' errors as a run
        # without audio does, and decode the audio alone (its own failures raise there).
        for _ in iter_frames(path, fps, size, crop, info, report):
            pass
        audio.samples = decode_audio(path, audio.sample_rate, info=info)
        return
    if rc != 0:
        raise MediaError(path, f"video decoding failed ({_ffmpeg_reason(drain.text())})", "decode")
    if leftover:
        # rawvideo holds whole frames only: a remainder means the frames are not the size we read.
        raise MediaError(
            path, f"decoded frames are not {out_w}x{out_h} as probed (rotation {stream.rotation})", "decode"
        )
    if report is not None:
        report.errors, report.frames, report.lines, report.complete = drain.count, count, drain.first, True
    if audio is not None:
        audio.samples = _sized_audio(path, info, np.frombuffer(raw_audio, np.float32).copy(), audio.sample_rate)


def decode_video(
    path: str | Path,
    fps: int = FPS,
    size: tuple[int, int] | None = None,
    crop: tuple[int, int, int, int] | None = None,
    num_frames: int | None = None,
    min_fraction: float = 0.9,
    report: DecodeReport | None = None,
    info: Probe | None = None,
    audio: AudioCapture | None = None,
) -> np.ndarray:
    """Decode a whole video to (T, H, W, 3) uint8 at ``fps``.

    The frame count is checked against the stream's duration: a file that
    yields fewer than ``min_fraction`` of the expected frames is reported as
    truncated. With ``num_frames`` the result is trimmed or padded (by
    repeating the last frame) to exactly that many frames. ``report`` receives
    ffmpeg's decode-error count (see ``DecodeReport``). Pass the file's ``probe``
    as ``info`` to skip probing it again, and an ``AudioCapture`` to get its audio
    from the same ffmpeg run (``iter_frames``).
    """
    info = info or probe(path)
    stream = _require_video(info)
    frames = list(iter_frames(path, fps=fps, size=size, crop=crop, info=info, report=report, audio=audio))
    expected = expected_frames(_video_duration(info, stream), fps)
    if not frames:
        raise MediaError(path, "video stream has no decodable frames (truncated or corrupt)", "truncated")
    if len(frames) < min_fraction * expected:
        raise MediaError(
            path, f"truncated video: decoded {len(frames)} of {expected} expected frames", "truncated"
        )
    video = np.stack(frames)
    if num_frames is not None:
        video = fit_length(video, num_frames)
    return video


def decode_audio(
    path: str | Path,
    sample_rate: int = SAMPLE_RATE,
    num_samples: int | None = None,
    info: Probe | None = None,
) -> np.ndarray:
    """Decode the first audio stream to mono float32 in [-1, 1] at ``sample_rate``.

    The result has exactly ``num_samples`` samples when given; otherwise the
    count the stream's duration implies, which drops the encoder padding AAC
    appends to its last frame, or the decoded count where that is shorter (an
    mp3's container duration counts the encoder delay and padding that the
    decoder drops). Pass the file's ``probe`` as ``info`` to skip probing it again.
    """
    info = info or probe(path)
    _require_audio(info)
    try:
        out, _ = (
            _audio_output(ffmpeg.input(str(path)), "pipe:", sample_rate)
            .global_args("-nostdin", "-loglevel", "error")
            .run(cmd=ffmpeg_exe(), capture_stdout=True, capture_stderr=True)
        )
    except ffmpeg.Error as exc:
        raise MediaError(path, f"audio decoding failed ({_ffmpeg_reason(exc.stderr or b'')})", "decode") from None
    return _sized_audio(path, info, np.frombuffer(out, np.float32).copy(), sample_rate, num_samples)


def _audio_output(source: Any, target: str, sample_rate: int) -> Any:
    """ffmpeg output of ``source``'s first audio stream as raw mono float32 at ``sample_rate``."""
    return source.audio.output(target, format="f32le", acodec="pcm_f32le", ac=1, ar=sample_rate)


def _sized_audio(
    path: str | Path, info: Probe, audio: np.ndarray, sample_rate: int, num_samples: int | None = None
) -> np.ndarray:
    """Decoded samples sized as ``decode_audio`` documents."""
    if audio.size == 0:
        raise MediaError(path, "audio stream has no decodable samples (truncated or corrupt)", "truncated")
    if num_samples is None:
        duration = _require_audio(info).duration_s or info.duration_s
        num_samples = min(audio.size, int(round(duration * sample_rate)))
    return fit_length(audio, num_samples)


def fit_length(x: np.ndarray, n: int) -> np.ndarray:
    """Trim or pad axis 0 to ``n`` (audio pads with silence, video repeats the last frame)."""
    if n < 0:
        raise ValueError(f"length must be non-negative, got {n}")
    if len(x) >= n:
        return x[:n]
    if x.ndim == 1:
        return np.concatenate([x, np.zeros(n - len(x), x.dtype)])
    pad = np.repeat(x[-1:], n - len(x), axis=0)
    return np.concatenate([x, pad])


def write_mp4(
    path: str | Path,
    frames: np.ndarray,
    audio: np.ndarray | None = None,
    fps: int = FPS,
    sample_rate: int = SAMPLE_RATE,
    crf: float = 18,
    metadata: dict[str, str] | None = None,
) -> Path:
    """Encode (T, H, W, 3) uint8 RGB frames (+ mono float audio) to H.264 + AAC mp4.

    Written atomically. Odd frame sizes are padded by one pixel (yuv420p needs
    even sizes). ``metadata`` goes into the container's tags (e.g. the
    generator that made a synthetic clip).
    """
    path = Path(path)
    frames = np.ascontiguousarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be (T, H, W, 3) uint8, got {frames.shape} {frames.dtype}")
    t, h, w, _ = frames.shape
    if t == 0:
        raise ValueError("cannot write a video with no frames")
    with tempfile.TemporaryDirectory(prefix="avdf-mux-") as tmp, atomic_path(path) as out_tmp:
        video_in = ffmpeg.input("pipe:", format="rawvideo", pix_fmt="rgb24", s=f"{w}x{h}", r=fps)
        vstream = video_in.video
        if w % 2 or h % 2:
            vstream = vstream.filter("pad", w + w % 2, h + h % 2)
        streams = [vstream]
        kwargs: dict[str, object] = dict(
            vcodec="libx264", pix_fmt="yuv420p", crf=crf, preset="veryfast", r=fps, movflags="+faststart+use_metadata_tags"
        )
        if audio is not None:
            audio = np.ascontiguousarray(audio, dtype=np.float32)
            if audio.ndim != 1:
                raise ValueError(f"audio must be mono (N,), got shape {audio.shape}")
            raw = Path(tmp) / "audio.f32"
            raw.write_bytes(audio.tobytes())
            streams.append(ffmpeg.input(str(raw), format="f32le", ar=sample_rate, ac=1).audio)
            kwargs.update(acodec="aac", audio_bitrate="96k", ar=sample_rate, ac=1)
        for i, (k, v) in enumerate((metadata or {}).items()):
            kwargs[f"metadata:g:{i}"] = f"{k}={v}"
        cmd = (
            ffmpeg.output(*streams, str(out_tmp), format="mp4", **kwargs)
            .global_args("-nostdin", "-loglevel", "error")
            .overwrite_output()
        )
        proc = cmd.run_async(cmd=ffmpeg_exe(), pipe_stdin=True, pipe_stderr=True)
        try:
            proc.stdin.write(frames.tobytes())
        except BrokenPipeError:
            pass
        proc.stdin.close()
        stderr = proc.stderr.read()
        if proc.wait() != 0:
            raise MediaError(path, f"encoding failed ({_ffmpeg_reason(stderr)})", "encode")
    return path


def read_tags(path: str | Path) -> dict[str, str]:
    """The container-level metadata tags of a media file."""
    path = Path(path)
    _check_file(path)
    return dict(_probe_json(path).get("format", {}).get("tags", {}))
