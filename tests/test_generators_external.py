"""External adapters against stand-in programs that honour each tool's CLI contract.

The stand-ins parse the same arguments as the real tools, write outputs of
the right kind with ffmpeg (and the tools' fixed scratch files), and fail in
controlled ways when STANDIN_MODE asks: crash, sleep (timeout), short output.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from generators.external.base import ExternalToolError
from generators.external.tools import (
    Audio2HeadExternal,
    MakeItTalkExternal,
    VideoReTalkingExternal,
    Wav2LipExternal,
)
from generators.synthetic import make_talking_clip, speech_like
from pipeline.errors import ConfigError
from pipeline.media import probe, read_tags, write_mp4

STANDIN = r'''
import argparse, json, os, subprocess, sys, time
from pathlib import Path
p = argparse.ArgumentParser()
for flag in ("--checkpoint_path", "--face", "--audio", "--outfile", "--tmp_dir", "--audio_path", "--img_path",
             "--save_path", "--model_path", "--jpg", "--amp_lip_x", "--amp_lip_y", "--amp_pos", "--resize_factor"):
    p.add_argument(flag)
p.add_argument("--pads", nargs=4)
p.add_argument("--nosmooth", action="store_true")
p.add_argument("--re_preprocess", action="store_true")
a = p.parse_args()
Path("argv.json").write_text(json.dumps(sys.argv))
mode = os.environ.get("STANDIN_MODE", "ok")
if mode == "crash":
    print("Traceback (most recent call last):", file=sys.stderr)
    print("ValueError: Face not detected! Ensure the video contains a face in all the frames.", file=sys.stderr)
    sys.exit(1)
if mode == "sleep":
    print("loading checkpoints...", file=sys.stderr, flush=True)
    time.sleep(60)
ff = ["ffmpeg", "-nostdin", "-loglevel", "error", "-y"]
def dur_of(wav):
    import wave
    with wave.open(str(wav)) as w:
        seconds = w.getnframes() / w.getframerate()
    return ["-t", "0.4" if mode == "short" else f"{seconds:.3f}"]
script = Path(sys.argv[0]).name
if script == "main_end2end.py":          # MakeItTalk: every examples/*.wav, 62.5 fps, 3-panel composite
    wavs = sorted(Path("examples").glob("*.wav"))
    assert len(wavs) == 1, f"expected one wav, got {wavs}"
    for w in wavs:
        out = Path("examples") / f"{Path(a.jpg).stem}_pred_fls_{w.stem}_audio_embed.mp4"
        subprocess.run(ff + ["-loop", "1", "-framerate", "62.5", "-i", f"examples/{a.jpg}", "-i", str(w),
                             "-filter_complex", "[0:v]scale=256:256,split=3[a][b][c];[a][b][c]hstack=3[v]",
                             "-map", "[v]", "-map", "1:a", *dur_of(w), "-r", "62.5", "-pix_fmt", "yuv420p", str(out)],
                       check=True)
        w.write_bytes(b"overwritten")  # the real tool overwrites its inputs
    sys.exit(0)
if a.img_path:                          # Audio2Head
    Path("results").mkdir(exist_ok=True)
    Path("results/temp.wav").write_bytes(b"fixed scratch file")
    out = Path(a.save_path) / f"{Path(a.img_path).stem}_{Path(a.audio_path).stem}.mp4"
    subprocess.run(ff + ["-loop", "1", "-framerate", "25", "-i", a.img_path, "-i", a.audio_path, "-map", "0:v",
                         "-map", "1:a", *dur_of(a.audio_path), "-pix_fmt", "yuv420p", str(out)], check=True)
    sys.exit(0)
# Wav2Lip / VideoReTalking: loop the face video under the audio, 30 fps (normalised to 25 by the adapter).
Path("temp").mkdir(exist_ok=True)
Path("temp/result.avi").write_bytes(b"fixed scratch file")
subprocess.run(ff + ["-stream_loop", "-1", "-i", a.face, "-i", a.audio, "-map", "0:v", "-map", "1:a", *dur_of(a.audio),
                     "-r", "30", "-pix_fmt", "yuv420p", "-ar", "44100", "-ac", "2", a.outfile], check=True)
'''

TOOLS = {
    Wav2LipExternal: ("inference.py", ["face_detection/detection/sfd/s3fd.pth", "checkpoints/wav2lip_gan.pth"]),
    VideoReTalkingExternal: ("inference.py", ["checkpoints/DNet.pt", "checkpoints/LNet.pth", "checkpoints/ENet.pth"]),
    Audio2HeadExternal: ("inference.py", ["checkpoints/audio2head.pth.tar"]),
    MakeItTalkExternal: ("main_end2end.py", ["examples/ckpt/ckpt_autovc.pth", "examples/ckpt/ckpt_content_branch.pth",
                                             "examples/ckpt/ckpt_speaker_branch.pth",
                                             "examples/ckpt/ckpt_116_i2i_comb.pth"]),
}


def make_checkout(root: Path, cls) -> Path:
    script, files = TOOLS[cls]
    root.mkdir(parents=True)
    (root / script).write_text(STANDIN)
    for f in files:
        (root / f).parent.mkdir(parents=True, exist_ok=True)
        (root / f).write_bytes(b"weights")
    if cls is MakeItTalkExternal:
        (root / "examples" / "someone_elses.wav").write_bytes(b"RIFF")  # must not reach the tool
    return root


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("external_media")
    target = make_talking_clip(d / "00001.mp4", seconds=1.0, size=144, seed=3)
    audio = speech_like(1.4, seed=5)
    driving = write_mp4(d / "driving.mp4", np.zeros((35, 16, 16, 3), np.uint8), audio)
    return {"target": target, "driving": driving}


@pytest.mark.parametrize("cls", list(TOOLS), ids=lambda c: c.name)
def test_adapter_runs_tool_isolated_and_normalises(cls, tmp_path, media):
    checkout = make_checkout(tmp_path / "checkout", cls)
    before = sorted(p.relative_to(checkout) for p in checkout.rglob("*"))
    gen = cls(checkout=checkout)
    work = tmp_path / "task1"
    out = gen(media["target"], media["driving"], work, source_keys=["t/a", "t/b"])
    info = probe(out)
    assert info.video.fps == 25 and info.audio.sample_rate == 16000 and info.audio.channels == 1
    assert abs(info.duration_s - 1.4) <= 0.04 + 1e-6
    tags = read_tags(out)
    assert tags["avdf_synthetic"] == "1" and tags["avdf_generator"] == f"{cls.name}@external"
    assert tags["avdf_source_keys"] == "t/a,t/b"
    if cls is MakeItTalkExternal:
        assert (info.video.width, info.video.height) == (256, 256)  # centre panel of the composite
    # The tool ran in a private mirror; the checkout itself is untouched.
    argv = json.loads((work / "run" / "argv.json").read_text())
    assert sorted(p.relative_to(checkout) for p in checkout.rglob("*")) == before
    if cls is Wav2LipExternal:
        assert argv[1:3] == ["--checkpoint_path", str(checkout / "checkpoints/wav2lip_gan.pth")]
        assert argv[argv.index("--face") + 1] == str(media["target"])
        assert (work / "run" / "temp" / "result.avi").exists() and not (work / "run" / "temp").is_symlink()
    if cls is VideoReTalkingExternal:
        face = Path(argv[argv.index("--face") + 1])
        assert face.name != media["target"].name and face.name.endswith("00001.mp4")  # unique basename
        assert argv[argv.index("--tmp_dir") + 1] == str(work / "run" / "temp")
    if cls is Audio2HeadExternal:
        assert (work / "run" / "results" / "temp.wav").exists()
        assert argv[argv.index("--model_path") + 1].endswith("audio2head.pth.tar")
    if cls is MakeItTalkExternal:
        assert argv[1:3] == ["--jpg", "face.jpg"] and "--amp_lip_x" in argv
        assert (checkout / "examples" / "someone_elses.wav").read_bytes() == b"RIFF"


def test_missing_checkout_or_checkpoint_fails_before_work(tmp_path):
    with pytest.raises(ConfigError, match="checkout"):
        Wav2LipExternal(checkout=None)
    with pytest.raises(ConfigError, match="does not exist"):
        Wav2LipExternal(checkout=tmp_path / "nowhere")
    checkout = make_checkout(tmp_path / "w2l", Wav2LipExternal)
    (checkout / "checkpoints" / "wav2lip_gan.pth").unlink()
    with pytest.raises(ConfigError, match="wav2lip_gan.pth"):
        Wav2LipExternal(checkout=checkout)
    (checkout / "face_detection/detection/sfd/s3fd.pth").unlink()
    with pytest.raises(ConfigError, match="s3fd.pth"):
        Wav2LipExternal(checkout=checkout, checkpoint=checkout / "inference.py")


@pytest.mark.parametrize("mode,match", [("crash", "Face not detected"), ("sleep", "timed out"),
                                        ("short", "lasts 0.4")])
def test_tool_failures_carry_stderr(mode, match, tmp_path, media, monkeypatch):
    checkout = make_checkout(tmp_path / "w2l", Wav2LipExternal)
    gen = Wav2LipExternal(checkout=checkout, timeout_s=2)
    monkeypatch.setenv("STANDIN_MODE", mode)
    with pytest.raises(ExternalToolError, match=match) as err:
        gen(media["target"], media["driving"], tmp_path / "task")
    if mode == "sleep":
        assert "loading checkpoints" in str(err.value)  # the tool's own stderr tail
    if mode == "crash":
        assert "exited with code 1" in str(err.value)
