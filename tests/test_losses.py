"""The detector losses against values worked out by hand (numbers in the comments)."""
from __future__ import annotations

import math

import pytest
import torch

from detectors.losses import (
    avprompt_losses,
    cad_losses,
    cmfm_loss,
    cmfm_pair_weights,
    contrastive_correlation_loss,
    correlation_distillation_loss,
    correlation_prediction,
    ecl_losses,
    js_divergence,
    js_soft_label,
    kl_alignment,
    kl_distillation,
    resample_posteriors,
    segment_level_cmfm_loss,
    simsiam_distillation,
)

LN2, LN3 = math.log(2), math.log(3)


# --------------------------------------------------------------------- CAD Eq. 7
def test_kl_alignment_identical_inputs_is_zero():
    x = torch.randn(4, 10)
    assert kl_alignment(x, x.clone()).item() == pytest.approx(0.0, abs=1e-6)


def test_kl_alignment_hand_value_and_direction():
    # P = softmax([0, 0]) = [1/2, 1/2]; Q = softmax([0, ln 3]) = [1/4, 3/4]
    # KL(P||Q) = 1/2 ln(2) + 1/2 ln(2/3) = 1/2 ln(4/3)
    # KL(Q||P) = 1/4 ln(1/2) + 3/4 ln(3/2)           (the other direction differs)
    v2a = torch.tensor([[0.0, 0.0]])
    a2v = torch.tensor([[0.0, LN3]])
    assert kl_alignment(v2a, a2v).item() == pytest.approx(0.5 * math.log(4 / 3), rel=1e-5)
    assert kl_alignment(a2v, v2a).item() == pytest.approx(0.25 * math.log(0.5) + 0.75 * math.log(1.5), rel=1e-5)


def test_kl_alignment_sums_over_features_and_averages_over_rows():
    # row 0: 1/2 ln(4/3); row 1: identical -> 0; mean = 1/4 ln(4/3)
    v2a = torch.tensor([[0.0, 0.0], [1.0, 2.0]])
    a2v = torch.tensor([[0.0, LN3], [1.0, 2.0]])
    assert kl_alignment(v2a, a2v).item() == pytest.approx(0.25 * math.log(4 / 3), rel=1e-5)


def test_kl_alignment_rejects_shape_mismatch():
    with pytest.raises(ValueError, match="x_v2a=.*x_a2v="):
        kl_alignment(torch.zeros(2, 3), torch.zeros(2, 4))


# --------------------------------------------------------------------- CAD Eq. 8
def test_simsiam_identical_is_minus_one_and_orthogonal_is_zero():
    x = torch.tensor([[1.0, 2.0, 3.0]])
    assert simsiam_distillation(x, x, x, x).item() == pytest.approx(-1.0)
    e1, e2 = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 5.0]])
    # argument order is (x_v, z_v, x_a, z_a): x_v ⟂ z_a and x_a ⟂ z_v
    assert simsiam_distillation(e1, e2, e1, e2).item() == pytest.approx(0.0, abs=1e-7)
    # only one pair orthogonal: (0 - 1)/2
    assert simsiam_distillation(e1, e1, e1, e2).item() == pytest.approx(-0.5)


def test_simsiam_hand_value_pairs_v_with_a():
    # Dist1 = -cos(x_v, z_a) = -cos([1,0],[1,1]) = -1/sqrt(2); Dist2 = -cos(x_a, z_v) = -cos([0,2],[3,0]) = 0
    x_v, z_a = torch.tensor([[1.0, 0.0]]), torch.tensor([[1.0, 1.0]])
    x_a, z_v = torch.tensor([[0.0, 2.0]]), torch.tensor([[3.0, 0.0]])
    assert simsiam_distillation(x_v, z_v, x_a, z_a).item() == pytest.approx(-1 / (2 * math.sqrt(2)), rel=1e-6)


def test_simsiam_stop_gradient_sits_on_the_target_embeddings():
    # SimSiam D(p, sg(z)): CAD's projections z_* play p and get the gradient; x_* are the targets.
    x_v, z_v, x_a, z_a = (torch.randn(3, 5, requires_grad=True) for _ in range(4))
    simsiam_distillation(x_v, z_v, x_a, z_a).backward()
    assert x_v.grad is None and x_a.grad is None
    assert z_v.grad is not None and z_a.grad is not None
    assert z_v.grad.abs().sum() > 0 and z_a.grad.abs().sum() > 0
    # without the stop-gradient the targets do receive gradient
    x_v2 = x_v.detach().clone().requires_grad_(True)
    simsiam_distillation(x_v2, z_v.detach(), x_a.detach(), z_a.detach(), stop_gradient=False).backward()
    assert x_v2.grad is not None and x_v2.grad.abs().sum() > 0


def test_simsiam_gradient_on_the_projection_is_worked_by_hand():
    # L = -cos(sg(x_v), z_a)/2 with x_v = [1, 0], z_a = [0, 1] (second pair constant, x_a = z_v):
    # d cos(x, z)/dz = x/(|x||z|) - cos · z/|z|^2 = [1, 0] - 0 → dL/dz_a = [-1/2, 0]
    x_v, z_a = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]], requires_grad=True)
    x_a = torch.tensor([[2.0, 1.0]])
    simsiam_distillation(x_v, x_a.clone(), x_a, z_a).backward()
    assert torch.allclose(z_a.grad, torch.tensor([[-0.5, 0.0]]))


def test_kl_distillation_hand_value_and_stop_gradient():
    # teacher softmax(x_v=[0, ln3]) = [1/4, 3/4], student softmax(z_a=[0,0]) = [1/2,1/2]:
    # KL = 1/4 ln(1/2) + 3/4 ln(3/2); second pair identical -> 0; L = KL / 2
    x_v = torch.tensor([[0.0, LN3]], requires_grad=True)
    z_a = torch.tensor([[0.0, 0.0]], requires_grad=True)
    x_a = torch.tensor([[1.0, -1.0]], requires_grad=True)
    z_v = x_a.detach().clone().requires_grad_(True)
    loss = kl_distillation(x_v, z_v, x_a, z_a)
    assert loss.item() == pytest.approx((0.25 * math.log(0.5) + 0.75 * math.log(1.5)) / 2, rel=1e-5)
    loss.backward()
    assert x_v.grad is None and x_a.grad is None and z_a.grad.abs().sum() > 0
    # d KL(P || softmax(z))/dz = softmax(z) - P = [1/2 - 1/4, 1/2 - 3/4]; halved by the mean of the pairs
    assert torch.allclose(z_a.grad, torch.tensor([[0.125, -0.125]]))


def test_cad_losses_switches_change_only_what_they_name():
    torch.manual_seed(0)
    logits, label = torch.randn(4, 2), torch.tensor([0, 1, 1, 0])
    feats = {k: torch.randn(4, 8) for k in ("x_v2a", "x_a2v", "x_v", "z_v", "x_a", "z_a")}
    full = cad_losses(logits, label, **feats)
    assert set(full) == {"cls", "kl_align", "kd_simsiam"}
    no_align = cad_losses(logits, label, **feats, alignment=False)
    assert set(no_align) == {"cls", "kd_simsiam"}
    assert torch.equal(no_align["kd_simsiam"], full["kd_simsiam"]) and torch.equal(no_align["cls"], full["cls"])
    kl = cad_losses(logits, label, **feats, distillation="kl")
    assert set(kl) == {"cls", "kl_align", "kd_kl"} and torch.equal(kl["kl_align"], full["kl_align"])
    assert set(cad_losses(logits, label, **feats, distillation="none")) == {"cls", "kl_align"}
    with pytest.raises(ValueError, match="distillation"):
        cad_losses(logits, label, **feats, distillation="mse")


# --------------------------------------------------------------- AVPrompt Eq. 14-15
def test_cmfm_pair_weights_follow_eq15():
    w = cmfm_pair_weights(torch.tensor([0.0, 1.0]), num_frames=2)
    # real segment 0 with itself: alpha on p == q, 0 elsewhere
    assert w[0, 0, 0, 0] == 2 and w[0, 1, 0, 1] == 2 and w[0, 0, 0, 1] == 0 and w[0, 1, 0, 0] == 0
    # fake segment 1 with itself: -beta for every p, q
    assert (w[1, :, 1, :] == -2).all()
    # different segments: -gamma for every p, q, whatever the labels
    assert (w[0, :, 1, :] == -1).all() and (w[1, :, 0, :] == -1).all()


def _unit(angle_deg: float) -> list[float]:
    a = math.radians(angle_deg)
    return [math.cos(a), math.sin(a)]


def test_cmfm_matched_real_pair_only():
    # B=1 real, T=1: one matched pair, D = 1 - cos(60°) = 1/2, l = 2 * 1/2 = 1 > 0, no negatives
    f_v = torch.tensor([[_unit(0)]])
    f_a = torch.tensor([[_unit(60)]])
    assert cmfm_loss(f_v, f_a, torch.tensor([0])).item() == pytest.approx(1.0, rel=1e-6)
    # perfectly matched -> l = 0 is neither > 0 nor < 0 -> loss 0
    assert cmfm_loss(f_v, f_v.clone(), torch.tensor([0])).item() == pytest.approx(0.0, abs=1e-7)


def test_cmfm_real_and_fake_segments_by_hand():
    # B=2 (segment 0 real, segment 1 fake), T=2, unit vectors at the given angles
    #   v0 = [0°, 90°]  a0 = [0°, 90°]   (real segment, perfectly synchronised)
    #   v1 = [0°, 0°]   a1 = [90°, 180°] (fake segment)
    # cosine distance D = 1 - cos(angle between)
    # real/real pairs (m=n=0): p==q: D(0°,0°)=0, D(90°,90°)=0 -> l = 0, 0 (not counted); p!=q -> 0
    # fake/fake pairs (m=n=1), -2*D: v1p vs a1q: D(0,90)=1, D(0,180)=2 for p=0,1 -> l=-2,-4,-2,-4
    # cross pairs, -1*D:
    #   v0 vs a1: v0=[0,90], a1=[90,180]: D(0,90)=1, D(0,180)=2, D(90,90)=0, D(90,180)=1 -> -1,-2,0,-1
    #   v1 vs a0: v1=[0,0], a0=[0,90]: D=0,1,0,1 -> 0,-1,0,-1
    # negatives: -2,-4,-2,-4,-1,-2,-1,-1,-1 -> sum -18 over N- = 9 -> -2; no positives
    # L = max(0 + (-2), 0) = 0, but the negative mean is -2
    f_v = torch.tensor([[_unit(0), _unit(90)], [_unit(0), _unit(0)]])
    f_a = torch.tensor([[_unit(0), _unit(90)], [_unit(90), _unit(180)]])
    fake = torch.tensor([0, 1])
    assert cmfm_loss(f_v, f_a, fake).item() == pytest.approx(0.0, abs=1e-7)
    # now desynchronise the real segment: a0 = [60°, 90°]
    #   real matched: D(0,60) = 1/2 -> l = +1 ; D(90,90) = 0 -> 0.  positives: sum 1, N+ = 1 -> 1
    #   cross v1 vs a0: v1=[0,0], a0=[60,90]: D = 1/2, 1, 1/2, 1 -> -0.5,-1,-0.5,-1 (sum -3)
    #   cross v0 vs a1 unchanged: -1,-2,-1 (the 0 is not counted) (sum -4)
    #   fake/fake unchanged: -2,-4,-2,-4 (sum -12)
    #   negatives: 11 values, sum -19 -> -19/11
    # L = max(1 - 19/11, 0) = 0  -> use gamma = 0 and beta = 0.25 to make it positive:
    #   negatives then only fake/fake: -0.25*[1,2,1,2] = sum -1.5 over 4 -> -0.375; L = 1 - 0.375 = 0.625
    f_a_desync = torch.tensor([[_unit(60), _unit(90)], [_unit(90), _unit(180)]])
    assert cmfm_loss(f_v, f_a_desync, fake).item() == pytest.approx(0.0, abs=1e-7)
    assert cmfm_loss(f_v, f_a_desync, fake, beta=0.25, gamma=0.0).item() == pytest.approx(0.625, rel=1e-6)


def test_cmfm_cross_segment_pairs_with_two_real_segments():
    # B=2 both real, T=1: v0=0°, a0=90° (D=1 -> +2), v1=a1=0° (D=0 -> 0, not counted)
    # cross: v0 vs a1: D(0,0)=0 -> 0 (not counted); v1 vs a0: D(0,90)=1 -> -1
    # L = max(2/1 + (-1)/1, 0) = 1
    f_v = torch.tensor([[_unit(0)], [_unit(0)]])
    f_a = torch.tensor([[_unit(90)], [_unit(0)]])
    assert cmfm_loss(f_v, f_a, torch.tensor([0, 0])).item() == pytest.approx(1.0, rel=1e-6)
    # gamma scales only the cross-segment term: gamma=0.5 -> 2 - 0.5 = 1.5
    assert cmfm_loss(f_v, f_a, torch.tensor([0, 0]), gamma=0.5).item() == pytest.approx(1.5, rel=1e-6)


def test_cmfm_matches_an_explicit_loop_on_random_data():
    torch.manual_seed(1)
    f_v, f_a, fake = torch.randn(3, 4, 5), torch.randn(3, 4, 5), torch.tensor([0, 1, 0])
    pos, neg = [], []
    for m in range(3):
        for p in range(4):
            for n in range(3):
                for q in range(4):
                    d = 1 - torch.nn.functional.cosine_similarity(f_v[m, p], f_a[n, q], dim=0).item()
                    if m == n and fake[m] == 0 and p == q:
                        l = 2 * d
                    elif m == n and fake[m] == 1:
                        l = -2 * d
                    elif m != n:
                        l = -1 * d
                    else:
                        l = 0.0
                    (pos if l > 0 else neg if l < 0 else []).append(l)
    expected = max(sum(pos) / max(len(pos), 1) + sum(neg) / max(len(neg), 1), 0.0)
    assert cmfm_loss(f_v, f_a, fake).item() == pytest.approx(expected, rel=1e-5, abs=1e-6)


def test_cmfm_gradient_is_finite_and_validates_labels():
    f_v = torch.randn(2, 3, 4, requires_grad=True)
    f_a = torch.randn(2, 3, 4, requires_grad=True)
    f_v2 = f_v * 0.1 + f_a.detach()  # near-synchronised real segments give a positive loss
    loss = cmfm_loss(f_v2, f_a, torch.tensor([0, 0]), gamma=0.0)
    loss.backward()
    assert torch.isfinite(f_v.grad).all() and torch.isfinite(f_a.grad).all()
    with pytest.raises(ValueError, match="0 \\(real\\) or 1 \\(fake\\)"):
        cmfm_loss(f_v, f_a, torch.tensor([0, 2]))


def test_segment_level_cmfm_uses_time_averaged_features():
    # B=2 (0 real, 1 fake), T=2.  v0 = [0°, 90°] -> time mean points at 45°; v1 = [0°, 0°] -> 0°
    # a0 = a1 = [90°, 90°] -> 90°.  Segment level (T=1), beta = 0, gamma = 1/2:
    #   matched real: +2 * D(45°, 90°) = 2 (1 - cos45°)
    #   cross: v0(45°) vs a1(90°): -1/2 (1 - cos45°); v1(0°) vs a0(90°): -1/2 * 1
    #   L = 2 (1 - cos45°) - (2 - cos45°)/4 ≈ 0.26256
    f_v = torch.tensor([[_unit(0), _unit(90)], [_unit(0), _unit(0)]])
    f_a = torch.tensor([[_unit(90), _unit(90)], [_unit(90), _unit(90)]])
    c45 = math.cos(math.radians(45))
    expected = 2 * (1 - c45) - (2 - c45) / 4
    got = segment_level_cmfm_loss(f_v, f_a, torch.tensor([0, 1]), beta=0.0, gamma=0.5)
    assert got.item() == pytest.approx(expected, rel=1e-5)
    # frame level on the same data: matched D(0°,90°) = 1 -> +2, D(90°,90°) = 0 (not counted): N+ = 1 -> 2
    # cross: v0 vs a1: D = 1, 1, 0, 0 -> -1/2, -1/2 ; v1 vs a0: D = 1 x4 -> -1/2 x4 ; mean -1/2
    # L = 2 - 1/2 = 1.5
    assert cmfm_loss(f_v, f_a, torch.tensor([0, 1]), beta=0.0, gamma=0.5).item() == pytest.approx(1.5, rel=1e-6)


def test_avprompt_losses_switches():
    torch.manual_seed(0)
    lf, lv, la = torch.randn(4, 2), torch.randn(4, 2), torch.randn(4, 2)
    label, vf, af = torch.tensor([1, 1, 0, 1]), torch.tensor([1, 0, 0, 1]), torch.tensor([0, 1, 0, 1])
    f_v, f_a = torch.randn(4, 3, 6), torch.randn(4, 3, 6)
    kw = dict(logits_f=lf, logits_v=lv, logits_a=la, video_fake=vf, audio_fake=af, f_v=f_v, f_a=f_a)
    full = avprompt_losses(label, **kw)
    assert set(full) == {"l_v", "l_a", "l_f", "cmfm_frame"}
    # L_v uses the visual label, not the segment label
    assert full["l_v"].item() == pytest.approx(torch.nn.functional.cross_entropy(lv, vf).item())
    assert set(avprompt_losses(label, **kw, use_l_a=False)) == {"l_v", "l_f", "cmfm_frame"}
    assert set(avprompt_losses(label, **kw, use_l_v=False)) == {"l_a", "l_f", "cmfm_frame"}
    assert set(avprompt_losses(label, **kw, cmfm="none")) == {"l_v", "l_a", "l_f"}
    seg = avprompt_losses(label, **kw, cmfm="segment")
    assert set(seg) == {"l_v", "l_a", "l_f", "cmfm_segment"} and torch.equal(seg["l_f"], full["l_f"])


# ------------------------------------------------------------------ ECL Eq. 2-5
def test_js_bounds_identical_and_disjoint():
    p = torch.tensor([[[0.2, 0.3, 0.5]]])
    assert js_soft_label(p, p.clone()).item() == pytest.approx(1.0, abs=1e-6)
    a, b = torch.tensor([[[1.0, 0.0, 0.0]]]), torch.tensor([[[0.0, 1.0, 0.0]]])
    assert js_divergence(a, b).item() == pytest.approx(1.0, abs=1e-6)  # log2: the upper bound is 1
    assert js_soft_label(a, b).item() == pytest.approx(0.0, abs=1e-6)
    assert js_divergence(a, b, base=math.e).item() == pytest.approx(LN2, abs=1e-6)  # natural log: ln 2


def test_js_hand_value():
    # P = [1, 0], Q = [1/2, 1/2], M = [3/4, 1/4]
    # KL(P||M) = log2(4/3); KL(Q||M) = 1/2 log2(2/3) + 1/2 log2(2)
    p, q = torch.tensor([[[1.0, 0.0]]]), torch.tensor([[[0.5, 0.5]]])
    js = 0.5 * math.log2(4 / 3) + 0.5 * (0.5 * math.log2(2 / 3) + 0.5)
    assert js_divergence(p, q).item() == pytest.approx(js, rel=1e-6)  # ≈ 0.311278
    assert js_soft_label(p, q).item() == pytest.approx(1 - js, rel=1e-6)


def test_js_is_per_frame_and_rejects_non_probabilities():
    p = torch.tensor([[[1.0, 0.0], [0.5, 0.5]]])
    q = torch.tensor([[[0.0, 1.0], [0.5, 0.5]]])
    torch.testing.assert_close(js_soft_label(p, q), torch.tensor([[0.0, 1.0]]), atol=1e-6, rtol=0)
    with pytest.raises(ValueError, match="probabilities"):
        js_divergence(torch.tensor([[0.7, 0.7]]), torch.tensor([[0.5, 0.5]]))


def test_resample_posteriors_keeps_distributions():
    p = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 0.0]]])  # 4 steps -> 2 frames
    out = resample_posteriors(p, 2)
    torch.testing.assert_close(out, torch.tensor([[[0.5, 0.5], [1.0, 0.0]]]))


def test_correlation_prediction_maps_cosine_to_unit_interval():
    a = torch.tensor([[[1.0, 0.0], [1.0, 0.0], [1.0, 0.0]]])
    v = torch.tensor([[[2.0, 0.0], [0.0, 3.0], [-1.0, 0.0]]])
    torch.testing.assert_close(correlation_prediction(a, v), torch.tensor([[1.0, 0.5, 0.0]]), atol=1e-6, rtol=0)


def test_correlation_distillation_is_bce_averaged_over_time():
    # frame 0: pred 0.75, target 0.5 -> -(0.5 ln .75 + 0.5 ln .25); frame 1: pred 0.5, target 1 -> ln 2
    sync = torch.tensor([[0.75, 0.5]])
    cont = torch.tensor([[0.5, 1.0]])
    f0 = -(0.5 * math.log(0.75) + 0.5 * math.log(0.25))
    assert correlation_distillation_loss(sync, cont).item() == pytest.approx((f0 + LN2) / 2, rel=1e-5)


def test_contrastive_loss_both_labels():
    # d = |0.9 - 0.6| = 0.3 ; real (y=1): d^2 = 0.09 ; fake (y=0): max(1 - 0.3, 0)^2 = 0.49
    cont, sync = torch.tensor([[0.9], [0.9]]), torch.tensor([[0.6], [0.6]])
    assert contrastive_correlation_loss(cont[:1], sync[:1], torch.tensor([0])).item() == pytest.approx(0.09)
    assert contrastive_correlation_loss(cont[:1], sync[:1], torch.tensor([1])).item() == pytest.approx(0.49)
    assert contrastive_correlation_loss(cont, sync, torch.tensor([0, 1])).item() == pytest.approx((0.09 + 0.49) / 2)
    # margin: with m = 0.2 < d the fake term vanishes
    assert contrastive_correlation_loss(cont[:1], sync[:1], torch.tensor([1]), margin=0.2).item() == 0.0


def test_contrastive_loss_averages_frames_and_only_sync_gets_gradient():
    # frames d = 0.5, 0.1 for a real video: (0.25 + 0.01)/2
    cont = torch.tensor([[1.0, 0.5]], requires_grad=True)
    sync = torch.tensor([[0.5, 0.4]], requires_grad=True)
    loss = contrastive_correlation_loss(cont, sync, torch.tensor([0]))
    assert loss.item() == pytest.approx(0.13)
    loss.backward()
    assert cont.grad is None and sync.grad is not None


def test_ecl_losses_switches():
    torch.manual_seed(0)
    logits, label = torch.randn(2, 2), torch.tensor([0, 1])
    f_a, f_v = torch.randn(2, 5, 8), torch.randn(2, 5, 8)
    p_a, p_v = torch.softmax(torch.randn(2, 5, 7), -1), torch.softmax(torch.randn(2, 5, 7), -1)
    full = ecl_losses(logits, label, f_a, f_v, p_a, p_v)
    assert set(full) == {"cls", "dist", "contra"}
    sync, cont = correlation_prediction(f_a, f_v), js_soft_label(p_a, p_v)
    assert full["dist"].item() == pytest.approx(correlation_distillation_loss(sync, cont).item())
    no_cons = ecl_losses(logits, label, f_a, f_v, p_a, p_v, use_contrastive=False)
    assert set(no_cons) == {"cls", "dist"} and torch.equal(no_cons["dist"], full["dist"])
    assert set(ecl_losses(logits, label, use_distillation=False, use_contrastive=False)) == {"cls"}
