"""AVPrompt losses (seeds/002, "Frame-level Feature Matching and Fusion").

Eq. 15 gives every frame pair ``(f'_v[m, p], f'_a[n, q])`` of a mini-batch a
signed, weighted cosine distance ``D = 1 - cos``::

    l = +alpha * D   if m == n, y_m == 0 (real), p == q   (matched: pull together)
    l = -beta  * D   if m == n, y_m == 1 (fake), any p, q (fake segment: push apart)
    l = -gamma * D   if m != n, any p, q                  (other segment: push apart)
    l = 0            otherwise (same real segment, p != q)

Eq. 14 normalises the positive and the negative parts by how many values are
greater (N+) and less (N-) than zero and clips the sum at zero::

    L_CMFM = max( sum(max(l, 0)) / N+ + sum(min(l, 0)) / N-, 0 )

The counts are of values, as the paper says, so a matched pair whose distance
is exactly 0 is not counted in N+. An empty part contributes 0.

Eq. 16: ``L = L_v + L_a + L_f + L_CMFM``; ablations (Tables 4-5) drop terms.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from detectors.losses.common import binary_labels, require_ndim, require_same_shape

ALPHA, BETA, GAMMA = 2.0, 2.0, 1.0


def cmfm_pair_weights(
    fake: torch.Tensor, num_frames: int, alpha: float = ALPHA, beta: float = BETA, gamma: float = GAMMA
) -> torch.Tensor:
    """Eq. 15's signed weights as a (B, T, B, T) tensor indexed [m, p, n, q]."""
    fake = torch.as_tensor(fake).float()
    batch = fake.shape[0]
    same_segment = torch.eye(batch, dtype=fake.dtype, device=fake.device)[:, None, :, None]
    same_time = torch.eye(num_frames, dtype=fake.dtype, device=fake.device)[None, :, None, :]
    fake_m = fake[:, None, None, None]
    matched = same_segment * (1 - fake_m) * same_time
    fake_pairs = same_segment * fake_m
    cross_segment = 1 - same_segment
    weights = alpha * matched - beta * fake_pairs - gamma * cross_segment
    return weights.expand(batch, num_frames, batch, num_frames)


def cmfm_loss(
    f_v: torch.Tensor,
    f_a: torch.Tensor,
    fake: torch.Tensor,
    alpha: float = ALPHA,
    beta: float = BETA,
    gamma: float = GAMMA,
) -> torch.Tensor:
    """AVPrompt Eqs. 14-15 over all B*T x B*T frame pairs, vectorised.

    ``f_v``, ``f_a``: the aligned features ``f'_v``, ``f'_a`` of shape (B, T, D_f);
    ``fake``: (B,) segment labels, 1 = fake.
    """
    require_ndim("cmfm_loss", "f_v", f_v, 3)
    require_same_shape("cmfm_loss", f_v=f_v, f_a=f_a)
    batch, num_frames, _ = f_v.shape
    fake = binary_labels("cmfm_loss", fake, batch).to(f_v.device)
    cos = torch.einsum("mpd,nqd->mpnq", F.normalize(f_v, dim=-1), F.normalize(f_a, dim=-1))
    distance = 1 - cos
    signed = cmfm_pair_weights(fake, num_frames, alpha, beta, gamma).to(distance.dtype) * distance
    n_pos = (signed > 0).sum().clamp(min=1)
    n_neg = (signed < 0).sum().clamp(min=1)
    total = signed.clamp(min=0).sum() / n_pos + signed.clamp(max=0).sum() / n_neg
    return total.clamp(min=0)


def segment_level_cmfm_loss(
    f_v: torch.Tensor,
    f_a: torch.Tensor,
    fake: torch.Tensor,
    alpha: float = ALPHA,
    beta: float = BETA,
    gamma: float = GAMMA,
) -> torch.Tensor:
    """Table 5 "segment-level loss": Eq. 14-15 on time-averaged features (T = 1).

    The paper does not print this variant; averaging each segment over time
    and applying the same pair rule is the frame-level loss with one "frame"
    per segment, which is what the comparison isolates.
    """
    require_ndim("segment_level_cmfm_loss", "f_v", f_v, 3)
    require_same_shape("segment_level_cmfm_loss", f_v=f_v, f_a=f_a)
    return cmfm_loss(f_v.mean(dim=1, keepdim=True), f_a.mean(dim=1, keepdim=True), fake, alpha, beta, gamma)


def avprompt_losses(
    label: torch.Tensor,
    logits_f: torch.Tensor | None = None,
    logits_v: torch.Tensor | None = None,
    logits_a: torch.Tensor | None = None,
    video_fake: torch.Tensor | None = None,
    audio_fake: torch.Tensor | None = None,
    f_v: torch.Tensor | None = None,
    f_a: torch.Tensor | None = None,
    use_l_v: bool = True,
    use_l_a: bool = True,
    use_l_f: bool = True,
    cmfm: str = "frame",
) -> dict[str, torch.Tensor]:
    """Eq. 16 as named terms. ``cmfm`` is ``"frame"`` (paper), ``"segment"`` or ``"none"``.

    L_v is supervised by the visual-content label and L_a by the audio label
    (each head "predicts the authenticity" of its modality); L_f and CMFM by the
    segment label. Switches: Table 5 "w/o L_a"/"w/o L_v", Table 4 "w/o L_CMFM"
    and the branch-only rows (leave out the other branch's terms).
    """
    if cmfm not in ("frame", "segment", "none"):
        raise ValueError(f"avprompt_losses: cmfm must be 'frame', 'segment' or 'none', got {cmfm!r}")
    losses: dict[str, torch.Tensor] = {}
    if use_l_v:
        if logits_v is None or video_fake is None:
            raise ValueError("avprompt_losses: use_l_v needs logits_v and video_fake")
        losses["l_v"] = F.cross_entropy(logits_v, torch.as_tensor(video_fake).long())
    if use_l_a:
        if logits_a is None or audio_fake is None:
            raise ValueError("avprompt_losses: use_l_a needs logits_a and audio_fake")
        losses["l_a"] = F.cross_entropy(logits_a, torch.as_tensor(audio_fake).long())
    if use_l_f:
        if logits_f is None:
            raise ValueError("avprompt_losses: use_l_f needs logits_f")
        losses["l_f"] = F.cross_entropy(logits_f, label.long())
    if cmfm != "none":
        if f_v is None or f_a is None:
            raise ValueError(f"avprompt_losses: cmfm={cmfm!r} needs f_v and f_a")
        fn = cmfm_loss if cmfm == "frame" else segment_level_cmfm_loss
        losses[f"cmfm_{cmfm}"] = fn(f_v, f_a, label)
    return losses
