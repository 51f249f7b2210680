"""insightface backend: SCRFD detection + the ``1k3d68`` 68-point landmarks from a LOCAL model pack.

insightface's own loader downloads a missing pack from the internet; this
backend never lets it: it resolves the pack folder itself and refuses to start
when the folder is absent, saying where to put it.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from pipeline.errors import ConfigError
from pipeline.faces.base import Face, FaceBackend, check_frame

ROOT_ENV = "AVDF_INSIGHTFACE_ROOT"


def default_root() -> Path:
    """``$AVDF_INSIGHTFACE_ROOT``, else insightface's own convention ``~/.insightface``."""
    return Path(os.environ.get(ROOT_ENV) or "~/.insightface").expanduser()


def resolve_pack(pack: str, root: str | Path | None = None) -> Path:
    """The folder of model pack ``pack`` (a folder path, or a name under ``ROOT/models/``)."""
    direct = Path(pack).expanduser()
    folder = direct if direct.is_dir() else (Path(root).expanduser() if root else default_root()) / "models" / pack
    if not folder.is_dir() or not any(folder.glob("*.onnx")):
        raise ConfigError(
            f"insightface model pack {pack!r} not found: expected its .onnx files in {folder}. "
            f"avdf never downloads models; unpack the pack (e.g. buffalo_l.zip) there, pass "
            f"face_backend_options: {{root: DIR}} with DIR/models/{pack}/, set {ROOT_ENV}, "
            "or pass the pack folder itself as 'pack'"
        )
    return folder


class InsightfaceBackend(FaceBackend):
    """Options: ``pack`` (name or folder, default buffalo_l), ``root`` (folder holding
    ``models/<pack>/``), ``det_size`` (detector input side), ``min_confidence``."""

    name = "insightface"

    def __init__(
        self,
        pack: str = "buffalo_l",
        root: str | Path | None = None,
        det_size: int = 640,
        min_confidence: float = 0.5,
    ) -> None:
        folder = resolve_pack(pack, root)  # before importing insightface: fail fast and offline
        if not any(folder.glob("1k3d68*.onnx")):
            raise ConfigError(
                f"insightface model pack {folder} has no 68-point landmark model (1k3d68.onnx); "
                "use a pack that has one, such as buffalo_l"
            )
        from insightface.app import FaceAnalysis

        # A folder whose models/<name> exists never triggers insightface's download.
        self._app = FaceAnalysis(
            name=folder.name,
            root=str(folder.parent.parent),
            allowed_modules=["detection", "landmark_3d_68"],
            providers=["CPUExecutionProvider"],
        )
        self._app.prepare(ctx_id=-1, det_thresh=min_confidence, det_size=(det_size, det_size))
        self.pack = str(folder)
        self.det_size = det_size
        self.min_confidence = min_confidence

    def describe(self) -> dict[str, object]:
        return {"name": self.name, "pack": Path(self.pack).name, "det_size": self.det_size,
                "min_confidence": self.min_confidence}

    def detect(self, frame_rgb: np.ndarray) -> list[Face]:
        frame = check_frame(frame_rgb)
        bgr = np.ascontiguousarray(frame[:, :, ::-1])  # insightface models expect OpenCV's BGR
        faces = []
        for f in self._app.get(bgr):
            lm = getattr(f, "landmark_3d_68", None)
            if lm is None:
                continue
            faces.append(
                Face(box=np.asarray(f.bbox), score=float(f.det_score), landmarks=np.asarray(lm)[:, :2],
                     native_landmarks=None if f.kps is None else np.asarray(f.kps, np.float32))
            )
        return faces
