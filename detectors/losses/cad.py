"""CAD losses (seeds/000, Section 3.3-3.4).

Eq. 7, the alignment loss of the modality-shared path::

    P = softmax(x_v2a),  Q = softmax(x_a2v),  L_KL = sum_x P(x) log(P(x)/Q(x))

``x`` runs over the support of the distributions, i.e. the feature axis (the
last axis) of the cross-attention outputs; the paper gives no reduction over
samples, so leading axes (batch, tokens) are averaged ("batchmean"). The
direction is KL(P || Q) with P from video→audio; gradients reach both inputs
(the paper puts no stop-gradient on either).

Eq. 8, the cross-modal distillation of the modality-specific path::

    Dist1 = -Norm(x_v) ⊙ Norm(z_a),  Dist2 = -Norm(x_a) ⊙ Norm(z_v),  L_KD = (Dist1 + Dist2)/2

The element-wise product is summed over the feature axis (that is the
negative cosine of SimSiam's D(p, z)) and averaged over the batch. Eq. 8 does
not print it, but the loss is "the SimSiam [8] loss", whose defining feature
is the stop-gradient on the projection branch: ``z`` is detached.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from detectors.losses.common import kl_between_softmaxes, require_same_shape

DISTILLATION_KINDS = ("simsiam", "kl", "none")


def kl_alignment(x_v2a: torch.Tensor, x_a2v: torch.Tensor) -> torch.Tensor:
    """CAD Eq. 7: ``KL(softmax(x_v2a) || softmax(x_a2v))`` over the last axis, averaged over the rest."""
    require_same_shape("kl_alignment", x_v2a=x_v2a, x_a2v=x_a2v)
    return kl_between_softmaxes(x_v2a, x_a2v).mean()


def _negative_cosine(p: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    return -(F.normalize(p, dim=-1) * F.normalize(z, dim=-1)).sum(dim=-1)


def simsiam_distillation(
    x_v: torch.Tensor,
    z_v: torch.Tensor,
    x_a: torch.Tensor,
    z_a: torch.Tensor,
    stop_gradient: bool = True,
) -> torch.Tensor:
    """CAD Eq. 8: ``(-cos(x_v, sg(z_a)) - cos(x_a, sg(z_v))) / 2``, averaged over the batch.

    ``x_*`` are the unimodal embeddings, ``z_*`` the SimSiam projections, all (..., D).
    ``stop_gradient=False`` exists only to show what the stop-gradient does.
    """
    require_same_shape("simsiam_distillation", x_v=x_v, z_v=z_v, x_a=x_a, z_a=z_a)
    if stop_gradient:
        z_v, z_a = z_v.detach(), z_a.detach()
    dist1 = _negative_cosine(x_v, z_a)
    dist2 = _negative_cosine(x_a, z_v)
    return ((dist1 + dist2) / 2).mean()


def kl_distillation(
    x_v: torch.Tensor,
    z_v: torch.Tensor,
    x_a: torch.Tensor,
    z_a: torch.Tensor,
    stop_gradient: bool = True,
) -> torch.Tensor:
    """CAD Table 5 "Substitute SimSiam with KL": Eq. 8 with each negative cosine replaced by a KL.

    The paper names only the substitution; we keep Eq. 8's pairing and
    stop-gradient and use the distillation direction KL(teacher || student):
    ``(KL(softmax(sg z_a) || softmax(x_v)) + KL(softmax(sg z_v) || softmax(x_a))) / 2``.
    """
    require_same_shape("kl_distillation", x_v=x_v, z_v=z_v, x_a=x_a, z_a=z_a)
    if stop_gradient:
        z_v, z_a = z_v.detach(), z_a.detach()
    return ((kl_between_softmaxes(z_a, x_v) + kl_between_softmaxes(z_v, x_a)) / 2).mean()


def cad_losses(
    logits: torch.Tensor,
    label: torch.Tensor,
    x_v2a: torch.Tensor | None = None,
    x_a2v: torch.Tensor | None = None,
    x_v: torch.Tensor | None = None,
    z_v: torch.Tensor | None = None,
    x_a: torch.Tensor | None = None,
    z_a: torch.Tensor | None = None,
    alignment: bool = True,
    distillation: str = "simsiam",
) -> dict[str, torch.Tensor]:
    """The named losses of CAD; the detector sums them (the paper gives no weights).

    ``alignment=False`` is Table 4 "w/o alignment"; ``distillation`` is
    ``"simsiam"`` (the paper), ``"kl"`` (Table 5 "Substitute SimSiam with KL")
    or ``"none"`` (Table 5 "w/o distillation").
    """
    if distillation not in DISTILLATION_KINDS:
        raise ValueError(f"cad_losses: distillation must be one of {DISTILLATION_KINDS}, got {distillation!r}")
    losses = {"cls": F.cross_entropy(logits, label.long())}
    if alignment:
        if x_v2a is None or x_a2v is None:
            raise ValueError("cad_losses: alignment=True needs x_v2a and x_a2v")
        losses["kl_align"] = kl_alignment(x_v2a, x_a2v)
    if distillation != "none":
        if any(t is None for t in (x_v, z_v, x_a, z_a)):
            raise ValueError(f"cad_losses: distillation={distillation!r} needs x_v, z_v, x_a and z_a")
        fn = simsiam_distillation if distillation == "simsiam" else kl_distillation
        losses[f"kd_{distillation}"] = fn(x_v, z_v, x_a, z_a)
    return losses
