"""Tests for dgsslib.heads.mask2former (tiny configs; one CPU core, well under 90 s)."""
from __future__ import annotations

import itertools
import math

import pytest
import torch
import torch.nn.functional as F

from dgsslib.heads.mask2former import (HungarianMatcher, Mask2FormerHead, MSDeformAttn, SinePositionalEncoding,
                                       match_cost, point_sample, rand_points, uncertain_points)
from dgsslib.heads.mask2former.transformer_decoder import attention_mask

TINY = dict(num_classes=4, num_queries=8, hidden_dim=32, enc_layers=2, dec_layers=3, num_heads=4,
            dim_feedforward=64, enc_ffn=64, num_points_train=256)


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


# ---------------------------------------------------------------- hand-written references
def bilinear(img: torch.Tensor, x: float, y: float) -> torch.Tensor:
    """Read C × H × W at normalised (x, y) ∈ [0, 1]: pixel-centre convention, zero padding."""
    _, h, w = img.shape
    u, v = x * w - 0.5, y * h - 0.5  # continuous pixel coordinates (centres at integers)
    u0, v0 = math.floor(u), math.floor(v)
    out = torch.zeros(img.shape[0], dtype=img.dtype)
    for du in (0, 1):
        for dv in (0, 1):
            uu, vv = u0 + du, v0 + dv
            wgt = (1 - abs(u - uu)) * (1 - abs(v - vv))
            if 0 <= uu < w and 0 <= vv < h:
                out = out + wgt * img[:, vv, uu]
    return out


def direct_cost(cls_logits, mask_logits, gt_labels, gt_masks, coords):
    """Matching cost with explicit loops over predictions, targets and points."""
    q, g = cls_logits.shape[0], gt_labels.shape[0]
    prob = cls_logits.softmax(-1)
    cost = torch.zeros(q, g, dtype=torch.float64)
    pts = [(float(x), float(y)) for x, y in coords]
    pm = [[bilinear(mask_logits[i][None], x, y).item() for x, y in pts] for i in range(q)]
    gm = [[bilinear(gt_masks[j][None].float(), x, y).item() for x, y in pts] for j in range(g)]
    for i in range(q):
        for j in range(g):
            bce = sum(math.log1p(math.exp(-abs(z))) + max(z, 0) - z * t for z, t in zip(pm[i], gm[j])) / len(pts)
            sig = [1 / (1 + math.exp(-z)) for z in pm[i]]
            dice = 1 - (2 * sum(s * t for s, t in zip(sig, gm[j])) + 1) / (sum(sig) + sum(gm[j]) + 1)
            cost[i, j] = -2.0 * prob[i, gt_labels[j]].item() + 5.0 * bce + 5.0 * dice
    return cost


def make_batch(seed: int = 0):
    """2 images 64 × 64 with 4 classes drawn as blobs, an ignore strip, and 4 feature maps."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(64), torch.arange(64), indexing="ij")
    labels = torch.zeros(2, 64, 64, dtype=torch.long)
    labels[0][(yy - 20) ** 2 + (xx - 22) ** 2 < 14 ** 2] = 1
    labels[0][(yy > 36) & (yy < 58) & (xx > 30) & (xx < 60)] = 2
    labels[1][(yy - 40) ** 2 + (xx - 36) ** 2 < 18 ** 2] = 3
    labels[1][(yy > 4) & (yy < 22) & (xx > 6) & (xx < 30)] = 1
    labels[:, :, :3] = 255
    palette = torch.tensor([[0.2, 0.2, 0.2], [1.0, 0.1, 0.1], [0.1, 1.0, 0.2], [0.1, 0.3, 1.0]])
    img = palette[labels.clamp(max=3)].permute(0, 3, 1, 2) + 0.1 * torch.randn(2, 3, 64, 64, generator=g)
    proj = torch.randn(16, 3, generator=g)
    feats = [torch.einsum("oc,bchw->bohw", proj, F.avg_pool2d(img, s)) for s in (4, 8, 16, 32)]
    return feats, labels


# ---------------------------------------------------------------- 1. matcher
@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_matcher_matches_brute_force(seed):
    g = torch.Generator().manual_seed(seed)
    cls_logits = torch.randn(4, 4, generator=g) * 2          # 4 predictions, K = 3 (+ no-object)
    mask_logits = torch.randn(4, 6, 6, generator=g) * 3      # predictions at 1/4 of 24 × 24
    gt_labels = torch.randperm(3, generator=g)               # 3 targets
    gt_masks = torch.rand(3, 24, 24, generator=g) > 0.5
    matcher = HungarianMatcher(num_points=40)
    rows, cols = matcher.match_one(cls_logits, mask_logits, gt_labels, gt_masks, torch.Generator().manual_seed(seed))
    coords = rand_points(1, 40, generator=torch.Generator().manual_seed(seed))[0]  # the same draw
    cost = match_cost(cls_logits, mask_logits, gt_labels, gt_masks, coords)
    ref = direct_cost(cls_logits, mask_logits, gt_labels, gt_masks, coords)
    torch.testing.assert_close(cost.double(), ref, rtol=1e-4, atol=1e-4)
    best = min(itertools.permutations(range(4), 3), key=lambda p: sum(ref[p[j], j] for j in range(3)))
    assert sorted(zip(cols.tolist(), rows.tolist())) == list(enumerate(best))
    assert torch.isclose(cost[rows, cols].sum().double(), sum(ref[best[j], j] for j in range(3)), atol=1e-4)


# ---------------------------------------------------------------- 2. point sampling
def test_point_sample_matches_hand_bilinear():
    img = torch.randn(1, 2, 5, 7)
    coords = torch.rand(1, 30, 2)
    out = point_sample(img, coords)  # 1 × 2 × 30
    for p in range(30):
        torch.testing.assert_close(out[0, :, p], bilinear(img[0], *coords[0, p].tolist()), rtol=1e-5, atol=1e-6)


def test_point_sampling_reproducible():
    logits = torch.randn(3, 1, 16, 16)
    a = uncertain_points(logits, 100, generator=torch.Generator().manual_seed(7))
    b = uncertain_points(logits, 100, generator=torch.Generator().manual_seed(7))
    c = uncertain_points(logits, 100, generator=torch.Generator().manual_seed(8))
    assert a.shape == (3, 100, 2) and torch.equal(a, b) and not torch.equal(a, c)
    assert torch.equal(rand_points(2, 5, generator=torch.Generator().manual_seed(3)),
                       rand_points(2, 5, generator=torch.Generator().manual_seed(3)))


def test_importance_sampling_picks_most_uncertain():
    # ±10 everywhere except a band of 8 columns (x ∈ [4/16, 12/16]) with logit 0
    logits = torch.full((1, 1, 16, 16), 10.0)
    logits[..., ::2, :] = -10.0
    logits[..., 4:12] = 0.0
    n = 200
    pts = uncertain_points(logits, n, 3.0, 0.75, torch.Generator().manual_seed(0))
    k = int(0.75 * n)
    x = pts[0, :k, 0]
    assert ((x > 4 / 16) & (x < 12 / 16)).all()  # every importance point sits in the uncertain band
    # exact rule: the chosen points are the top-k of the candidates by -|logit|
    cand = rand_points(1, 3 * n, generator=torch.Generator().manual_seed(0))
    u = -point_sample(logits, cand)[0, 0].abs()
    chosen_u = -point_sample(logits, pts[:, :k])[0, 0].abs()
    torch.testing.assert_close(chosen_u.sort().values, u.topk(k).values.sort().values)


# ---------------------------------------------------------------- 3. deformable attention
def test_grid_sample_convention():
    img = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
    pts = torch.tensor([[[0.25, 0.25], [0.5, 0.5], [0.75, 0.25], [0.0, 0.0], [0.5, 0.25]]])
    out = point_sample(img, pts)[0, 0]
    # pixel centres at 1/4 and 3/4; the image centre averages all; the corner (-0.5, -0.5 px)
    # reads 1/4 of pixel (0, 0) with zero padding; (0.5, 0.25) halfway between 1 and 2.
    torch.testing.assert_close(out, torch.tensor([1.0, 2.5, 2.0, 0.25, 1.5]))


def test_msdeform_attn_single_level_zero_offsets():
    torch.manual_seed(0)
    attn = MSDeformAttn(16, num_heads=4, num_levels=1, num_points=3)
    with torch.no_grad():
        attn.sampling_offsets.weight.zero_()
        attn.sampling_offsets.bias.zero_()
        attn.attention_weights.weight.normal_()  # any weights: they sum to one per head
    h, w, nq = 5, 7, 6
    value = torch.randn(1, h * w, 16)
    query, pos = torch.randn(1, nq, 16), torch.randn(1, nq, 16)
    ref = torch.rand(1, nq, 2)
    out = attn(query, pos, value, ref, [(h, w)])
    v = attn.value_proj(value)[0].T.reshape(16, h, w)  # hw × C → C × h × w
    for q in range(nq):
        expect = query[0, q] + attn.output_proj(bilinear(v, *ref[0, q].tolist()))
        torch.testing.assert_close(out[0, q], expect, rtol=1e-5, atol=1e-5)


def test_msdeform_attn_two_levels_with_offsets():
    torch.manual_seed(1)
    m, lv, k, c = 2, 2, 2, 8
    attn = MSDeformAttn(c, num_heads=m, num_levels=lv, num_points=k)
    with torch.no_grad():
        attn.sampling_offsets.weight.normal_(0, 0.5)
        attn.attention_weights.weight.normal_()
    shapes = [(3, 4), (5, 6)]
    value = torch.randn(1, 12 + 30, c)
    query, ref = torch.randn(1, 3, c), torch.rand(1, 3, 2)
    out = attn(query, None, value, ref, shapes)
    v = attn.value_proj(value)[0]
    off = attn.sampling_offsets(query)[0].view(3, m, lv, k, 2)
    wts = attn.attention_weights(query)[0].view(3, m, lv * k).softmax(-1).view(3, m, lv, k)
    maps = [v[:12].T.reshape(c, 3, 4), v[12:].T.reshape(c, 5, 6)]
    for q in range(3):
        acc = torch.zeros(c)
        for head in range(m):
            sl = slice(head * c // m, (head + 1) * c // m)
            for li, (hh, ww) in enumerate(shapes):
                for p in range(k):
                    x = ref[0, q, 0].item() + off[q, head, li, p, 0].item() / ww
                    y = ref[0, q, 1].item() + off[q, head, li, p, 1].item() / hh
                    acc[sl] += wts[q, head, li, p] * bilinear(maps[li][sl], x, y)
        torch.testing.assert_close(out[0, q], query[0, q] + attn.output_proj(acc), rtol=1e-5, atol=1e-5)


def test_msdeform_attn_standard_init():
    attn = MSDeformAttn(256, 8, 3, 4)
    assert attn.sampling_offsets.weight.abs().sum() == 0 and attn.attention_weights.weight.abs().sum() == 0
    b = attn.sampling_offsets.bias.view(8, 3, 4, 2)
    torch.testing.assert_close(b[0, 0, :, :], torch.tensor([[1.0, 0.0], [2.0, 0.0], [3.0, 0.0], [4.0, 0.0]]))
    torch.testing.assert_close(b[2, 1, 1], torch.tensor([0.0, 2.0]), atol=1e-6, rtol=0)  # 90°, point 2
    torch.testing.assert_close(b[1, 2, 0], torch.tensor([1.0, 1.0]))                    # 45° onto the square


def test_sine_positional_encoding_formula():
    pe = SinePositionalEncoding(8)(3, 5)  # 1 × 16 × 3 × 5
    assert pe.shape == (1, 16, 3, 5)
    y, x = 2, 4  # zero-based (row, col) → 1-based ramps 3 and 5, normalised by H and W
    ey, ex = 3 / (3 + 1e-6) * 2 * math.pi, 5 / (5 + 1e-6) * 2 * math.pi
    assert math.isclose(pe[0, 0, y, x].item(), math.sin(ey), abs_tol=1e-6)
    assert math.isclose(pe[0, 3, y, x].item(), math.cos(ey / 10000 ** (2 / 8)), abs_tol=1e-6)
    assert math.isclose(pe[0, 8 + 2, y, x].item(), math.sin(ex / 10000 ** (2 / 8)), abs_tol=1e-6)


def test_attention_mask_rule():
    logits = torch.tensor([[[[1.0, -1.0], [-2.0, 3.0]], [[-1.0, -1.0], [-1.0, -1.0]]]])  # 1 × 2 × 2 × 2
    blocked = attention_mask(logits, (2, 2), num_heads=3)
    assert blocked.shape == (3, 2, 4)
    assert blocked[0, 0].tolist() == [False, True, True, False]
    assert not blocked[:, 1].any()  # fully blocked row → attends everywhere


# ---------------------------------------------------------------- 4. overfit one batch
def test_overfit_single_batch():
    torch.manual_seed(0)
    feats, labels = make_batch()
    head = Mask2FormerHead([16] * 4, **TINY)
    opt = torch.optim.Adam(head.parameters(), lr=1e-3)
    g = torch.Generator().manual_seed(0)
    first = None
    for _ in range(150):
        loss = head.loss(head(feats), labels, g)["loss"]
        first = loss.item() if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    head.eval()
    with torch.no_grad():
        out = head(feats)
        last = head.loss(out, labels, g)["loss"].item()
        pred = head.semantic_logits(out, (64, 64)).argmax(1)
    valid = labels != 255
    acc = (pred == labels)[valid].float().mean().item()
    print(f"overfit: loss {first:.3f} -> {last:.3f} ({first / last:.1f}x), pixel acc {acc:.4f}")
    assert first / last >= 5.0
    assert acc >= 0.95


# ---------------------------------------------------------------- 5. shapes and inference
def test_shapes_and_semantic_logits():
    torch.manual_seed(0)
    feats, labels = make_batch()
    head = Mask2FormerHead([16] * 4, **TINY)
    out = head(feats)
    outs = out["aux_outputs"] + [out]
    assert len(outs) == TINY["dec_layers"] + 1
    for o in outs:
        assert o["pred_logits"].shape == (2, 8, 5) and o["pred_masks"].shape == (2, 8, 16, 16)
    seg = head.semantic_logits(out, (64, 64))
    assert seg.shape == (2, 4, 64, 64)
    up = F.interpolate(out["pred_masks"], size=(64, 64), mode="bilinear", align_corners=False).sigmoid()
    prob = out["pred_logits"].softmax(-1)
    ref = torch.zeros(2, 4, 64, 64)
    for q in range(8):
        ref += prob[:, q, :4, None, None] * up[:, q, None]
    torch.testing.assert_close(seg, ref, rtol=1e-5, atol=1e-5)
    losses = head.loss(out, labels, torch.Generator().manual_seed(0))
    assert {"loss", "loss_cls", "loss_mask", "loss_dice", "d0.loss_cls", "d2.loss_dice"} <= set(losses)
    assert len(losses) == 3 * 4 + 1
    torch.testing.assert_close(losses["loss"], sum(v for k, v in losses.items() if k != "loss"))
    again = head.loss(out, labels, torch.Generator().manual_seed(0))
    assert all(torch.equal(losses[k], again[k]) for k in losses)  # seeded → identical
    with pytest.raises(ValueError, match="query_source='learned'"):
        head(feats, torch.randn(8, 32))


def test_external_queries_and_wrong_count():
    torch.manual_seed(0)
    feats, labels = make_batch()
    head = Mask2FormerHead([16] * 4, **TINY, query_source="external")
    assert hasattr(head, "querys2feat") and not hasattr(head, "query_feat") and not hasattr(head, "query_embed")
    out = head(feats, torch.randn(8, 32))
    assert out["pred_masks"].shape == (2, 8, 16, 16)
    with pytest.raises(ValueError, match="Rein token length"):
        head(feats, torch.randn(10, 32))
    with pytest.raises(ValueError, match="needs the Rein queries"):
        head(feats)
    sam = Mask2FormerHead([16] * 4, **TINY, query_source="external", replace_query_feat=False)
    assert hasattr(sam, "query_feat") and not hasattr(sam, "querys2feat")
    assert sam(feats, torch.randn(8, 32))["pred_logits"].shape == (2, 8, 5)


def test_ignore_only_image_and_bf16_autocast():
    torch.manual_seed(0)
    feats, labels = make_batch()
    labels[1] = 255  # an image with no target at all
    head = Mask2FormerHead([16] * 4, **TINY)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = head(feats)
        losses = head.loss(out, labels, torch.Generator().manual_seed(0))
        seg = head.semantic_logits(out, (64, 64))
    assert losses["loss"].dtype == torch.float32 and torch.isfinite(losses["loss"])
    assert seg.dtype == torch.float32 and torch.isfinite(seg).all()
    losses["loss"].backward()


# ---------------------------------------------------------------- 6. paper-config size
def test_paper_config_parameter_count():
    head = Mask2FormerHead([1024] * 4, num_classes=19, num_queries=100, query_source="external")
    count = lambda m: sum(p.numel() for p in m.parameters())
    n = count(head)
    pd, td = head.pixel_decoder, head.transformer_decoder
    parts = {"pixel_decoder.input_convs": count(pd.input_convs), "pixel_decoder.level_encoding": count(pd.level_encoding),
             "pixel_decoder.layers(6)": count(pd.layers), "pixel_decoder.lateral_conv": count(pd.lateral_conv),
             "pixel_decoder.output_conv": count(pd.output_conv), "pixel_decoder.mask_feature": count(pd.mask_feature),
             "decoder.layers(9)": count(td.layers), "decoder.post_norm": count(td.post_norm),
             "decoder.level_embed": count(td.level_embed), "decoder.cls_embed": count(td.cls_embed),
             "decoder.mask_embed": count(td.mask_embed), "querys2feat": count(head.querys2feat)}
    print(f"paper-config Mask2Former head: {n:,} parameters")
    for k, v in parts.items():
        print(f"  {k:32s} {v:>12,}")
    assert sum(parts.values()) == n
    assert abs(n - 20.6e6) <= 0.02 * 20.6e6
    assert n == 20_579_796  # hand count: 6,101,440 pixel decoder + 14,412,564 decoder + 65,792 link


# ---------------------------------------------------------------- 7. gradients reach the Rein queries
@pytest.mark.parametrize("replace", [True, False])
def test_gradients_reach_external_queries(replace):
    torch.manual_seed(0)
    feats, labels = make_batch()
    head = Mask2FormerHead([16] * 4, **TINY, query_source="external", replace_query_feat=replace)
    queries = torch.randn(8, 32, requires_grad=True)
    head.loss(head(feats, queries), labels, torch.Generator().manual_seed(0))["loss"].backward()
    assert queries.grad is not None and torch.isfinite(queries.grad).all() and queries.grad.abs().sum() > 0
