"""Procedural talking heads: one identity's face, drawn once, animated per frame.

The static parts (background, body, the shaded head with hair, eyes, brows and
nose) are drawn once per identity and session at twice the output size and
downsampled, which anti-aliases every edge. Per frame only what moves is
redrawn: the mouth (from a viseme) and, during blinks, the upper eyelids, on
small regions; the head layer is then warped by a homography (yaw, pitch,
roll, translation, scale) and composited over the backdrop with
premultiplied alpha.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from pipeline.studio.plan import FaceStyle, SessionLook

SIZE = 224  # output frames are SIZE x SIZE
SS = 2  # supersampling factor of the static drawing
_FOCAL = 4.0 * SIZE  # focal length (px) of the head-pose homography: small perspective
_MAX_PATCHES = 2048  # redrawn regions a renderer keeps (~10 KB each)
_AA = cv2.LINE_AA


def _soft_mask(shape: tuple[int, int], draw, blur: float = 0.0) -> np.ndarray:
    """A float mask in [0, 1] from a drawing callback on a uint8 canvas."""
    m = np.zeros(shape, np.uint8)
    draw(m)
    out = m.astype(np.float32) / 255
    if blur > 0:
        out = cv2.GaussianBlur(out, (0, 0), blur)
    return out


def _paint(rgb: np.ndarray, mask: np.ndarray, colour) -> None:
    """Blend ``colour`` over ``rgb`` by ``mask``, in place.

    Only the mask's bounding box is touched: most masks (an eye, a nostril) cover a
    sliver of the canvas, and where the mask is 0 the blend ``x * 1 + 0`` keeps every
    value (at most it turns a -0.0 into 0.0, which no later step can tell apart).
    """
    x, y, w, h = cv2.boundingRect((mask != 0).view(np.uint8))
    if w == 0 or h == 0:
        return
    m = mask[y: y + h, x: x + w, None]
    region = rgb[y: y + h, x: x + w]
    region *= 1 - m
    region += m * np.asarray(colour, np.float32)


def _poly(points: np.ndarray) -> list[np.ndarray]:
    return [np.round(points * 16).astype(np.int32)]  # 4 fractional bits for sub-pixel drawing


def _fill(m: np.ndarray, points: np.ndarray) -> None:
    cv2.fillPoly(m, _poly(points), 255, _AA, 4)


def _line(m: np.ndarray, points: np.ndarray, thickness: float, value: int = 255) -> None:
    cv2.polylines(m, _poly(points), False, value, max(1, int(round(thickness))), _AA, 4)


def _noise(rng: np.random.Generator, shape: tuple[int, int], sigma: float) -> np.ndarray:
    n = cv2.GaussianBlur(rng.standard_normal(shape).astype(np.float32), (0, 0), sigma)
    return n / (n.std() + 1e-6)


def over(rgba: np.ndarray, backdrop: np.ndarray) -> np.ndarray:
    """Premultiplied ``rgba`` (uint8) over an RGB ``backdrop``: rgb + round(backdrop * (255 - alpha) / 255),
    saturated at 255.

    OpenCV's 8-bit multiply rounds to nearest, and a product of two bytes divided by 255 is
    never within float error of a half, so this is the exact integer rounding (the tests check
    every input). OpenCV works on whole channels: numpy on strided views of a 4-channel image
    costs ~10x more per frame.
    """
    behind = cv2.multiply(backdrop, cv2.merge([cv2.bitwise_not(cv2.extractChannel(rgba, 3))] * 3), scale=1 / 255)
    return cv2.add(cv2.cvtColor(rgba, cv2.COLOR_RGBA2RGB), behind)


@dataclass
class Geometry:
    """Where the features sit, in supersampled pixels."""

    cx: float
    cy: float
    rx: float
    ry: float
    jaw: float

    def contour(self, n: int = 240) -> np.ndarray:
        th = np.linspace(0, 2 * np.pi, n, endpoint=False)
        taper = 1 - self.jaw * np.clip(np.sin(th), 0, None) ** 2
        return np.stack([self.cx + self.rx * np.cos(th) * taper, self.cy + self.ry * np.sin(th)], 1)

    @property
    def eye_y(self) -> float:
        return self.cy - 0.12 * self.ry

    @property
    def mouth_y(self) -> float:
        return self.cy + 0.56 * self.ry

    @property
    def nose_tip_y(self) -> float:
        return self.cy + 0.3 * self.ry


class FaceRenderer:
    """Render frames of one identity in one session."""

    def __init__(self, style: FaceStyle, look: SessionLook, seed: int) -> None:
        self.style = style
        self.look = look
        rng = np.random.default_rng(seed)
        s = SS
        rx = style.face_width * look.scale * s
        self.g = Geometry(
            cx=(SIZE / 2 + look.offset[0]) * s,
            cy=(SIZE * 0.44 + look.offset[1]) * s,
            rx=rx,
            ry=rx * style.face_aspect,
            jaw=style.jaw,
        )
        light = np.array([look.light[0], look.light[1], 0.9])
        self.light = light / np.linalg.norm(light)
        self.tint = np.array([1 + look.warmth, 1.0, 1 - look.warmth], np.float32)
        big = (SIZE * s, SIZE * s)
        self.backdrop = self._backdrop(rng, big)
        head, alpha, skin = self._head(rng, big)
        self.skin2x = skin  # the face without eyes: the eyelids are cut from it
        self.head2x = head
        self.alpha2x = alpha
        # Premultiplied 1x head layer (uint8 RGBA) is what each frame starts from.
        self.head_rgba = self._premultiplied(head, alpha)
        self._eyes = [self._eye_geometry(side) for side in (-1, 1)]
        self.mouth_box = self._box(self.g.cx, self.g.mouth_y + 0.04 * self.g.ry, 0.62 * self.g.rx, 0.3 * self.g.ry)
        self.eye_boxes = [self._box(e["x"], e["y"], e["w"] * 1.35, e["h"] * 2.2) for e in self._eyes]
        # Redrawn regions, downsampled, per mouth shape / lid closure: a clip repeats some exactly
        # (the closed rest mouth of its leading and trailing silence, the steps of every blink).
        self._patches: dict[tuple, np.ndarray] = {}
        cx, cy = self.g.cx / SS, self.g.cy / SS
        self._k_in_inv = np.linalg.inv(np.array([[_FOCAL, 0, cx], [0, _FOCAL, cy], [0, 0, 1]]))

    # ------------------------------------------------------------ static layers

    def _box(self, x: float, y: float, hw: float, hh: float) -> tuple[int, int, int, int]:
        """A region (x0, y0, x1, y1) aligned to the supersampling grid, in 2x pixels."""
        s = SS
        x0, y0 = int(max(0, (x - hw) // s * s)), int(max(0, (y - hh) // s * s))
        x1 = int(min(SIZE * s, -(-(x + hw) // s) * s))
        y1 = int(min(SIZE * s, -(-(y + hh) // s) * s))
        return x0, y0, x1, y1

    def _premultiplied(self, rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
        small_rgb = cv2.resize(rgb * alpha[..., None], (SIZE, SIZE), interpolation=cv2.INTER_AREA)
        small_a = cv2.resize(alpha, (SIZE, SIZE), interpolation=cv2.INTER_AREA)
        return np.dstack([small_rgb, small_a * 255]).clip(0, 255).round().astype(np.uint8)

    def _backdrop(self, rng: np.random.Generator, big: tuple[int, int]) -> np.ndarray:
        h, w = big
        c0, c1 = (np.array(c, np.float32) for c in self.look.background)
        y = np.linspace(0, 1, h, dtype=np.float32)[:, None, None]
        bg = c0 * (1 - y) + c1 * y + np.zeros((h, w, 3), np.float32)
        # A room out of focus: a few soft panels (shelves, windows, doors) and texture.
        for _ in range(int(rng.integers(3, 7))):
            x0, y0 = rng.integers(0, w, 2)
            pw, ph = rng.integers(w // 10, w // 3, 2)
            col = np.clip(c0 * rng.uniform(0.6, 1.4) + rng.normal(0, 20, 3), 0, 255)
            m = _soft_mask((h, w), lambda m: cv2.rectangle(m, (int(x0), int(y0)), (int(x0 + pw), int(y0 + ph)), 255, -1))
            _paint(bg, m * rng.uniform(0.4, 0.8), col)
        bg *= (1 + 0.06 * _noise(rng, (h, w), 6))[..., None]
        bg = cv2.GaussianBlur(bg, (0, 0), 7 * SS)
        # Vignette: the light falls off towards the frame's corners.
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        r2 = ((xx - w / 2) ** 2 + (yy - h / 2) ** 2) / (w * w / 2)
        bg *= (1 - 0.25 * r2)[..., None]
        self._body(rng, bg)
        bg *= self.tint
        return cv2.resize(bg, (SIZE, SIZE), interpolation=cv2.INTER_AREA).clip(0, 255).round().astype(np.uint8)

    def _body(self, rng: np.random.Generator, rgb: np.ndarray) -> None:
        """Neck and clothed shoulders: static, behind the moving head."""
        g, st = self.g, self.style
        h, w = rgb.shape[:2]
        skin = np.array(st.skin, np.float32)
        neck_w = 0.5 * g.rx
        top = g.cy + 0.2 * g.ry
        neck = _soft_mask((h, w), lambda m: cv2.rectangle(m, (int(g.cx - neck_w), int(top)), (int(g.cx + neck_w), h), 255, -1), 1.5)
        yy = np.linspace(0, 1, h, dtype=np.float32)[:, None]
        shade = 0.62 + 0.25 * np.clip((yy * h - g.cy - g.ry) / (0.4 * g.ry), 0, 1)  # chin shadow above
        xx = (np.arange(w, dtype=np.float32)[None, :] - g.cx) / neck_w
        shade = shade * (1 - 0.15 * np.clip(xx * -self.light[0], 0, 1) ** 2) * (1 - 0.1 * xx**2)
        _paint(rgb, neck, 0)
        rgb += neck[..., None] * skin * shade[..., None]
        # Shoulders: a rounded trapezoid from under the jaw to the frame edges.
        sh_y = g.cy + 1.15 * g.ry
        pts = np.array([
            [g.cx - 0.75 * g.rx, sh_y], [g.cx - 1.9 * g.rx, sh_y + 0.25 * g.ry], [g.cx - 2.6 * g.rx, h],
            [g.cx + 2.6 * g.rx, h], [g.cx + 1.9 * g.rx, sh_y + 0.25 * g.ry], [g.cx + 0.75 * g.rx, sh_y],
        ])
        shoulders = _soft_mask((h, w), lambda m: _fill(m, pts), 3)
        # The neckline shows skin: a V or a round cut.
        if rng.random() < 0.5:
            cut = np.array([[g.cx - 0.55 * g.rx, sh_y - 2], [g.cx, sh_y + 0.45 * g.ry], [g.cx + 0.55 * g.rx, sh_y - 2]])
        else:
            cut = np.array([[g.cx + 0.55 * g.rx * np.cos(a), sh_y - 2 + 0.25 * g.ry * np.sin(a)] for a in np.linspace(0, np.pi, 20)])
        shoulders *= 1 - _soft_mask((h, w), lambda m: _fill(m, cut), 1.5)
        cloth = np.array(st.clothes, np.float32)
        folds = 1 + 0.08 * _noise(rng, (h, w), 10 * SS)
        cshade = (0.8 + 0.2 * np.clip((np.arange(w)[None, :] - g.cx) / w * -self.light[0] * 4 + 0.5, 0, 1)) * folds
        _paint(rgb, shoulders, 0)
        rgb += shoulders[..., None] * cloth * cshade[..., None]

    def _shading(self, mask_shape: tuple[int, int]) -> np.ndarray:
        """Lambert shading of the head as an ellipsoid lit from the session's light."""
        g = self.g
        h, w = mask_shape
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        v = (yy - g.cy) / g.ry
        u = (xx - g.cx) / (g.rx * (1 - g.jaw * np.clip(v, 0, None) ** 2))
        rho2 = np.clip(u * u + v * v, 0, 1)
        nz = np.sqrt(1 - rho2) + 0.35  # flattened: a face is flatter than a sphere
        norm = np.sqrt(u * u + v * v * 0.6 + nz * nz)
        lam = (u * self.light[0] + v * 0.77 * self.light[1] + nz * self.light[2]) / norm
        s = self.look.light_strength
        return (1 - s) + s * np.clip(lam, 0, 1) * 1.1 - 0.12 * rho2**3

    def _head(self, rng: np.random.Generator, big: tuple[int, int]):
        g, st = self.g, self.style
        h, w = big
        rgb = np.zeros((h, w, 3), np.float32)
        alpha = np.zeros((h, w), np.float32)
        skin = np.array(st.skin, np.float32)
        hair = np.array(st.hair, np.float32)
        hair_tex = 1 + 0.18 * cv2.blur(rng.standard_normal((h, w)).astype(np.float32), (1, 9)) * 2.5
        if st.hair_style == "curly":
            hair_tex = 1 + 0.2 * _noise(rng, (h, w), 1.2)

        def layer(mask: np.ndarray, colour: np.ndarray) -> None:
            _paint(rgb, mask, colour if colour.ndim == 1 else 0)
            if colour.ndim > 1:
                rgb[:] += mask[..., None] * colour
            np.maximum(alpha, mask, out=alpha)

        # Hair behind the head: long styles fall to the shoulders.
        back_len = {"long": 1.45, "bob": 0.75, "curly": 0.25, "short": 0.05}[st.hair_style]
        back = _soft_mask(big, lambda m: (
            cv2.ellipse(m, (int(g.cx), int(g.cy - 0.15 * g.ry)), (int(1.14 * g.rx), int(1.02 * g.ry)), 0, 180, 360, 255, -1, _AA),
            cv2.rectangle(m, (int(g.cx - 1.14 * g.rx), int(g.cy - 0.16 * g.ry)), (int(g.cx + 1.14 * g.rx), int(g.cy + (back_len - 0.15) * g.ry)), 255, -1),
            cv2.ellipse(m, (int(g.cx), int(g.cy + (back_len - 0.15) * g.ry)), (int(1.14 * g.rx), int(0.15 * g.ry)), 0, 0, 180, 255, -1, _AA),
        ), 2.0)
        if st.hair_style in ("short",):
            back *= 0
        layer(back, (hair * 0.7 * hair_tex[..., None]))
        # Ears.
        for side in (-1, 1):
            ex, ey = g.cx + side * 0.97 * g.rx, g.eye_y + 0.18 * g.ry
            ear = _soft_mask(big, lambda m: cv2.ellipse(m, (int(ex), int(ey)), (int(0.15 * g.rx), int(0.28 * g.ry)), side * 8, 0, 360, 255, -1, _AA), 1.0)
            inner = _soft_mask(big, lambda m: cv2.ellipse(m, (int(ex + side * 0.02 * g.rx), int(ey)), (int(0.07 * g.rx), int(0.17 * g.ry)), side * 8, 0, 360, 255, -1, _AA), 2.0)
            layer(ear, skin * 0.8)
            rgb[:] *= (1 - 0.3 * inner)[..., None]
        # The face: shaded skin with a little blotchiness and warmth on the cheeks.
        face = _soft_mask(big, lambda m: _fill(m, g.contour()), 1.0)
        shade = self._shading(big)
        shade *= 1 + 0.025 * _noise(rng, big, 4 * SS)
        mult = np.ones(big, np.float32)
        self._nose_and_sockets(mult)
        colour = skin * (shade * mult)[..., None]
        for side in (-1, 1):
            cheek = _soft_mask(big, lambda m: cv2.ellipse(m, (int(g.cx + side * 0.5 * g.rx), int(g.cy + 0.22 * g.ry)), (int(0.22 * g.rx), int(0.15 * g.ry)), 0, 0, 360, 255, -1), 6 * SS)
            colour += cheek[..., None] * np.array([14, -4, -4], np.float32)
        layer(face, colour)
        self._nostrils(rgb)
        # Hair on top: a cap down to a hairline that dips at the temples.
        hairline = g.cy - (0.6 if st.female else 0.64) * g.ry
        cap_pts = []
        for a in np.linspace(np.pi, 2 * np.pi, 60):
            cap_pts.append([g.cx + 1.07 * g.rx * np.cos(a), g.cy - 0.12 * g.ry + 1.0 * g.ry * np.sin(a) * 1.02])
        side_drop = {"long": 0.55, "bob": 0.45, "curly": -0.05, "short": -0.1}[st.hair_style]
        cap_pts.append([g.cx + 1.07 * g.rx, g.cy + side_drop * g.ry])
        cap_pts.append([g.cx + 0.9 * g.rx, g.cy + side_drop * g.ry])
        for x in np.linspace(0.9, -0.9, 40):
            bump = 0.18 * abs(x) ** 2
            part = 0.06 * np.sin(x * 4 + (1 if st.female else 0))
            y = hairline + (bump + part) * g.ry
            if abs(x) > 0.75:
                y = min(g.cy + side_drop * g.ry, y + (abs(x) - 0.75) / 0.15 * max(0.0, side_drop + 0.3) * g.ry)
            cap_pts.append([g.cx + x * g.rx, y])
        cap_pts.append([g.cx - 0.9 * g.rx, g.cy + side_drop * g.ry])
        cap_pts.append([g.cx - 1.07 * g.rx, g.cy + side_drop * g.ry])
        cap = _soft_mask(big, lambda m: _fill(m, np.array(cap_pts)), 1.5 if st.hair_style != "curly" else 3.0)
        hshade = 0.75 + 0.45 * np.clip(shade - 0.5, 0, 1)
        layer(cap, hair * (hshade * hair_tex)[..., None])
        skin_only = rgb.copy()
        # Eye sockets and eyes, brows: after the skin-only copy so blinks can cover the eyes.
        for side in (-1, 1):
            self._draw_eye(rgb, side)
            self._draw_brow(rgb, side, rng)
        return rgb, alpha, skin_only

    def _nose_and_sockets(self, mult: np.ndarray) -> None:
        g, st = self.g, self.style
        big = mult.shape
        lx = self.light[0]
        nw = 0.13 * g.rx * st.nose_width
        top, tip = g.eye_y + 0.05 * g.ry, g.nose_tip_y
        # Shadow on the side of the nose away from the light, highlight on the ridge.
        far = -np.sign(lx) if abs(lx) > 0.05 else 1.0
        shadow = _soft_mask(big, lambda m: _line(m, np.array([[g.cx + far * nw * 0.7, top], [g.cx + far * nw * 1.0, tip - 0.03 * g.ry]]), 0.06 * g.rx), 2.5 * SS)
        ridge = _soft_mask(big, lambda m: _line(m, np.array([[g.cx - far * 0.15 * nw, top + 0.05 * g.ry], [g.cx - far * 0.2 * nw, tip - 0.06 * g.ry]]), 0.035 * g.rx), 1.5 * SS)
        under = _soft_mask(big, lambda m: cv2.ellipse(m, (int(g.cx), int(tip + 0.045 * g.ry)), (int(nw * 1.3), int(0.035 * g.ry)), 0, 0, 360, 255, -1), 1.5 * SS)
        wings = _soft_mask(big, lambda m: [cv2.ellipse(m, (int(g.cx + sd * nw * 1.05), int(tip - 0.01 * g.ry)), (int(nw * 0.45), int(0.06 * g.ry)), 0, 0, 360, 255, max(1, int(0.02 * g.rx)), _AA) for sd in (-1, 1)], 1.2 * SS)
        tipl = _soft_mask(big, lambda m: cv2.ellipse(m, (int(g.cx), int(tip - 0.03 * g.ry)), (int(nw * 0.7), int(0.05 * g.ry)), 0, 0, 360, 255, -1), 2 * SS)
        sockets = _soft_mask(big, lambda m: [cv2.ellipse(m, (int(g.cx + sd * 0.4 * g.rx * st.eye_spacing), int(g.eye_y - 0.04 * g.ry)), (int(0.3 * g.rx), int(0.15 * g.ry)), 0, 0, 360, 255, -1) for sd in (-1, 1)], 4 * SS)
        folds = _soft_mask(big, lambda m: [_line(m, np.array([[g.cx + sd * (nw * 1.6 + 0.02 * g.rx), tip - 0.02 * g.ry], [g.cx + sd * 0.36 * g.rx, g.mouth_y + 0.02 * g.ry]]), 0.025 * g.rx) for sd in (-1, 1)], 2 * SS)
        chin = _soft_mask(big, lambda m: cv2.ellipse(m, (int(g.cx), int(g.mouth_y + 0.2 * g.ry)), (int(0.2 * g.rx), int(0.05 * g.ry)), 0, 0, 360, 255, -1), 3 * SS)
        mult *= 1 - 0.16 * shadow
        mult *= 1 + 0.08 * ridge + 0.05 * tipl
        mult *= 1 - 0.3 * under - 0.18 * wings - 0.1 * sockets - 0.06 * folds - 0.08 * chin

    def _nostrils(self, rgb: np.ndarray) -> None:
        g, st = self.g, self.style
        nw = 0.13 * g.rx * st.nose_width
        tip = g.nose_tip_y
        m = _soft_mask(rgb.shape[:2], lambda m: [cv2.ellipse(m, (int(g.cx + sd * nw * 0.6), int(tip + 0.02 * g.ry)), (max(2, int(nw * 0.35)), max(2, int(0.02 * g.ry))), sd * 20, 0, 360, 255, -1, _AA) for sd in (-1, 1)], 1.0)
        rgb *= (1 - 0.55 * m)[..., None]

    def _eye_geometry(self, side: int) -> dict:
        g, st = self.g, self.style
        return dict(
            x=g.cx + side * 0.4 * g.rx * st.eye_spacing, y=g.eye_y, w=0.19 * g.rx,
            h=0.075 * g.ry * st.eye_open, side=side,
        )

    @staticmethod
    def _eye_arcs(e: dict, n: int = 24) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        u = np.linspace(-1, 1, n)
        # The inner corner (towards the nose) sits a little lower than the outer one.
        tilt = -e["side"] * u * 0.12 * e["h"]
        xs = e["x"] + u * e["w"]
        upper = e["y"] - e["h"] * (1 - u**2) ** 0.75 + tilt
        lower = e["y"] + 0.75 * e["h"] * (1 - u**2) ** 0.9 + tilt
        return xs, upper, lower

    def _draw_eye(self, rgb: np.ndarray, side: int) -> None:
        st = self.style
        e = self._eye_geometry(side)
        xs, upper, lower = self._eye_arcs(e)
        shape = rgb.shape[:2]
        outline = np.concatenate([np.stack([xs, upper], 1), np.stack([xs[::-1], lower[::-1]], 1)])
        eye = _soft_mask(shape, lambda m: _fill(m, outline), 0.6)
        _paint(rgb, eye, (218, 210, 200))
        # Upper-lid shadow on the eyeball.
        lid_shadow = _soft_mask(shape, lambda m: _line(m, np.stack([xs, upper + 0.2 * e["h"]], 1), 0.5 * e["h"]), 0.25 * e["h"])
        rgb *= (1 - 0.3 * lid_shadow * eye)[..., None]
        r_iris = 0.46 * e["w"]
        ix, iy = e["x"] + side * 0.03 * e["w"], e["y"] + 0.05 * e["h"]
        iris = _soft_mask(shape, lambda m: cv2.circle(m, (int(ix * 16), int(iy * 16)), int(r_iris * 16), 255, -1, _AA, 4), 0.5) * eye
        ring = _soft_mask(shape, lambda m: cv2.circle(m, (int(ix * 16), int(iy * 16)), int(r_iris * 0.9 * 16), 255, max(1, int(r_iris * 0.25)), _AA, 4), 0.8) * eye
        pupil = _soft_mask(shape, lambda m: cv2.circle(m, (int(ix * 16), int(iy * 16)), int(r_iris * 0.42 * 16), 255, -1, _AA, 4), 0.5) * eye
        _paint(rgb, iris, st.iris)
        rgb *= (1 - 0.4 * ring)[..., None]
        _paint(rgb, pupil, (12, 10, 10))
        hx, hy = ix - self.light[0] * r_iris * 0.35, iy - r_iris * 0.35
        spec = _soft_mask(shape, lambda m: cv2.circle(m, (int(hx * 16), int(hy * 16)), int(max(1.5, r_iris * 0.16) * 16), 255, -1, _AA, 4), 0.4) * eye
        _paint(rgb, spec, (250, 250, 250))
        lash = 0.22 * e["h"] * (1.5 if st.female else 1.0)
        lid_line = _soft_mask(shape, lambda m: _line(m, np.stack([xs, upper], 1), lash), 0.5)
        _paint(rgb, lid_line * 0.9, (25, 18, 16))
        lower_line = _soft_mask(shape, lambda m: _line(m, np.stack([xs, lower], 1), 0.08 * e["h"]), 0.5)
        rgb *= (1 - 0.25 * lower_line)[..., None]
        crease = _soft_mask(shape, lambda m: _line(m, np.stack([xs[3:-3], upper[3:-3] - 0.55 * e["h"]], 1), 0.12 * e["h"]), 0.8)
        rgb *= (1 - 0.22 * crease)[..., None]

    def _draw_brow(self, rgb: np.ndarray, side: int, rng: np.random.Generator) -> None:
        g, st = self.g, self.style
        e = self._eye_geometry(side)
        u = np.linspace(-1.05, 1.15, 20)
        xs = e["x"] + side * u * e["w"]
        base = g.eye_y - 0.24 * g.ry
        arch = st.brow_arch * 0.06 * g.ry
        ys = base - arch * (1 - ((u - 0.25) / 1.2) ** 2) + 0.02 * g.ry * (u > 0.8) * (u - 0.8) * 4
        thick = 0.045 * g.ry * st.brow_thickness * (1.2 - 0.45 * (u + 1.05) / 2.2)
        top = np.stack([xs, ys - thick / 2], 1)
        bottom = np.stack([xs, ys + thick / 2], 1)
        brow = _soft_mask(rgb.shape[:2], lambda m: _fill(m, np.concatenate([top, bottom[::-1]])), 1.2)
        colour = np.array(st.hair, np.float32) * 0.75 + np.array(st.skin, np.float32) * 0.15
        _paint(rgb, brow * 0.9, colour)

    # ------------------------------------------------------------ per frame

    def _mouth(self, open_: float, width: float) -> np.ndarray:
        """The mouth region at 2x with lips for this viseme, drawn on clean skin."""
        g, st = self.g, self.style
        x0, y0, x1, y1 = self.mouth_box
        roi = self.head2x[y0:y1, x0:x1].copy()
        mx, my = g.cx - x0, g.mouth_y - y0
        round_ = float(np.clip((1.0 - width) / 0.35, 0, 1))
        half_w = 0.33 * g.rx * st.mouth_width * (0.62 + 0.38 * width)
        gap = open_ * 0.2 * g.ry * (1 - 0.25 * round_)
        tu = 0.05 * g.ry * st.lip_thickness * (1 + 0.25 * round_)
        tl = 0.065 * g.ry * st.lip_thickness * (1 + 0.25 * round_)
        u = np.linspace(-1, 1, 41)
        xs = mx + u * half_w
        bulge = (1 - u**2).clip(0, 1)
        # Open rounded mouths are more circular: the gap holds closer to the corners.
        gap_shape = bulge ** (0.7 - 0.4 * round_)
        bow = tu * (0.18 * np.exp(-((np.abs(u) - 0.22) / 0.12) ** 2) - 0.15 * np.exp(-(u / 0.08) ** 2))
        y_uo = my - 0.3 * gap * gap_shape - tu * (0.25 + 0.75 * bulge**0.6) - bow
        y_ui = my - 0.3 * gap * gap_shape
        y_li = my + 0.7 * gap * gap_shape
        y_lo = my + 0.7 * gap * gap_shape + tl * (0.3 + 0.7 * bulge**0.55)
        shape = roi.shape[:2]
        outer = np.concatenate([np.stack([xs, y_uo], 1), np.stack([xs[::-1], y_lo[::-1]], 1)])
        lips = _soft_mask(shape, lambda m: _fill(m, outer), 0.8)
        lip = np.array(st.lip, np.float32)
        vv = np.arange(shape[0], dtype=np.float32)[:, None] - my
        # Upper lip faces down (darker); the lower lip catches the light.
        lshade = np.where(vv < 0, 0.82, 1.0 + 0.12 * np.exp(-((vv - 0.7 * gap - tl * 0.45) / (tl * 0.3 + 1)) ** 2))
        lip_rgb = lip * lshade[..., None] * self.tint
        _paint(roi, lips, 0)
        roi += lips[..., None] * lip_rgb
        if gap > 0.6:
            inner = np.concatenate([np.stack([xs, y_ui], 1), np.stack([xs[::-1], y_li[::-1]], 1)])
            mouth = _soft_mask(shape, lambda m: _fill(m, inner), 0.5)
            _paint(roi, mouth, (48, 14, 16))
            teeth_h = min(0.45 * gap, 0.055 * g.ry)
            teeth = _soft_mask(shape, lambda m: _fill(m, np.concatenate([np.stack([xs[6:-6], y_ui[6:-6] - 2], 1), np.stack([xs[6:-6][::-1], y_ui[6:-6][::-1] + teeth_h], 1)])), 0.6) * mouth
            _paint(roi, teeth, (222, 214, 200))
            if gap > 0.06 * g.ry:
                tongue = _soft_mask(shape, lambda m: cv2.ellipse(m, (int(mx), int(my + 0.7 * gap)), (int(half_w * 0.5), int(0.3 * gap)), 0, 180, 360, 255, -1, _AA), 1.0) * mouth
                _paint(roi, tongue * 0.7, (140, 50, 52))
        seam = _soft_mask(shape, lambda m: _line(m, np.stack([xs, (y_ui + y_li) / 2], 1), max(1.5, 0.012 * g.ry)), 0.6)
        roi *= (1 - 0.55 * seam * (1 - min(1.0, gap / 3)))[..., None]
        return roi

    def _eyelids(self, closure: float, idx: int) -> np.ndarray:
        """An eye region at 2x with the upper lid lowered by ``closure`` (0 open, 1 shut)."""
        x0, y0, x1, y1 = self.eye_boxes[idx]
        roi = self.head2x[y0:y1, x0:x1].copy()
        skin = self.skin2x[y0:y1, x0:x1] * 0.93
        e = dict(self._eyes[idx])
        e["x"] -= x0
        e["y"] -= y0
        xs, upper, lower = self._eye_arcs(e)
        lid_edge = upper + closure * (lower - upper + 0.1 * e["h"])
        shape = roi.shape[:2]
        cover = np.concatenate([np.stack([xs, upper - 0.25 * e["h"]], 1), np.stack([xs[::-1], lid_edge[::-1]], 1)])
        m = _soft_mask(shape, lambda m: _fill(m, cover), 0.6)
        roi = roi * (1 - m[..., None]) + skin * m[..., None]
        lash = _soft_mask(shape, lambda m: _line(m, np.stack([xs, lid_edge], 1), 0.22 * e["h"] * (1.5 if self.style.female else 1)), 0.5)
        _paint(roi, lash * 0.85, (25, 18, 16))
        return roi

    def _patch(self, layer: np.ndarray, key: tuple, redraw: Callable[[], np.ndarray],
               box: tuple[int, int, int, int]) -> None:
        """Write a redrawn region into the 1x head layer: ``redraw()`` draws it at 2x, which is
        downsampled and premultiplied (once per ``key``: the region depends on nothing else)."""
        x0, y0, x1, y1 = box
        if key not in self._patches:
            if len(self._patches) >= _MAX_PATCHES:
                self._patches.clear()
            a2 = self.alpha2x[y0:y1, x0:x1]
            small = cv2.resize(redraw() * a2[..., None], ((x1 - x0) // SS, (y1 - y0) // SS),
                               interpolation=cv2.INTER_AREA)
            self._patches[key] = small.clip(0, 255).round().astype(np.uint8)
        layer[y0 // SS: y1 // SS, x0 // SS: x1 // SS, :3] = self._patches[key]

    def render(self, open_: float, width: float, blink: float, pose: np.ndarray) -> np.ndarray:
        """One RGB frame: mouth shape, blink closure, head pose (yaw, pitch, roll deg; tx, ty px; scale)."""
        layer = self.head_rgba.copy()
        self._patch(layer, ("mouth", float(open_), float(width)), lambda: self._mouth(open_, width), self.mouth_box)
        if blink > 0.02:
            for i in range(2):
                self._patch(layer, ("lid", i, float(blink)), lambda: self._eyelids(blink, i), self.eye_boxes[i])
        warped = cv2.warpPerspective(layer, self._homography(pose), (SIZE, SIZE), flags=cv2.INTER_LINEAR,
                                     borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        return over(warped, self.backdrop)

    def _homography(self, pose: np.ndarray) -> np.ndarray:
        """Rotate the head layer as a plane about its centre, then move and scale it."""
        yaw, pitch, roll, tx, ty, scale = (float(v) for v in pose)
        cx, cy = self.g.cx / SS, self.g.cy / SS
        f = _FOCAL
        ry, rx, rz = np.deg2rad([yaw, pitch, roll])
        ry_m = np.array([[np.cos(ry), 0, np.sin(ry)], [0, 1, 0], [-np.sin(ry), 0, np.cos(ry)]])
        rx_m = np.array([[1, 0, 0], [0, np.cos(rx), -np.sin(rx)], [0, np.sin(rx), np.cos(rx)]])
        rz_m = np.array([[np.cos(rz), -np.sin(rz), 0], [np.sin(rz), np.cos(rz), 0], [0, 0, 1]])
        r = rz_m @ rx_m @ ry_m
        # A plane at depth f rotated about its own centre C: p' = R p + (I - R) C,
        # and C = f e3 e3^T K^-1 x on that plane, hence H = K' (R + (I - R) e3 e3^T) K^-1.
        e3 = np.array([[0.0], [0.0], [1.0]])
        about_centre = r + (np.eye(3) - r) @ e3 @ e3.T
        k_out = np.array([[f * scale, 0, cx + tx], [0, f * scale, cy + ty], [0, 0, 1]])
        return k_out @ about_centre @ self._k_in_inv  # K^-1: the same for every frame
