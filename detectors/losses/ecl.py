"""ECL losses (seeds/003, Section III-B).

Eq. 2, correlation distillation, per frame t::

    L_dist = CE[ (cos(F_a, F_v) + 1)/2 , 1 - JS(P_a, P_v) ]

a binary cross-entropy between the predicted correlation ("Sync") and the soft
label from the ASR/VSR teachers ("Cont"). The paper does not give the log base
of JS; we use log2 so that JS is in [0, 1] and ``1 - JS`` spans the whole
[0, 1] range a cross-entropy target needs (with the natural log it would be
confined to [1 - ln 2, 1] ≈ [0.31, 1]). ``base=math.e`` is available.

Eqs. 3-4, the joint-modal contrastive loss, per frame::

    d = |Cont - Sync|,   L_contra = y d^2 + (1 - y) max(margin - d, 0)^2,  margin = 1.0

The text says the loss narrows the Cont/Sync gap "in genuine videos" and
widens it "in fake videos", so ``y = 1`` means *real* here (the opposite of
avdf's ``label``); the function takes ``fake`` and uses ``y = 1 - fake``.
Cont is the teachers' correlation ``1 - JS`` (a target, no gradient), Sync is
the prediction ``(cos + 1)/2``.

Eq. 5 averages both per-frame losses over time and everything over videos.
Its leading minus sign is a typo (every term is already a positive loss); we
do not reproduce it.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from detectors.losses.common import binary_labels, require_ndim, require_same_shape

MARGIN = 1.0
_PROB_TOLERANCE = 1e-3


def js_divergence(p: torch.Tensor, q: torch.Tensor, base: float = 2.0) -> torch.Tensor:
    """Jensen-Shannon divergence over the last axis of two probability tensors (no reduction)."""
    require_same_shape("js_divergence", p=p, q=q)
    for name, t in (("p", p), ("q", q)):
        if bool((t < 0).any()) or not torch.allclose(t.sum(-1), torch.ones_like(t.sum(-1)), atol=_PROB_TOLERANCE):
            raise ValueError(f"js_divergence: {name} must hold probabilities (non-negative, summing to 1 on the last axis)")
    m = (p + q) / 2
    # xlogy makes 0 * log(0 / m) = 0, so one-hot posteriors are fine.
    kl_pm = (torch.xlogy(p, p) - torch.xlogy(p, m)).sum(-1)
    kl_qm = (torch.xlogy(q, q) - torch.xlogy(q, m)).sum(-1)
    return (kl_pm + kl_qm) / (2 * math.log(base))


def js_soft_label(p_a: torch.Tensor, p_v: torch.Tensor, base: float = 2.0) -> torch.Tensor:
    """Eq. 2's target ``1 - JS(P_a, P_v)`` per frame: (B, T, C) posteriors -> (B, T) in [0, 1]."""
    return (1 - js_divergence(p_a, p_v, base)).clamp(0.0, 1.0)


def resample_posteriors(posteriors: torch.Tensor, num_frames: int) -> torch.Tensor:
    """Bring (B, T_src, C) teacher posteriors to the video's T frames by averaging over time.

    ASR teachers usually run at 50 or 100 Hz, VSR at 25 fps; averaging
    probabilities keeps them distributions.
    """
    require_ndim("resample_posteriors", "posteriors", posteriors, 3)
    if posteriors.shape[1] == num_frames:
        return posteriors
    pooled = F.adaptive_avg_pool1d(posteriors.transpose(1, 2), num_frames).transpose(1, 2)
    return pooled / pooled.sum(-1, keepdim=True).clamp_min(1e-12)


def correlation_prediction(f_a: torch.Tensor, f_v: torch.Tensor) -> torch.Tensor:
    """Eq. 2's prediction ``(cos(F_a, F_v) + 1)/2`` per frame: (B, T, D) -> (B, T) in [0, 1]."""
    require_same_shape("correlation_prediction", f_a=f_a, f_v=f_v)
    return (F.cosine_similarity(f_a, f_v, dim=-1, eps=1e-8) + 1) / 2


def correlation_distillation_loss(sync: torch.Tensor, cont: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Eq. 2: binary cross-entropy of prediction ``sync`` against soft label ``cont``, (B, T) each.

    Averaged over frames, then videos (Eq. 5). The label carries no gradient.
    """
    require_same_shape("correlation_distillation_loss", sync=sync, cont=cont)
    return F.binary_cross_entropy(sync.clamp(eps, 1 - eps), cont.detach(), reduction="none").mean(-1).mean()


def contrastive_correlation_loss(
    cont: torch.Tensor, sync: torch.Tensor, fake: torch.Tensor, margin: float = MARGIN
) -> torch.Tensor:
    """Eqs. 3-4 per frame, (B, T) Cont and Sync, (B,) labels with 1 = fake; mean over T then B."""
    require_ndim("contrastive_correlation_loss", "cont", cont, 2)
    require_same_shape("contrastive_correlation_loss", cont=cont, sync=sync)
    y_real = 1 - binary_labels("contrastive_correlation_loss", fake, cont.shape[0]).to(cont.device)[:, None]
    d = (cont.detach() - sync).abs()
    per_frame = y_real * d**2 + (1 - y_real) * (margin - d).clamp(min=0) ** 2
    return per_frame.mean(-1).mean()


def ecl_losses(
    logits: torch.Tensor,
    label: torch.Tensor,
    f_a: torch.Tensor | None = None,
    f_v: torch.Tensor | None = None,
    p_a: torch.Tensor | None = None,
    p_v: torch.Tensor | None = None,
    use_distillation: bool = True,
    use_contrastive: bool = True,
    margin: float = MARGIN,
    js_base: float = 2.0,
) -> dict[str, torch.Tensor]:
    """Eq. 5 as named terms. Table IV: "w/o Cons" = ``use_contrastive=False``;
    "w/o Cons&Dis" = both False (detection branch only).

    ``p_a``/``p_v`` are the ASR/VSR posteriors already on the T video frames
    (see ``resample_posteriors``) and on one character set.
    """
    losses = {"cls": F.cross_entropy(logits, label.long())}
    if not (use_distillation or use_contrastive):
        return losses
    if any(t is None for t in (f_a, f_v, p_a, p_v)):
        raise ValueError("ecl_losses: the correlation branch needs f_a, f_v, p_a and p_v")
    sync = correlation_prediction(f_a, f_v)
    with torch.no_grad():
        cont = js_soft_label(p_a, p_v, js_base)
    if use_distillation:
        losses["dist"] = correlation_distillation_loss(sync, cont)
    if use_contrastive:
        losses["contra"] = contrastive_correlation_loss(cont, sync, label, margin)
    return losses
