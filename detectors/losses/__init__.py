"""Losses of the three detectors of the papers, as pure torch functions.

Where each one comes from (paper, equation):

- ``cad.kl_alignment``            CAD (seeds/000) Eq. 7: ``L_KL = sum_x P log(P/Q)``,
  ``P = softmax(x_v2a)``, ``Q = softmax(x_a2v)`` over the feature axis.
- ``cad.simsiam_distillation``    CAD Eq. 8: ``L_KD = (Dist1 + Dist2)/2`` with
  ``Dist1 = -<Norm(x_v), Norm(sg(z_a))>`` and ``Dist2 = -<Norm(x_a), Norm(sg(z_v))>``.
- ``cad.kl_distillation``         CAD Table 5 row "Substitute SimSiam with KL".
- ``avprompt.cmfm_loss``          AVPrompt (seeds/002) Eqs. 14-15, alpha=2, beta=2, gamma=1.
- ``avprompt.segment_level_cmfm_loss``  AVPrompt Table 5 row "segment-level loss".
- ``ecl.js_soft_label``           ECL (seeds/003) Eq. 2 target ``1 - JS(P_a, P_v)``.
- ``ecl.correlation_prediction``  ECL Eq. 2 prediction ``(cos(F_a, F_v) + 1)/2``.
- ``ecl.correlation_distillation_loss``  ECL Eq. 2 (cross-entropy between the two).
- ``ecl.contrastive_correlation_loss``   ECL Eqs. 3-4 (margin 1.0).

Label convention everywhere: avdf's ``label`` (1 = fake, 0 = real), the same as
AVPrompt's ``y_m``. ECL's Eq. 3 uses ``y_i = 1`` for the *pulled* (genuine)
pairs, so its function takes ``fake`` and converts.
"""
from __future__ import annotations

from detectors.losses.avprompt import avprompt_losses, cmfm_loss, cmfm_pair_weights, segment_level_cmfm_loss
from detectors.losses.cad import cad_losses, kl_alignment, kl_distillation, simsiam_distillation
from detectors.losses.ecl import (
    contrastive_correlation_loss,
    correlation_distillation_loss,
    correlation_prediction,
    ecl_losses,
    js_divergence,
    js_soft_label,
    resample_posteriors,
)

__all__ = [
    "avprompt_losses",
    "cad_losses",
    "cmfm_loss",
    "cmfm_pair_weights",
    "contrastive_correlation_loss",
    "correlation_distillation_loss",
    "correlation_prediction",
    "ecl_losses",
    "js_divergence",
    "js_soft_label",
    "kl_alignment",
    "kl_distillation",
    "resample_posteriors",
    "segment_level_cmfm_loss",
    "simsiam_distillation",
]
