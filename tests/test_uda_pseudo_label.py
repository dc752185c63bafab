"""Tests for dgsslib.uda.pseudo_label (Rein-A pseudo-labels and query-wise losses); tiny tensors."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from dgsslib.heads.mask2former import Mask2FormerHead, SetCriterion
from dgsslib.uda.pseudo_label import (QueryTargets, confidence, pseudo_labels, query_losses, query_targets,
                                      semantic_map)


def outputs(b=2, q=3, k=4, h=5, w=6, seed=0, scale=2.0):
    g = torch.Generator().manual_seed(seed)
    return (scale * torch.randn(b, q, k + 1, generator=g), scale * torch.randn(b, q, h, w, generator=g))


# ---------------------------------------------------------------- semantic_map
def test_semantic_map_matches_direct_loop():
    logits, masks = outputs()
    b, q, k1 = logits.shape
    S = semantic_map(logits, masks)
    ref = torch.zeros(b, k1 - 1, *masks.shape[-2:])
    for i in range(b):
        for c in range(k1 - 1):
            for j in range(q):
                p = math.exp(logits[i, j, c]) / sum(math.exp(v) for v in logits[i, j].tolist())
                ref[i, c] += p * torch.sigmoid(masks[i, j])
    assert S.shape == (b, k1 - 1, 5, 6)
    torch.testing.assert_close(S, ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("size", [None, (10, 12), (3, 7)])
def test_semantic_map_matches_head_semantic_logits(size):
    logits, masks = outputs(seed=1)
    ref = Mask2FormerHead.semantic_logits({"pred_logits": logits, "pred_masks": masks},
                                          size or tuple(masks.shape[-2:]))
    torch.testing.assert_close(semantic_map(logits, masks, size), ref, rtol=1e-6, atol=1e-6)


def test_semantic_map_rejects_bad_shapes():
    logits, masks = outputs()
    with pytest.raises(ValueError):
        semantic_map(logits[:, :2], masks)
    with pytest.raises(ValueError):
        semantic_map(logits, masks[:, :, 0])


# ---------------------------------------------------------------- pseudo_labels
def test_pseudo_labels_q_labels_and_margins_against_direct_count():
    g = torch.Generator().manual_seed(2)
    S = torch.rand(3, 4, 8, 5, generator=g) ** 4  # spread-out scores: some pixels pass τ, some do not
    tau = 0.6
    labels, weight, q = pseudo_labels(S, tau=tau, score="normalized", ignore_top=2, ignore_bottom=3)
    assert labels.dtype == torch.long and labels.shape == (3, 8, 5)
    for b in range(3):
        count = 0
        for y in range(8):
            for x in range(5):
                col = S[b, :, y, x].tolist()
                assert labels[b, y, x] == col.index(max(col))
                count += max(col) / sum(col) > tau
        assert q[b] == pytest.approx(count / 40)
    assert 0 < q.min() and q.max() < 1  # the example exercises both sides of τ
    # margins are zero, the rest is q; q is counted before the margins are cut
    assert (weight[:, :2] == 0).all() and (weight[:, -3:] == 0).all()
    torch.testing.assert_close(weight[:, 2:5], q[:, None, None].expand(3, 3, 5))
    _, w0, q0 = pseudo_labels(S, tau=tau)
    torch.testing.assert_close(q0, q)
    torch.testing.assert_close(w0, q[:, None, None].expand(3, 8, 5))
    # batch scope: DAFormer's code scalar
    _, wb, qb = pseudo_labels(S, tau=tau, q_scope="batch")
    torch.testing.assert_close(qb, q.mean().expand(3))
    torch.testing.assert_close(wb, qb[:, None, None].expand(3, 8, 5))


def test_raw_score_is_degenerate_where_normalized_passes():
    """Query 0 says class 0 (p = 0.9) with mask σ = 0.9 everywhere; query 1 is void (p = 0.997).
    Class 0 clearly dominates (S_0 ≈ 0.81 vs ≈ 0.01), yet max S < 0.968 at every pixel."""
    p0 = torch.tensor([0.9, 0.01, 0.01, 0.08])
    p1 = torch.tensor([0.001, 0.001, 0.001, 0.997])
    logits = torch.stack([p0.log(), p1.log()])[None]                    # 1 × 2 × (3+1)
    masks = torch.stack([torch.full((4, 4), math.log(9.0)), torch.zeros(4, 4)])[None]  # σ = 0.9, 0.5
    S = semantic_map(logits, masks)
    assert S.amax(1).max() < 0.968
    assert (confidence(S, "normalized") > 0.968).all()
    labels_r, w_r, q_r = pseudo_labels(S, score="raw")
    labels_n, w_n, q_n = pseudo_labels(S, score="normalized")
    _, _, q_s = pseudo_labels(S, score="softmax")
    assert (labels_r == 0).all() and (labels_n == 0).all()
    assert q_r.item() == 0.0 and q_s.item() == 0.0 and (w_r == 0).all()
    assert q_n.item() == 1.0 and (w_n == 1).all()


def test_pseudo_labels_rejects_bad_input():
    S = torch.rand(1, 3, 4, 4)
    for kwargs in (dict(score="maxprob"), dict(tau=1.5), dict(ignore_top=-1), dict(q_scope="pixel")):
        with pytest.raises(ValueError):
            pseudo_labels(S, **kwargs)
    with pytest.raises(ValueError):
        pseudo_labels(S[0])


# ---------------------------------------------------------------- query targets and losses
def test_query_targets_hard_class_and_binary_mask():
    logits, masks = outputs(seed=3)
    t = query_targets(logits, masks)
    assert torch.equal(t.labels, logits.argmax(-1))  # void (index K) included
    assert torch.equal(t.masks, (masks > 0).float())
    torch.testing.assert_close(query_targets(logits, masks, binary=False).masks, masks.sigmoid())


def direct_query_losses(sl, sm, labels, tmasks, nw=0.1):
    """Loop reference: weighted CE over all queries; BCE + dice on non-void queries, per pixel."""
    k = sl.shape[-1] - 1
    num = den = 0.0
    bce = dice = 0.0
    n = 0
    for b in range(sl.shape[0]):
        for i in range(sl.shape[1]):
            y = int(labels[b, i])
            w = nw if y == k else 1.0
            num += w * -F.log_softmax(sl[b, i], -1)[y].item()
            den += w
            if y != k:
                n += 1
                x, t = sm[b, i].flatten(), tmasks[b, i].flatten()
                bce += F.binary_cross_entropy_with_logits(x, t).item()
                s = x.sigmoid()
                dice += 1 - ((2 * (s * t).sum() + 1) / (s.sum() + t.sum() + 1)).item()
    n = max(n, 1)
    return 2.0 * num / den, 5.0 * bce / n, 5.0 * dice / n


def test_query_losses_full_resolution_match_direct_loop():
    tl, tm = outputs(b=2, q=5, k=3, seed=4)
    sl, sm = outputs(b=2, q=5, k=3, seed=5)
    t = query_targets(tl, tm)
    assert (t.labels == 3).any() and (t.labels != 3).any()  # both void and non-void queries
    out = query_losses(sl, sm, t)
    ref = direct_query_losses(sl, sm, t.labels, t.masks)
    for key, r in zip(("loss_cls", "loss_mask", "loss_dice"), ref):
        assert out[key].item() == pytest.approx(r, rel=1e-5)
    assert out["loss"].item() == pytest.approx(sum(ref), rel=1e-5)


def test_query_losses_equal_set_criterion_with_identity_matching():
    """Point-sampled path = the repo's Mask2Former criterion with query i ↔ target query i."""
    tl, tm = outputs(b=2, q=5, k=3, h=8, w=8, seed=6)
    sl, sm = outputs(b=2, q=5, k=3, h=8, w=8, seed=7)
    t = query_targets(tl, tm)
    ours = query_losses(sl, sm, t, num_points=50, generator=torch.Generator().manual_seed(0))
    crit = SetCriterion(3, num_points=50)
    keep = [(t.labels[b] != 3).nonzero()[:, 0] for b in range(2)]
    ref = crit.single(sl, sm, [t.labels[b][keep[b]] for b in range(2)], [t.masks[b][keep[b]] for b in range(2)],
                      [(idx, torch.arange(len(idx))) for idx in keep], torch.Generator().manual_seed(0))
    for key in ("loss_cls", "loss_mask", "loss_dice"):
        torch.testing.assert_close(ours[key], ref[key], rtol=1e-5, atol=1e-6)


def test_query_losses_near_zero_on_own_targets_positive_otherwise():
    tl, tm = outputs(b=2, q=4, k=3, seed=8)
    t = query_targets(tl, tm)
    perfect_logits = 30.0 * F.one_hot(t.labels, 4).float()             # B × Q × (K+1)
    perfect_masks = 30.0 * (2 * t.masks - 1)                            # ±30 → σ ≈ t
    good = query_losses(perfect_logits, perfect_masks, t)
    assert good["loss"].item() < 1e-4
    sl, sm = outputs(b=2, q=4, k=3, seed=9)
    bad = query_losses(sl, sm, t)
    assert bad["loss_cls"].item() > 0.1 and bad["loss_mask"].item() > 0.1 and bad["loss_dice"].item() > 0.1
    # the point-sampled variant reads the same-grid binary target bilinearly: soft edges, so even
    # the perfect student keeps a mask-loss floor (why the default is every pixel)
    gen = torch.Generator().manual_seed(0)
    pts = query_losses(perfect_logits, perfect_masks, t, num_points=64, generator=gen)
    assert pts["loss_cls"].item() < 1e-4 and pts["loss_mask"].item() > 1.0


def test_query_losses_gradients_reach_the_student_only():
    tl, tm = outputs(seed=10)
    tl.requires_grad_(True)
    tm.requires_grad_(True)
    t = query_targets(tl, tm)
    assert not t.masks.requires_grad
    sl, sm = outputs(seed=11)
    sl.requires_grad_(True)
    sm.requires_grad_(True)
    query_losses(sl, sm, t, num_points=None)["loss"].backward()
    assert sl.grad is not None and sl.grad.abs().sum() > 0 and sm.grad.abs().sum() > 0
    assert tl.grad is None and tm.grad is None


def test_query_losses_pair_query_i_with_query_i():
    tl, tm = outputs(b=1, q=4, k=3, seed=12)
    tl[0, :, :3] += torch.eye(4)[:, :3] * 10  # queries 0-2 confident in classes 0-2, query 3 void-ish
    tl[0, 3, 3] += 10
    t = query_targets(tl, tm)
    sl, sm = outputs(b=1, q=4, k=3, seed=13)
    base = query_losses(sl, sm, t, num_points=None)["loss"]
    perm = torch.tensor([1, 2, 0, 3])
    swapped = query_losses(sl[:, perm], sm[:, perm], t, num_points=None)["loss"]
    assert abs(swapped.item() - base.item()) > 1e-3  # no matching: a permuted student is penalised
    both = query_losses(sl[:, perm], sm[:, perm], QueryTargets(t.labels[:, perm], t.masks[:, perm]),
                        num_points=None)["loss"]
    torch.testing.assert_close(both, base)  # relabelling student and teacher together changes nothing
    # the mask of a query whose teacher class is void is not supervised
    sm2 = sm.clone()
    sm2[0, 3] += 5.0
    assert t.labels[0, 3] == 3
    torch.testing.assert_close(query_losses(sl, sm2, t, num_points=None)["loss"], base)


def test_query_losses_all_void_gives_zero_mask_terms_with_graph():
    sl, sm = outputs(seed=14)
    sm.requires_grad_(True)
    t = QueryTargets(torch.full(sl.shape[:2], 4), torch.zeros_like(sm))
    out = query_losses(sl, sm, t)
    assert out["loss_mask"].item() == 0.0 and out["loss_dice"].item() == 0.0
    out["loss"].backward()  # connected to the graph, no error
    assert sm.grad is not None


def test_query_losses_rejects_mismatched_targets():
    sl, sm = outputs()
    t = query_targets(*outputs(q=2))
    with pytest.raises(ValueError):
        query_losses(sl, sm, t)
    t2 = query_targets(*outputs(h=3, w=3))
    with pytest.raises(ValueError):
        query_losses(sl, sm, t2, num_points=None)
    with pytest.raises(ValueError):
        query_losses(sl, sm, QueryTargets(torch.full(sl.shape[:2], 9), torch.zeros_like(sm)))


def test_mask_weighted_score_is_the_mask_weighted_class_probability():
    """conf = max_k Σ_q p_qk σ(m_q) / Σ_q σ(m_q) (void in the denominator), against a direct loop."""
    from dgsslib.recipes.rein_a import mask_mass
    g = torch.Generator().manual_seed(3)
    logits, masks = torch.randn(2, 5, 4, generator=g), torch.randn(2, 5, 6, 7, generator=g) * 2
    S = semantic_map(logits, masks)
    mass = masks.sigmoid().sum(1)
    conf = confidence(S, "mask_weighted", mass)
    p, s = logits.softmax(-1), masks.sigmoid()
    for b in range(2):
        for i in range(6):
            for j in range(7):
                direct = max(sum(p[b, q, k] * s[b, q, i, j] for q in range(5)) / s[b, :, i, j].sum() for k in range(3))
                assert conf[b, i, j].item() == pytest.approx(direct.item(), rel=1e-5)
    assert (conf <= 1).all()

    class Model:  # the model's resize/crop path: S at the input size
        def semantic_logits(self, images, out):
            return semantic_map(out["pred_logits"], out["pred_masks"], size=images.shape[-2:])

    x = torch.zeros(2, 3, 12, 14)
    direct = F.interpolate(masks, size=(12, 14), mode="bilinear", align_corners=False).sigmoid().sum(1)
    assert torch.allclose(mask_mass(Model(), x, {"pred_logits": logits, "pred_masks": masks}), direct, atol=1e-5)
    with pytest.raises(ValueError, match="mass"):
        confidence(S, "mask_weighted")


def test_mask_weighted_is_low_where_only_void_queries_cover_the_pixel():
    """normalized's caveat: one query, 97 % void, 3 % class 0 -> max S / Σ S = 1, but the pixel is not confident."""
    logits = torch.tensor([[[math.log(0.03), math.log(0.0001), math.log(0.9699)]]])   # 1 × 1 × (2+1)
    masks = torch.full((1, 1, 3, 3), 4.0)
    S = semantic_map(logits, masks)
    assert (confidence(S, "normalized") > 0.99).all()
    assert (confidence(S, "mask_weighted", masks.sigmoid().sum(1)) < 0.05).all()
    _, _, q = pseudo_labels(S, 0.968, "mask_weighted", mass=masks.sigmoid().sum(1))
    assert q.item() == 0.0
