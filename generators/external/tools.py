"""The four external generators' CLIs and traps (see DESIGN.md, "External adapters")."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from generators.external.base import ExternalTool, ExternalToolError


class Wav2LipExternal(ExternalTool):
    """``python inference.py --checkpoint_path C --face V --audio A --outfile O [extra]``.

    Trap: writes fixed ``temp/`` files (result.avi, temp.wav) -> private ``temp/``.
    Aborts when a frame has no face (its stderr says so; it becomes the failure message).
    """

    name = "wav2lip-external"
    kind = "lipsync"
    lip_sync = True
    required = ("face_detection/detection/sfd/s3fd.pth",)
    writable = ("temp", "results")
    checkpoint_default = "checkpoints/wav2lip_gan.pth"

    def command(self, run, target_video, driving_audio, out_dir):
        out = out_dir / "result.mp4"
        argv = [self.python, self.script, "--checkpoint_path", str(self.checkpoint), "--face", str(target_video),
                "--audio", str(driving_audio), "--outfile", str(out), *self.extra_args]
        return argv, out


class VideoReTalkingExternal(ExternalTool):
    """``python3 inference.py --face V --audio A --outfile O --tmp_dir D [--re_preprocess]``.

    Trap: caches preprocessing by the video's basename (VoxCeleb2's 00001.mp4
    collide) -> the video is linked under a per-task unique name, and the
    cache folder (``--tmp_dir``) is private.
    """

    name = "videoretalking-external"
    kind = "lipsync"
    lip_sync = True
    required = ("checkpoints/DNet.pt", "checkpoints/LNet.pth", "checkpoints/ENet.pth")
    writable = ("temp", "results")
    checkpoint_default = None

    def command(self, run, target_video, driving_audio, out_dir):
        unique = out_dir / f"{out_dir.parent.name}_{target_video.stem}{target_video.suffix}"
        if not unique.exists():
            unique.symlink_to(target_video)
        out = out_dir / "result.mp4"
        argv = [self.python, self.script, "--face", str(unique), "--audio", str(driving_audio), "--outfile", str(out),
                "--tmp_dir", str(run / "temp"), *self.extra_args]
        return argv, out


class Audio2HeadExternal(ExternalTool):
    """``python inference.py --audio_path A --img_path I --save_path D --model_path C``.

    Needs ONE square 256 px face image: made here from the target's first face
    frame (the same crop as the built-in). Trap: writes ``results/temp.wav`` -> private.
    """

    name = "audio2head-external"
    kind = "talking_head"
    lip_sync = False
    writable = ("results", "temp")
    checkpoint_default = "checkpoints/audio2head.pth.tar"

    def command(self, run, target_video, driving_audio, out_dir):
        import cv2

        from generators.builtin.talking_head import first_face_frame, square_face_crop
        from generators.face_geometry import shared_face_backend

        frame, lm = first_face_frame(Path(target_video), shared_face_backend(self.face_backend_name))
        crop, _ = square_face_crop(frame, lm, 256)
        img = out_dir / "face.jpg"
        cv2.imwrite(str(img), cv2.cvtColor(crop, cv2.COLOR_RGB2BGR))
        argv = [self.python, self.script, "--audio_path", str(driving_audio), "--img_path", str(img),
                "--save_path", str(out_dir), "--model_path", str(self.checkpoint), *self.extra_args]
        return argv, out_dir

    def find_output(self, expected: Path) -> Path:
        videos = sorted(expected.glob("*.mp4"), key=lambda p: p.stat().st_mtime)
        if not videos:
            raise ExternalToolError(f"no .mp4 written under {expected}")
        return videos[-1]


class MakeItTalkExternal(ExternalTool):
    """``python main_end2end.py --jpg I [--amp_lip_x 2 --amp_lip_y 2 --amp_pos .5]``.

    Traps: reads EVERY ``examples/*.wav`` and overwrites them -> a private
    ``examples/`` holding only this task's wav (other entries, e.g. ``ckpt/``,
    are linked); renders at 62.5 fps -> resampled to 25; writes a
    [input | output | landmarks] composite -> the centre panel is kept.
    """

    name = "makeittalk-external"
    kind = "talking_head"
    lip_sync = False
    script = "main_end2end.py"
    writable = ("examples",)
    required = ("examples/ckpt/ckpt_autovc.pth", "examples/ckpt/ckpt_content_branch.pth",
                "examples/ckpt/ckpt_speaker_branch.pth", "examples/ckpt/ckpt_116_i2i_comb.pth")
    checkpoint_default = None

    def populate_writable(self, original: Path, private: Path) -> None:
        if not original.is_dir():
            return
        for entry in original.iterdir():
            if entry.suffix.lower() in (".wav", ".mp4"):
                continue
            (private / entry.name).symlink_to(entry, target_is_directory=entry.is_dir())

    def command(self, run, target_video, driving_audio, out_dir):
        import cv2
        import shutil

        from generators.builtin.talking_head import first_face_frame, square_face_crop
        from generators.face_geometry import shared_face_backend

        frame, lm = first_face_frame(Path(target_video), shared_face_backend(self.face_backend_name))
        crop, _ = square_face_crop(frame, lm, 256)
        examples = run / "examples"
        cv2.imwrite(str(examples / "face.jpg"), cv2.cvtColor(crop, cv2.COLOR_RGB2BGR))
        shutil.copy(driving_audio, examples / "speech.wav")
        argv = [self.python, self.script, "--jpg", "face.jpg", *(self.extra_args or
                ["--amp_lip_x", "2", "--amp_lip_y", "2", "--amp_pos", ".5"])]
        return argv, examples

    def find_output(self, expected: Path) -> Path:
        videos = [p for p in expected.glob("*.mp4") if not p.is_symlink()]
        if not videos:
            raise ExternalToolError(f"no .mp4 written under {expected}")
        return max(videos, key=lambda p: p.stat().st_mtime)

    def crop_output(self, frames: np.ndarray) -> np.ndarray:
        h, w = frames.shape[1:3]
        if w == 3 * h:
            return frames[:, :, h : 2 * h]
        return frames
