"""VFMSeg: VFMNet/MGRNet shapes, the paper decoder and feature masking against direct computations,
the coarse-to-fine window rule on a stub coarse output, the window grid, the official LoRA (frozen
backbone, exact counts, per-VFM targets, taps/lr switches), the two-view recipe's losses and detached
context, and the smoke contract (``results.json`` records the refined-window fraction)."""
import json
import math
import os
import subprocess
import sys
from contextlib import nullcontext

import pytest
import torch

from dgsslib.adapters.vfmseg_lora import coarse_to_fine, confident_share, window_boxes
from dgsslib.engine.validation import validate
from dgsslib.heads.mgrnet import Attention, MGRNetDecoder
from dgsslib.heads.vfmnet import VFMNetDecoder
from dgsslib.heads.vfmseg import VFMSegHead
from dgsslib.model import build_model
from dgsslib.params import build_meta, count_params, vfmseg_decoder_rows
from dgsslib.profiles import load_config_file, merge, resolve
from dgsslib.recipes.vfmseg import VFMSegTwoView

from test_train import ROOT

MINI = ROOT / "configs" / "vfmseg" / "mini.yaml"


def _cfg(**recipe_options):
    cfg = merge(resolve("smoke"), load_config_file(MINI))
    cfg["data"].update(train_length=8, eval_length=2, eval=["synthetic:citys"])
    cfg["train"].update(max_steps=1, batch_size=2)
    cfg["recipe_options"] = {**cfg["recipe_options"], **recipe_options}
    return validate(cfg)


def _taps(B=2, C=32, h=8, w=16, n=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(B, C, h, w, generator=g) for _ in range(n)]


# ------------------------------------------------------------------ decoders
def test_shapes_at_one_quarter_and_one_sixteenth():
    """Patch 16, a 128×256 crop: token grid 8×16; VFMNet at 1/4 (32×64), MGRNet at 1/16 (8×16)."""
    head = VFMSegHead([32] * 4, num_classes=19).eval()
    feats = _taps()
    coarse = head(feats)["logits"]
    assert coarse.shape == (2, 19, 128 // 4, 256 // 4)
    fine = head.refine(feats, torch.randn(2, 19, 64, 64))["logits"]   # context of any size
    assert fine.shape == (2, 19, 128 // 16, 256 // 16)
    assert head.semantic_logits({"logits": fine}, (128, 256)).shape == (2, 19, 128, 256)
    assert head.refine.mask_embed(torch.randn(2, 19, 32, 64)).shape == (2, 256, 8, 16)  # 4× grid -> grid
    # fuse width = embedding width (1024 for ViT-L), then C/2 and 256 as the official LinearHead
    v = VFMNetDecoder([1024] * 4)
    assert (v.fuse[0].in_channels, v.fuse[0].out_channels, v.up1[0].out_channels, v.up2[0].out_channels) == \
        (4096, 1024, 512, 256)
    with pytest.raises(ValueError, match="decoder"):
        MGRNetDecoder([32] * 4, decoder="both")


def test_paper_decoder_is_F_plus_softmax_QK_V():
    torch.manual_seed(0)
    m = MGRNetDecoder([16] * 4, num_classes=5, channels=32, decoder="paper", paper_dim=8).eval()
    feats, ctx = _taps(B=1, C=16, h=3, w=4), torch.randn(1, 5, 6, 8)
    with torch.no_grad():
        out = m(feats, ctx)["logits"]
        f, y, Q, K, V, Wt = _paper_direct(m, feats, ctx)
    f2 = f + Wt @ V                                           # F′ = F + W·V
    direct = (f2 @ m.cls.weight[:, :, 0, 0].T + m.cls.bias).T.reshape(1, 5, 3, 4)
    assert torch.allclose(out, direct, atol=1e-5)


def _paper_direct(m, feats, ctx):
    f = m.fuse(torch.cat(feats, 1))[0].flatten(1).T          # N×C
    y = m.embed_mask(ctx, (3, 4))[0].flatten(1).T            # M×C
    a = m.attn
    Q, K, V = f @ a.q.weight.T + a.q.bias, y @ a.k.weight.T + a.k.bias, y @ a.v.weight.T + a.v.bias
    Wt = torch.zeros(12, 12)
    for i in range(12):                                       # softmax row by row, d = 8
        s = torch.tensor([float(Q[i] @ K[j]) / math.sqrt(8) for j in range(12)])
        Wt[i] = s.exp() / s.exp().sum()
    return f, y, Q, K, V, Wt


def test_official_attention_is_eight_heads_of_64():
    torch.manual_seed(0)
    att = Attention(32, 32, heads=8, head_dim=64, dropout=0.1).eval()
    x, c = torch.randn(1, 6, 32), torch.randn(1, 5, 32)
    q, k, v = x[0] @ att.to_q.weight.T, c[0] @ att.to_k.weight.T, c[0] @ att.to_v.weight.T
    heads = [torch.softmax(q[:, 64 * h:64 * (h + 1)] @ k[:, 64 * h:64 * (h + 1)].T / 8.0, -1) @ v[:, 64 * h:64 * (h + 1)]
             for h in range(8)]
    direct = torch.cat(heads, 1) @ att.to_out[0].weight.T + att.to_out[0].bias
    assert torch.allclose(att(x, c)[0], direct, atol=1e-5)
    m = MGRNetDecoder([32] * 4)
    assert len(m.blocks) == 3 and m.blocks[0].attn1.to_q.out_features == 512 and m.blocks[0].ff.proj.out_features == 2048


def test_feature_masking_replaces_exactly_the_drawn_positions():
    m = MGRNetDecoder([8] * 4, num_classes=3, channels=32, mask_ratio=0.2).train()
    f = torch.randn(2, 32, 6, 7)
    g = torch.Generator().manual_seed(3)
    v = torch.rand(2, 1, 6, 7, generator=torch.Generator().manual_seed(3))   # the same draw
    out, keep = m.mask_features(f, g)
    assert torch.equal(keep, v > 0.2) and 0 < int((~keep).sum()) < keep.numel()
    kept = keep.expand_as(f)
    assert torch.equal(out[kept], f[kept])                                   # M = 1: F
    tok = m.mask_token.expand(2, 32, 6, 7)
    assert torch.equal(out[~kept], tok[~kept].detach())                      # M = 0: T
    assert m.mask_features(f, g, active=False)[1] is None
    m.eval()
    same, none = m.mask_features(f, g)
    assert none is None and same is f                                        # off in eval
    feats, ctx = _taps(B=1, C=8, h=4, w=4), torch.randn(1, 3, 8, 8)
    assert torch.equal(m(feats, ctx, torch.Generator().manual_seed(1))["logits"],
                       m(feats, ctx, torch.Generator().manual_seed(2))["logits"])


# ------------------------------------------------------------------ inference
@pytest.mark.parametrize("H,W,crop,stride",
                         [(1024, 2048, 512, 320), (112, 224, 56, 35), (100, 37, 30, 20), (20, 20, 64, 32)])
def test_window_grid_count_and_coverage(H, W, crop, stride):
    boxes = window_boxes(H, W, crop, stride)
    ny = max(math.ceil((H - min(crop, H)) / stride), 0) + 1
    nx = max(math.ceil((W - min(crop, W)) / stride), 0) + 1
    assert len(boxes) == ny * nx
    cover = torch.zeros(H, W)
    for y0, x0, ch, cw in boxes:
        assert 0 <= y0 and y0 + ch <= H and 0 <= x0 and x0 + cw <= W
        cover[y0:y0 + ch, x0:x0 + cw] += 1
    assert (cover > 0).all()
    if (H, W) == (1024, 2048):
        assert len(boxes) == 18  # Cityscapes: 3×6


def _stub_inputs():
    """16×32 'image' whose channels encode (y, x); coarse logits confident except in a few blobs."""
    H, W = 16, 32
    yy, xx = torch.meshgrid(torch.arange(H).float(), torch.arange(W).float(), indexing="ij")
    images = torch.stack([yy, xx, torch.zeros(H, W)])[None]
    coarse = torch.zeros(1, 4, H, W)
    coarse[:, 0] = 20.0                                 # max softmax ≈ 1 > θ
    coarse[:, :, 0:5, 0:5] = 0.0                        # uniform: max softmax 0.25 < θ
    coarse[:, :, 10:16, 26:32] = 0.0
    return images, coarse


def test_coarse_to_fine_refines_exactly_the_low_confidence_windows():
    images, coarse = _stub_inputs()
    crop, stride, theta, c_tau = 8, 5, 0.968, 0.8
    calls = []

    def refine(img, ctx):  # the MGRNet stand-in: remembers its windows (the image encodes y, x), returns 7
        calls.extend((int(i[0, 0, 0]), int(i[1, 0, 0])) for i in img)
        return torch.full_like(ctx, 7.0)

    out, refined = coarse_to_fine(refine, images, coarse, crop, stride, theta, c_tau)
    boxes = window_boxes(16, 32, crop, stride)
    share = [float(confident_share(coarse[:, :, y:y + h, x:x + w], theta)) for y, x, h, w in boxes]
    expected = [(y, x) for (y, x, h, w), s in zip(boxes, share) if s < c_tau]
    assert sorted(calls) == sorted(expected) and 0 < len(expected) < len(boxes)
    assert refined[0].tolist() == [s < c_tau for s in share]
    acc, cnt = torch.zeros_like(coarse), torch.zeros(16, 32)
    for (y, x, h, w), s in zip(boxes, share):
        acc[:, :, y:y + h, x:x + w] += 7.0 if s < c_tau else coarse[:, :, y:y + h, x:x + w]
        cnt[y:y + h, x:x + w] += 1
    assert torch.allclose(out, acc / cnt)
    calls.clear()
    same, none = coarse_to_fine(refine, images, coarse, crop, stride, theta, c_tau=0.0)  # C_k < 0 never
    assert not calls and not none.any() and torch.allclose(same, coarse, atol=1e-6)
    _, every = coarse_to_fine(refine, images, coarse, crop, stride, theta, c_tau, refine_all=True)
    assert every.all() and len(calls) == len(boxes)
    # batched windows (2 images, 3 per call) = one by one
    two, ctx2 = torch.cat([images, images.flip(-1)]), torch.cat([coarse, coarse.flip(-1)])
    wobble = lambda img, ctx: ctx * 0.5 + img[:, :1] * 0.01  # noqa: E731  depends on the crop
    a, ra = coarse_to_fine(wobble, two, ctx2, crop, stride, theta, c_tau, window_batch=1)
    b, rb = coarse_to_fine(wobble, two, ctx2, crop, stride, theta, c_tau, window_batch=3)
    assert torch.equal(ra, rb) and ra.any() and torch.allclose(a, b, atol=1e-6)


def test_model_predict_records_and_resets_the_refined_fraction():
    model = build_model(_cfg(), verbose=False).eval()
    x = torch.rand(2, 3, 112, 224)
    out = model.predict(x, "slide", 56, 35)
    st = model.predict_stats()
    assert out.shape == (2, 19, 112, 224) and st["windows"] == 2 * 18 and st["inference"] == "c2f"
    assert st["refine_fraction"] == st["windows_mgrnet"] / 36 and [k for k in st if "refine" in k] == ["refine_fraction"]
    assert model.predict_stats()["windows"] == 0                              # reset
    model.method.c_tau = 0.0                                                  # nothing refined -> stage 1 alone
    up = torch.nn.functional.interpolate(model(torch.nn.functional.interpolate(  # one step from 1/4 (the code)
        x, size=(56, 112), mode="bilinear", align_corners=False))["logits"], size=(112, 224), mode="bilinear",
        align_corners=False)
    assert torch.allclose(model.predict(x, "slide", 56, 35), up, atol=1e-5)
    assert model.predict_stats()["refine_fraction"] == 0.0
    model.predict(x, "whole")
    assert model.predict_stats()["refine_fraction"] is None


# ------------------------------------------------------------------ LoRA, switches, counts
def test_lora_trains_only_lora_and_heads_and_the_backbone_stays_frozen(tmp_path):
    from dgsslib.engine.train import fit
    cfg = _cfg()
    model = build_model(cfg, verbose=False)
    names = [n for n, p in model.named_parameters() if p.requires_grad]
    assert names and all(n.startswith(("method.adapters.", "head.")) for n in names)
    d, depth = 64, 4                                            # the smoke ViT
    assert sorted(model.method.adapters) == sorted(f"blocks_{i}_attn_qkv" for i in range(depth))
    assert model.method.num_trainable() == depth * (32 * d + 3 * d * 32)   # one A (r×d), one B (3d×r) per block
    before = {k: v.clone() for k, v in model.vfm.model.state_dict().items()}
    fit(cfg, tmp_path, model=model, progress=False)
    assert all(torch.equal(before[k], v) for k, v in model.vfm.model.state_dict().items())
    assert any(a.lora_B.abs().sum() > 0 for a in model.method.adapters.values())  # B moved from 0


def test_official_targets_per_vfm_taps_and_lr_switches():
    assert count_params("dinov2_l", "vfmseg")["trainable"] == 24 * (1024 * 32 + 32 * 3072)  # 3,145,728
    keys = lambda bb: sorted({k.split("_", 2)[2] for k in build_meta(bb, "vfmseg")[1].adapters})  # noqa: E731
    assert keys("eva02_l") == ["attn_k_proj", "attn_proj", "attn_q_proj", "attn_v_proj"]
    assert keys("clip_l") == ["attn_proj", "mlp_fc1", "mlp_fc2"]
    assert keys("sam_h") == ["attn_qkv"]
    with pytest.raises(ValueError, match="official"):
        build_meta("mae_h", "vfmseg")
    assert build_meta("dinov2_l", "vfmseg")[0].out_indices == (7, 11, 15, 23)
    assert build_meta("dinov2_l", "vfmseg", {"taps": "paper"})[0].out_indices == (5, 11, 17, 23)
    from dgsslib.optim import build_optimizer
    cfg = _cfg()
    cfg["method_options"]["backbone_lr"] = "paper"
    model = build_model(cfg, verbose=False)
    opt = build_optimizer(model, {"lr": 1e-4, "weight_decay": 0.05})
    lrs = {n: g["base_lr"] for g in opt.param_groups for n in g["names"]}
    assert all(lr == pytest.approx(1e-5) for n, lr in lrs.items() if n.startswith("method."))
    assert all(lr == pytest.approx(1e-4) for n, lr in lrs.items() if n.startswith("head."))
    assert len(lrs) == len([p for p in model.parameters() if p.requires_grad])


def test_decoder_parameter_counts_at_dinov2_l_widths():
    rows = {(r["head"], r["options"].get("decoder")): r["params"] for r in vfmseg_decoder_rows()}
    vfmnet = 4096 * 1024 + 2 * 1024 + (1024 * 512 * 4 + 512) + 2 * 512 + (512 * 256 * 4 + 256) + (256 * 19 + 19)
    common = (4096 * 256 + 256) + 2 * 256 + (19 * 64 * 4 + 64) + 128 + (64 * 128 * 4 + 128) + 256 \
        + (128 * 256 + 256) + 512 + 256 + (256 * 19 + 19)
    attn = 3 * 256 * 512 + 512 * 256 + 256
    block = 3 * 512 + 2 * attn + (256 * 2048 + 2048) + (1024 * 256 + 256)
    assert rows[("vfmnet", None)] == vfmnet == 6_824_467
    assert rows[("mgrnet", "official")] == common + 512 + 3 * block == 6_644_819
    assert rows[("mgrnet", "paper")] == common + 3 * (256 * 256 + 256) == 1_323_603
    assert rows[("vfmseg", "official")] == vfmnet + 6_644_819 and rows[("vfmseg", "paper")] == vfmnet + 1_323_603


def test_auto_geometry_gives_the_official_numbers_and_scales_for_mini():
    rec = VFMSegTwoView()
    assert rec.geometry((1024, 1024)) == (512, 32) and rec.geometry((112, 224)) == (56, 4)
    with pytest.raises(ValueError, match="larger"):
        VFMSegTwoView(hr_crop=600).geometry((512, 1024))
    model = build_model(_cfg(), verbose=False).eval()
    seen, real = [], model.forward
    model.forward = lambda x: (seen.append(tuple(x.shape[-2:])), real(x))[1]  # stage 1 is the first forward
    for crop in (56, 512):  # the evaluator's crop; stride auto = 0.625·crop, stage 1 = crop × 2·crop
        model.predict(torch.rand(1, 3, 112, 224), "slide", crop, 341)
        st = model.predict_stats()
        assert (st["window_crop"], st["window_stride"]) == (crop, round(crop * 0.625))
        assert seen[0] == (crop, 2 * crop) and st["windows"] == (18 if crop == 56 else 1)
        seen.clear()


# ------------------------------------------------------------------ the two-view recipe, the contract
def test_two_view_losses_are_finite_and_the_detail_context_is_detached():
    model = build_model(_cfg(), verbose=False).train()
    g = torch.Generator().manual_seed(0)
    batch = {"source": {"image": torch.randint(0, 256, (2, 3, 112, 224), dtype=torch.uint8, generator=g),
                        "label": torch.randint(0, 19, (2, 112, 224), generator=g)}}
    grads = {}
    for lam in (1.0, 0.0):
        rec = VFMSegTwoView(detail_weight=lam, hr_crop=56, divisor=14)
        rec.bind(model, nullcontext, {})
        rec.setup(model, {})
        rec.generator = torch.Generator().manual_seed(5)
        torch.manual_seed(1)                                           # dropout draws
        model.zero_grad(set_to_none=True)
        terms = rec.step(model, batch, 0)
        terms["loss"].backward()
        assert torch.isfinite(terms["loss_coarse"]) and torch.isfinite(terms["loss_detail"])
        expect = float(terms["loss_coarse"] + lam * terms["loss_detail"])
        assert float(terms["loss"].detach()) == pytest.approx(expect, rel=1e-5)
        grads[lam] = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    coarse = [n for n in grads[1.0] if n.startswith("head.coarse.")]
    assert coarse and all(torch.equal(grads[1.0][n], grads[0.0][n]) for n in coarse)  # L_d sends nothing into VFMNet
    lora = [n for n in grads[1.0] if n.startswith("method.")]
    assert any(not torch.equal(grads[1.0][n], grads[0.0][n]) for n in lora)           # but reaches the shared encoder
    assert any(n.startswith("head.refine.") and grads[1.0][n].abs().sum() > 0 for n in grads[1.0])


def test_smoke_contract_writes_the_refined_fraction(tmp_path):
    env = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1")
    r = subprocess.run([sys.executable, "-m", "dgsslib.train", "--profile", "smoke", "--config", str(MINI),
                        "--work-dir", str(tmp_path), "--max-steps", "2", "--no-progress"],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    rec = json.loads((tmp_path / "results.json").read_text())
    for m in rec["metrics"].values():
        keys = [k for k in m if "refine" in k]
        assert keys == ["refine_fraction"] and 0.0 <= m["refine_fraction"] <= 1.0 and m["windows"] == 18 * m["n_images"]
    h = rec["history"][-1]
    assert {"loss_coarse", "loss_detail"} <= set(h)
    assert h["loss"] == pytest.approx(h["loss_coarse"] + h["loss_detail"], rel=1e-4)


def test_fidelity_ck_rule_batch_decides_once_per_batch_from_the_mean():
    """#21 item 4: the official code refines a window for the whole batch when the batch-mean C_k < C_τ."""
    from dgsslib.adapters.vfmseg_lora import coarse_to_fine
    H = W = 8
    coarse = torch.zeros(2, 3, H, W)
    coarse[0, 0] = 20.0                      # image 0: every pixel confident (C_k = 1); image 1: C_k = 0
    images = torch.zeros(2, 3, H, W)
    refine = lambda imgs, ctx: torch.full_like(ctx, 7.0)  # noqa: E731  (a stub MGRNet: marks refined windows)
    per_image, r1 = coarse_to_fine(refine, images, coarse, 8, 8, theta=0.5, c_tau=0.8)
    batch, r2 = coarse_to_fine(refine, images, coarse, 8, 8, theta=0.5, c_tau=0.8, ck_rule="batch")
    assert r1.tolist() == [[False], [True]] and r2.tolist() == [[True], [True]]   # mean C_k = 0.5 < 0.8
    assert torch.equal(per_image[0], coarse[0]) and (batch[0] == 7.0).all() and (per_image[1] == 7.0).all()
    _, r3 = coarse_to_fine(refine, images, coarse, 8, 8, theta=0.5, c_tau=0.4, ck_rule="batch")
    assert r3.tolist() == [[False], [False]]                                      # mean 0.5 >= 0.4: keep both
    one, _ = coarse_to_fine(refine, images[1:], coarse[1:], 8, 8, theta=0.5, c_tau=0.8, ck_rule="batch")
    assert torch.equal(one, per_image[1:])                                        # batch 1: the same rule
