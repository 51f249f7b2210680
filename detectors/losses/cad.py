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
not print a stop-gradient, but the loss is "the SimSiam [8] loss", whose
defining feature is one: SimSiam (Chen & He 2021) computes
``D(p1, sg(z2))/2 + D(p2, sg(z1))/2`` where ``z = f(x)`` is the encoder output
and ``p = h(z)`` the *predictor* output, an extra MLP on top of ``z``. The
gradient flows through ``p`` (and through ``h`` back into the encoder); the
stop-gradient sits on the target ``z``.

In CAD the roles map by structure, not by letter: ``z_*^u`` ("the SimSiam
projections") is an MLP applied to the unimodal embedding ``x_*^u``, so
``z_*`` plays SimSiam's ``p`` (the branch with the extra MLP) and ``x_*``
plays SimSiam's ``z`` (the target). Hence::

    L_KD = (-cos(sg(x_v), z_a) - cos(sg(x_a), z_v)) / 2

The audio projection predicts the (fixed) video embedding and vice versa;
both projectors and, through them, both encoders are trained. Detaching
``z_*`` instead (an earlier reading) left the projectors with no gradient at
all: they are used nowhere else, so they stayed at their random init.
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
    """CAD Eq. 8: ``(-cos(sg(x_v), z_a) - cos(sg(x_a), z_v)) / 2``, averaged over the batch.

    ``x_*`` are the unimodal embeddings (SimSiam's targets ``z``), ``z_*`` the SimSiam
    projections ``z_* = projector(x_*)`` (SimSiam's predictor outputs ``p``), all (..., D);
    see the module docstring for why the stop-gradient sits on ``x_*``.
    ``stop_gradient=False`` exists only to show what the stop-gradient does.
    """
    require_same_shape("simsiam_distillation", x_v=x_v, z_v=z_v, x_a=x_a, z_a=z_a)
    if stop_gradient:
        # Only the direct (target) use of x is cut: x still gets gradient through z = projector(x).
        x_v, x_a = x_v.detach(), x_a.detach()
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
    stop-gradient (on the targets ``x_*``, as in ``simsiam_distillation``) and use the
    distillation direction KL(teacher || student), the teacher being the target:
    ``(KL(softmax(sg x_v) || softmax(z_a)) + KL(softmax(sg x_a) || softmax(z_v))) / 2``.
    """
    require_same_shape("kl_distillation", x_v=x_v, z_v=z_v, x_a=x_a, z_a=z_a)
    if stop_gradient:
        x_v, x_a = x_v.detach(), x_a.detach()
    return ((kl_between_softmaxes(x_v, z_a) + kl_between_softmaxes(x_a, z_v)) / 2).mean()


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
