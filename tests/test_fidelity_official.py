"""#21: the places where the kit differed from the official VFMSeg / DAFormer / MIC code or from the
FisherTune and Rein++ papers, each pinned against a direct computation (not the kit's own code path).

| item | default now | option | test |
|---|---|---|---|
| 1 VFMSeg CE over all pixels | ``loss_average=all`` | ``valid`` | test_fidelity_official_loss_average_divides_by_all_pixels |
| 2 stage 1 upsampled once | ``stage1_upsample=once`` | ``twice`` | test_fidelity_official_stage1_is_one_bilinear_step |
| 3 msfull as the code runs | ``inference=full_refine_code`` | ``full_refine`` (paper reading) | test_fidelity_official_full_refine_code_slides_stage1_and_keeps_masking_on |
| 4 C_k per batch | ``ck_rule=image`` (= batch at batch 1) | ``batch`` | tests/test_vfmseg.py::test_fidelity_ck_rule_batch_decides_once_per_batch_from_the_mean |
| 5 mask_token decayed | ``mask_token_wd=official`` | ``none`` | test_fidelity_official_mask_token_gets_weight_decay |
| 6 Kaiming fan_out fusion conv | ``init=official`` | ``torch`` | test_fidelity_official_vfmnet_fusion_conv_is_kaiming_fan_out |
| 7 VFMNet channels C/4 for SAM-H | ``channels=auto`` = max(256, C/4) | an int | test_fidelity_official_vfmnet_channels_follow_the_configs |
| 8 unbuilt variants listed | notebook 30 | -- | test_fidelity_official_variants_not_built_are_listed_in_notebook_30 |
| 9, 10 Causal-Tune fold / radius | -- | ``official_fold`` | tests/test_causal_tune.py::test_fidelity_official_* |
| 11 antithetic pair on one DSU draw | always | -- | test_fidelity_antithetic_signs_see_the_same_dsu_draw |
| 12 per-sample Fisher | ``fisher_samples=batch`` | ``per_sample`` | tests/test_fishertune.py::test_fidelity_per_sample_* |
| 13 eq. 16's T = all steps | ``schedule_steps=total`` | ``t3`` | test_fidelity_schedule_default_is_the_papers_total_steps |
| 14 masked blocks = mean colour | ``mask_fill=mean`` | ``black`` | test_fidelity_official_mask_fill_is_the_mean_colour_and_no_extra_augmentation |
| 15 EMA α | 0.999 (DAFormer/MIC) | ``alpha=0.99`` (DACS) | test_fidelity_ema_alpha_option_is_the_dacs_update |
| 16 ClassMix may paste ignore | ``paste_ignore=true`` | ``false`` | test_fidelity_official_classmix_pastes_ignore_regions |
| 17 no strong aug / q̄ weight in L_mask | off | ``mask_augment``, ``mask_q_weight`` | test_fidelity_official_mask_fill_is_..., test_fidelity_mask_loss_is_unweighted_by_default |
"""
import contextlib
import math

import pytest
import torch
import torch.nn.functional as F

from dgsslib.engine.validation import validate
from dgsslib.heads.vfmnet import VFMNetDecoder, pixel_ce
from dgsslib.model import build_model
from dgsslib.profiles import load_config_file, merge, resolve

from test_train import ROOT


def _vfmseg_cfg(**method_options):
    cfg = merge(resolve("smoke"), load_config_file(ROOT / "configs" / "vfmseg" / "mini.yaml"))
    cfg["data"].update(train_length=8, eval_length=2, eval=["synthetic:citys"])
    cfg["train"].update(max_steps=1, batch_size=2)
    cfg["method_options"] = {**cfg.get("method_options", {}), **method_options}
    return validate(cfg)


# ------------------------------------------------------------------ VFMSeg
def test_fidelity_official_loss_average_divides_by_all_pixels():
    """1: mmseg CE with avg_non_ignore=False = Σ_valid −log p_y / (B·H·W); ours before = / valid count."""
    g = torch.Generator().manual_seed(0)
    logits, labels = torch.randn(2, 5, 6, 7, generator=g), torch.randint(0, 5, (2, 6, 7), generator=g)
    labels[torch.rand(2, 6, 7, generator=g) < 0.3] = 255
    logp = logits.log_softmax(1)
    valid = labels != 255
    direct_sum = sum(-logp[b, labels[b, i, j], i, j] for b in range(2) for i in range(6) for j in range(7) if valid[b, i, j])
    assert torch.allclose(pixel_ce(logits, labels, average="all"), direct_sum / labels.numel(), atol=1e-6)
    assert torch.allclose(pixel_ce(logits, labels, average="valid"), direct_sum / valid.sum(), atol=1e-6)
    head = VFMNetDecoder([8, 8])
    assert head.loss_average == "all"                                         # the official default
    out = {"logits": torch.randn(2, 19, 6, 7, generator=g)}
    assert torch.allclose(head.loss(out, labels)["loss"], pixel_ce(out["logits"], labels, average="all"))
    cfg = _vfmseg_cfg()
    assert cfg["head_options"]["loss_average"] == "all"                       # written to config.json by the CLI
    with pytest.raises(ValueError, match="loss_average"):
        VFMNetDecoder([8, 8], loss_average="mean")


def test_fidelity_official_stage1_is_one_bilinear_step():
    """2: stage 1 = VFMNet's 1/4-resolution logits resized straight to the image (one bilinear step)."""
    model = build_model(_vfmseg_cfg(c_tau=0.0), verbose=False).eval()          # c_tau 0: no window refined
    x = torch.rand(2, 3, 112, 224)
    x_lr = F.interpolate(x, size=(56, 112), mode="bilinear", align_corners=False)
    once = F.interpolate(model(x_lr)["logits"].float(), size=(112, 224), mode="bilinear", align_corners=False)
    got = model.predict(x, "slide", 56, 35)
    assert torch.allclose(got, once, atol=1e-5)
    model.method.stage1_upsample = "twice"
    twice = F.interpolate(model.semantic_logits(x_lr), size=(112, 224), mode="bilinear", align_corners=False)
    assert torch.allclose(model.predict(x, "slide", 56, 35), twice, atol=1e-5)
    assert not torch.allclose(once, twice, atol=1e-4)                         # the two readings differ


def test_fidelity_official_full_refine_code_slides_stage1_and_keeps_masking_on():
    """3: ``full_refine_code`` = stage 1 VFMNet windows on the ×lr image, MGRNet on every window with the
    feature masking on (p of the positions = the mask token), repeatable from ``test_mask_seed``."""
    from dgsslib.inference import slide_scores
    model = build_model(_vfmseg_cfg(inference="full_refine_code"), verbose=False).eval()
    x = torch.rand(1, 3, 112, 224)
    calls = []
    orig = model.head.refine.mask_features

    def spy(f, generator=None, active=None):
        out, keep = orig(f, generator, active)
        calls.append(keep)
        return out, keep
    model.head.refine.mask_features = spy
    a = model.predict(x, "slide", 56, 35)
    assert calls and all(k is not None for k in calls)                        # masking on at test time
    share = torch.cat([k.flatten() for k in calls]).float().mean()
    assert abs(share - 0.8) < 0.1                                             # keep = v > p, p = 0.2
    assert torch.equal(model.predict(x, "slide", 56, 35), a)                  # the same draw every call
    model.head.refine.mask_ratio = 0.0                                        # no masking: compare stage 1 directly
    calls.clear()
    x_lr = F.interpolate(x, size=(56, 112), mode="bilinear", align_corners=False)
    coarse = F.interpolate(slide_scores(model, x_lr, 56, 35), size=(112, 224), mode="bilinear", align_corners=False)
    from dgsslib.adapters.vfmseg_lora import coarse_to_fine, refine_logits
    direct, _ = coarse_to_fine(lambda i, c: refine_logits(model, i, c), x, coarse, 56, 35, refine_all=True)
    assert torch.allclose(model.predict(x, "slide", 56, 35), direct, atol=1e-5)
    st = model.predict_stats()
    assert st["inference"] == "full_refine_code" and st["refine_fraction"] == 1.0


def test_fidelity_official_mask_token_gets_weight_decay():
    """5: the official optimiser decays MGRNet's mask token (0.05); ``mask_token_wd=none`` exempts it."""
    from dgsslib.optim import param_groups
    for opt, wd in (("official", 0.05), ("none", 0.0)):
        model = build_model(_vfmseg_cfg(mask_token_wd=opt), verbose=False)
        groups = param_groups(model, 1e-3, 0.05)
        g = next(g for g in groups if "head.refine.mask_token" in g["names"])
        assert g["weight_decay"] == wd
        norm = next(g for g in groups if any("norm" in n for n in g["names"]))
        assert norm["weight_decay"] == 0.0                                   # norms stay undecayed


def test_fidelity_official_vfmnet_fusion_conv_is_kaiming_fan_out():
    """6: mmcv ConvModule: Kaiming-normal, fan_out, ReLU gain -> std √(2/1024) = 0.0442 for C = 1024."""
    torch.manual_seed(0)
    w = VFMNetDecoder([1024] * 4).fuse[0].weight
    assert w.shape == (1024, 4096, 1, 1)
    assert w.std().item() == pytest.approx(math.sqrt(2 / 1024), rel=0.02) and abs(w.mean().item()) < 1e-3
    torch.manual_seed(0)
    w_torch = VFMNetDecoder([1024] * 4, init="torch").fuse[0].weight          # PyTorch: U(±1/√fan_in) ≈ 0.009
    assert w_torch.std().item() == pytest.approx(1 / math.sqrt(4096) / math.sqrt(3), rel=0.02)


def test_fidelity_official_vfmnet_channels_follow_the_configs():
    """7: ``channels=auto`` = 256 for the 1024-wide ViT-Ls, 320 = C/4 for SAM-H (1280); 256 for DINOv2-S."""
    for c, want in ((1024, 256), (1280, 320), (384, 256)):
        head = VFMNetDecoder([c] * 4)
        assert head.up2[0].out_channels == want and head.cls.in_channels == want
    assert VFMNetDecoder([384] * 4, channels=128).up2[0].out_channels == 128


def test_fidelity_official_variants_not_built_are_listed_in_notebook_30():
    """8: notebook 30's paper-vs-code table names the official variants the kit does not build."""
    text = (ROOT / "notebooks" / "src" / "30_vfmseg.py").read_text()
    for name in ("HRDA", "SegFormer", "Mask2Former"):
        assert name in text, name
    assert "does not build" in text and "None of them is built" in text


# ------------------------------------------------------------------ FisherTune
def _fishertune_recipe(**method_options):
    from dgsslib.recipes import build_recipe
    cfg = resolve("smoke", {"data": {"train_length": 8, "eval_length": 2, "eval": ["synthetic:source"]},
                            "train": {"max_steps": 7, "batch_size": 2}})
    cfg.update(method="fishertune", recipe="fishertune", seed=1, method_options=method_options,
               recipe_options={"t1": 2, "t2": 2})
    cfg = validate(cfg)
    torch.manual_seed(cfg["seed"])
    model = build_model(cfg, verbose=False).eval()
    recipe = build_recipe("fishertune", t1=2, t2=2)
    recipe.bind(model, contextlib.nullcontext, cfg)
    recipe.setup(model, cfg)
    return cfg, model, recipe


def test_fidelity_antithetic_signs_see_the_same_dsu_draw():
    """11: both signs ±ξ of an antithetic pair see the same perturbed features x′ (one DSU draw)."""
    cfg, model, recipe = _fishertune_recipe(estimator="variational", antithetic=True)
    dsu = model.method.dsu
    seen = []
    orig = dsu._maybe_perturb

    def spy(tokens):
        out = orig(tokens)
        if dsu.active:
            seen.append(out.detach().clone())
        return out
    dsu._maybe_perturb = spy
    g = torch.Generator().manual_seed(3)
    src = {"image": torch.rand(2, 3, 112, 224, generator=g), "label": torch.randint(0, 19, (2, 112, 224), generator=g)}
    recipe.generator = torch.Generator().manual_seed(0)                      # the trainer's per-step generator
    recipe.step(model, {"source": src}, 2)                                    # the first estimation step (T1 = 2)
    assert seen and len(seen) % 2 == 0
    half = len(seen) // 2                                                     # sign +1 calls, then sign −1 calls
    for a, b in zip(seen[:half], seen[half:]):
        assert torch.equal(a, b)


def test_fidelity_schedule_default_is_the_papers_total_steps():
    """13: eq. 16's T is all training steps: by default ρ at step t is the schedule at t / max_steps."""
    from dgsslib.selection.fishertune import FisherTune
    from dgsslib.selection.schedule import selected_fraction
    assert FisherTune().schedule_steps == "total"
    rho = selected_fraction(5, 10, 0.01, 0.05)
    direct = 0.01 + 0.04 * (1 - math.exp(-5 / 9)) / (1 - math.exp(-1))        # t / (T − 1), κ = 1
    assert rho == pytest.approx(direct)


# ------------------------------------------------------------------ Rein-A / UDA
def _rein_a_cfg(**recipe_options):
    cfg = merge(resolve("smoke"), load_config_file(ROOT / "configs" / "rein_a" / "mini.yaml"))
    cfg["data"].update(train_length=4, eval_length=1, eval=["synthetic:night"])
    cfg["train"].update(max_steps=1, batch_size=2)
    cfg["recipe_options"] = {**cfg["recipe_options"], "tau": 0.0, "stm": False, "regions": "slic", **recipe_options}
    return validate(cfg)


def _spy_rein_a(monkeypatch, tmp_path, **recipe_options):
    import dgsslib.recipes.rein_a as ra
    from dgsslib.engine.train import fit
    seen = {}
    orig_mask, orig_mix, orig_aug = ra.apply_mask, ra.class_mix, ra.strong_augment
    seen["augment_calls"] = 0

    def apply_mask(images, mask, fill=None):
        out = orig_mask(images, mask, fill)
        seen.update(images=images.detach().clone(), mask=mask.detach().clone(), out=out.detach().clone(), fill=fill)
        return out

    def class_mix(*a, **k):
        seen["mix_kwargs"] = k
        return orig_mix(*a, **k)
    def strong_augment(*a, **k):  # the masked branch's own augmentation (ClassMix calls its module's copy)
        seen["augment_calls"] += 1
        return orig_aug(*a, **k)
    monkeypatch.setattr(ra, "strong_augment", strong_augment)
    monkeypatch.setattr(ra, "apply_mask", apply_mask)
    monkeypatch.setattr(ra, "class_mix", class_mix)
    rec = fit(_rein_a_cfg(**recipe_options), tmp_path, progress=False)
    return seen, rec


def test_fidelity_official_mask_fill_is_the_mean_colour_and_no_extra_augmentation(monkeypatch, tmp_path):
    """14 + 17: dropped blocks take the mean colour (0 after normalising, as MIC masks normalised images);
    the kept pixels are x_t itself (no strong augmentation before masking unless ``mask_augment``)."""
    seen, _ = _spy_rein_a(monkeypatch, tmp_path / "a")
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)               # DINOv2 / ImageNet mean
    m, out, x = seen["mask"].expand_as(seen["out"]), seen["out"], seen["images"]
    assert (m == 0).any() and (m == 1).any()
    assert torch.allclose(out[m == 0], mean.expand_as(out)[m == 0])           # dropped: the mean colour
    assert torch.equal(out[m == 1], x[m == 1])
    normalised = (out - mean) / torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    assert normalised[m == 0].abs().max() < 1e-6                              # = MIC's 0 after normalisation
    assert seen["augment_calls"] == 0                                         # no augmentation before masking
    monkeypatch.undo()
    seen2, _ = _spy_rein_a(monkeypatch, tmp_path / "b", mask_fill="black", mask_augment=True)
    m2 = seen2["mask"].expand_as(seen2["out"])
    assert (seen2["out"][m2 == 0] == 0).all()                                 # the earlier black fill
    assert seen2["augment_calls"] == 1                                        # augmented before masking: opt-in


def test_fidelity_official_classmix_pastes_ignore_regions(monkeypatch, tmp_path):
    """16: DACS / DDB / DAFormer count 255 as a class of the source label, so its regions may be pasted."""
    from dgsslib.uda.classmix import class_mix_masks
    labels = torch.full((1, 4, 4), 255)
    labels[0, :2] = 3                                                          # two "classes": 3 and 255
    g = torch.Generator().manual_seed(0)
    pasted = [bool(class_mix_masks(labels, g, ignore_index=None)[0, 3, 3]) for _ in range(64)]
    assert any(pasted) and not all(pasted)                                    # ceil(2/2) = 1 of {3, 255}: 255 half the time
    assert not any(bool(class_mix_masks(labels, g)[0, 3, 3]) for _ in range(64))  # paste_ignore=false: never
    seen, _ = _spy_rein_a(monkeypatch, tmp_path / "a")
    assert seen["mix_kwargs"]["ignore_index"] is None
    monkeypatch.undo()
    seen, _ = _spy_rein_a(monkeypatch, tmp_path / "b", paste_ignore=False)
    assert seen["mix_kwargs"]["ignore_index"] == 255


def test_fidelity_mask_loss_is_unweighted_by_default():
    """17: L_mask (eq. 16) carries no q̄ factor unless ``mask_q_weight``: query_loss = the query losses."""
    from dgsslib.recipes.rein_a import ReinA
    from dgsslib.uda.pseudo_label import query_losses, query_targets
    g = torch.Generator().manual_seed(0)
    out = {"pred_logits": torch.randn(2, 4, 20, generator=g), "pred_masks": torch.randn(2, 4, 8, 8, generator=g)}
    t = query_targets(torch.randn(2, 4, 20, generator=g), torch.randn(2, 4, 8, 8, generator=g))
    q = torch.tensor([0.2, 0.4])
    plain = query_losses(out["pred_logits"], out["pred_masks"], t)["loss"]
    assert torch.allclose(ReinA().query_loss(out, t, q), plain)
    assert torch.allclose(ReinA(mask_q_weight=True).query_loss(out, t, q), plain * 0.3)


def test_fidelity_ema_alpha_option_is_the_dacs_update(tmp_path):
    """15: ``alpha=0.99`` (DACS, which the paper cites) gives θ_t ← 0.99 θ_t + 0.01 θ_s at large t;
    the default 0.999 is DAFormer/MIC's."""
    from dgsslib.recipes.ema import EMATeacher
    from dgsslib.recipes.rein_a import ReinA
    assert ReinA().o["alpha"] == 0.999 and ReinA(alpha=0.99).o["alpha"] == 0.99
    model = build_model(_rein_a_cfg(), verbose=False)
    teacher = EMATeacher(model, alpha=0.99)
    name, p = next((n, p) for n, p in model.named_parameters() if p.requires_grad)
    before = teacher.state_tensors()[name].clone()
    with torch.no_grad():
        p.add_(1.0)
    teacher.update(model, 10_000)
    assert torch.allclose(teacher.state_tensors()[name], 0.99 * before + 0.01 * p.detach(), atol=1e-6)
