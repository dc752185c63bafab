"""The parts the recipes issue added to the one trainer: selection masks on gradients *and*
weight decay, the EMA unit and a teacher that shares the backbone, Rare Class Sampling, the
``before_blocks`` hook, DINOv2's position-embedding rule, the ×0.5 pyramid level, model-owned
inference, the one registry style and the absence of import circles."""
import ast
import copy
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from dgsslib.model import build_model, feature_pyramid
from dgsslib.optim import apply_grad_masks, apply_masked_weight_decay, build_optimizer
from dgsslib.profiles import resolve
from dgsslib.recipes.ema import EMATeacher, ema_alpha

ROOT = Path(__file__).resolve().parent.parent


def smoke(**top):
    cfg = resolve("smoke", {"data": {"train_length": 8, "eval_length": 2, "eval": ["synthetic:source"]},
                            "train": {"max_steps": 3, "batch_size": 2}})
    cfg.update(top)
    return cfg


# ------------------------------------------------------------------ masks + weight decay
def test_masked_gradients_and_weight_decay_leave_unselected_elements_bit_identical():
    torch.manual_seed(0)
    model = build_model(smoke(method="random_select", method_options={"fraction": 0.05, "seed": 1}), verbose=False)
    opt = build_optimizer(model, {"lr": 1e-2, "weight_decay": 0.5})  # strong decay: unmasked it would move everything
    params = model.method.selection_parameters()
    before = [p.detach().clone() for p in params]
    masks = model.method.grad_masks(0)
    frac = sum(m.sum() for m in masks.values()) / sum(m.numel() for m in masks.values())
    assert abs(float(frac) - 0.05) < 1e-3
    x = torch.rand(2, 3, 56, 112)
    y = torch.randint(0, 19, (2, 56, 112))
    for step in range(4):
        loss = model.loss(model(x), y)["loss"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        m = model.method.grad_masks(step)
        apply_grad_masks(m, opt)
        apply_masked_weight_decay(opt, m)
        opt.step()
    for p, b in zip(params, before):
        sel = masks[p].bool()
        assert torch.equal(p[~sel], b[~sel])          # unselected: bit for bit
        assert (p[sel] != b[sel]).all()               # selected: every one moved
    assert all(g["weight_decay"] == 0.0 for g in opt.param_groups if g.get("masked_weight_decay"))


def test_masks_may_change_with_the_step():
    p = torch.nn.Parameter(torch.ones(4))
    opt = torch.optim.AdamW([{"params": [p], "masked_weight_decay": 0.1, "weight_decay": 0.0, "lr": 0.1}])
    for step in range(2):
        p.grad = torch.ones(4)
        m = {p: torch.tensor([1.0, 0, 0, 0]) if step == 0 else torch.tensor([1.0, 1, 0, 0])}
        apply_grad_masks(m, opt)
        apply_masked_weight_decay(opt, m)
        opt.step()
    assert p[0] != 1 and p[1] != 1 and p[2] == 1 and p[3] == 1


# ------------------------------------------------------------------ EMA
def test_ema_alpha_schedule_and_update_against_direct_computation():
    assert ema_alpha(0, 0.999) == 0.0 and ema_alpha(1, 0.999) == 0.5 and ema_alpha(9, 0.999) == pytest.approx(0.9)
    assert ema_alpha(5000, 0.999) == 0.999
    model = build_model(smoke(method="lora", method_options={"r": 2}), verbose=False)
    teacher = EMATeacher(model, alpha=0.99)
    phi0 = {k: v.detach().clone() for k, v in model.trainable_state().items()}
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.add_(1.0)
    theta = {k: v.detach().clone() for k, v in model.trainable_state().items()}
    a = teacher.update(model, 3)  # α_3 = 0.75
    assert a == 0.75
    for k, sh in teacher.shadow.items():
        if sh.is_floating_point():
            assert torch.allclose(sh, 0.75 * phi0[k] + 0.25 * theta[k], atol=1e-6), k


def test_teacher_shares_the_backbone_and_runs_its_own_weights_for_lora():
    cfg = smoke(method="lora", method_options={"r": 2})
    model = build_model(cfg, verbose=False)
    twin = copy.deepcopy(model.method)   # a method deep-copies without copying the backbone
    assert twin.vfm is model.vfm and twin._handles == []
    teacher = EMATeacher(model, 0.5)
    x = torch.rand(1, 3, 56, 112)
    model.eval()
    with torch.no_grad():
        for ad in model.method.adapters.values():
            ad.lora_B.normal_(0, 0.5)  # the student moves away from the teacher
        student = model.semantic_logits(x)
        with teacher.applied(model):
            t_out = model.semantic_logits(x)
        again = model.semantic_logits(x)
    assert torch.equal(student, again)       # swapped back exactly
    assert not torch.allclose(student, t_out)
    ref = build_model(cfg, verbose=False)    # same seed-free check: load the shadow into a fresh model
    ref.load_state_dict(model.state_dict())
    with torch.no_grad():
        for k, t in ref.trainable_state().items():
            t.copy_(teacher.shadow[k])
        ref.eval()
        assert torch.allclose(ref.semantic_logits(x), t_out, atol=1e-6)


# ------------------------------------------------------------------ Rare Class Sampling
def rcs_counts(n=400, seed=0):
    """Road everywhere, a common class, and three rarer ones with frequencies ~0.1 %, 1.3 %, 4 %."""
    rng = np.random.default_rng(seed)
    counts = np.zeros((n, 19), dtype=np.int64)
    counts[:, 0] = 50_000
    counts[:, 1] = rng.integers(10_000, 40_000, n)
    rare = rng.choice(n, 8, replace=False)
    counts[rare, 12] = 5_000                                   # rider: 2 % of the images
    counts[rng.choice(n, 100, replace=False), 5] = 4_000       # pole: 25 %
    counts[rng.choice(n, 200, replace=False), 13] = 6_000      # car: 50 %
    return counts, rare


def test_rare_class_sampling_matches_the_predicted_rate():
    from dgsslib.data.rcs import RareClassSampler, class_probabilities
    counts, rare = rcs_counts()
    n = len(counts)
    classes, probs = class_probabilities(counts, 0.01, 3000)
    freq = counts.sum(0) / counts.sum()
    logits = (1 - freq[classes]) / 0.01
    expect = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    assert np.allclose(probs, expect) and 0.5 < probs[list(classes).index(12)] < 0.95
    s = RareClassSampler(list(range(n)), 8, seed=0, start_step=0, max_steps=250, counts=counts)
    picks = [t for batch in s for t in batch]
    for c, p in zip(classes, probs):                            # each class drawn at its P(c)
        got = np.mean([k == c for _, _, k in picks])
        assert abs(got - p) < 4 * np.sqrt(p * (1 - p) / len(picks)) + 1e-3, (c, got, p)
    share = np.mean([i in set(rare.tolist()) for _, i, _ in picks])
    assert share > 20 * len(rare) / n                           # rider images: far more often than uniform (2 %)
    assert all(counts[i, c] > 3000 for _, i, c in picks)        # each image holds its class
    again = RareClassSampler(list(range(n)), 8, seed=0, start_step=100, max_steps=101, counts=counts)
    assert next(iter(again)) == picks[800:808]                  # step-indexed: resume-exact


def test_rcs_counts_for_the_procedural_benchmark_are_cached(tmp_path):
    from dgsslib.data.rcs import class_counts
    from dgsslib.data.sources import build_source
    cfg = smoke()
    cfg["data"]["train_length"] = 6
    ds = build_source("synthetic:source", cfg, train=True)
    a = class_counts(ds, str(tmp_path))
    assert a.shape == (6, 19) and a.sum() > 0 and list(tmp_path.glob("rcs_counts_*.npy"))
    lab = ds[2]["label"]
    assert a[2, 0] == int((lab == 0).sum())
    assert np.array_equal(class_counts(ds, str(tmp_path)), a)


# ------------------------------------------------------------------ backbone hooks and geometry
def test_before_blocks_hook_sees_embedded_patch_tokens():
    from dgsslib.backbones import load_vfm
    vfm = load_vfm("tiny", weights="none", verbose=False)
    seen = {}

    class Probe:
        def before_blocks(self, tokens, grid):
            seen["tokens"], seen["grid"] = tokens.clone(), grid
            return tokens * 0  # zero the patch tokens: prefix (cls) must stay

    x = torch.rand(1, 3, 56, 112)
    t, _, grid = vfm._embed(vfm.prepare(x))
    vfm.forward_features(x, [Probe()])
    assert seen["grid"] == grid == (4, 8)
    assert torch.allclose(seen["tokens"], t[:, vfm.num_prefix_tokens:])
    assert not torch.allclose(vfm.forward_features(x, [Probe()])[-1], vfm.forward_features(x)[-1])


def test_dinov2_position_embedding_rule_against_direct_computation():
    from dgsslib.backbones.posembed import dinov2_resample
    m, c = 37, 8
    table = torch.randn(1, 1 + m * m, c)
    out = dinov2_resample(table, (8, 16), num_prefix=1)
    grid = table[:, 1:].reshape(1, m, m, c).permute(0, 3, 1, 2)
    direct = F.interpolate(grid, scale_factor=(8.1 / 37, 16.1 / 37), mode="bicubic", antialias=False)
    assert torch.allclose(out[:, 1:], direct.permute(0, 2, 3, 1).reshape(1, -1, c))
    assert torch.equal(out[:, :1], table[:, :1])
    assert dinov2_resample(table, (37, 37), 1) is table
    timm_rule = F.interpolate(grid, size=(8, 16), mode="bicubic", antialias=True)
    assert not torch.allclose(direct, timm_rule)  # the two rules really differ


def test_pyramid_half_level_equals_scale_factor_half_on_odd_grids():
    taps = [torch.randn(1, 4, 45, 81) for _ in range(4)]
    pyr = feature_pyramid(taps)
    ref = F.interpolate(taps[3], scale_factor=0.5, mode="bilinear", align_corners=False)
    assert torch.equal(pyr[3], ref) and pyr[3].shape[-2:] == (22, 40)
    assert pyr[0].shape[-2:] == (180, 324) and torch.equal(pyr[2], taps[2])


def test_evaluation_dispatches_through_the_model():
    from dgsslib.data.sources import build_source
    from dgsslib.engine.evaluate import evaluate
    cfg = smoke()
    model = build_model(cfg, verbose=False)
    calls = []

    class Own:
        def predict(self, m, images, mode, crop, stride):
            calls.append(mode)
            return torch.zeros(images.shape[0], 19, *images.shape[-2:])

        def predict_stats(self):
            return {"refined_fraction": 0.25}

    object.__setattr__(model.method, "predict", Own().predict)
    object.__setattr__(model.method, "predict_stats", Own().predict_stats)
    res = evaluate(model, build_source("synthetic:source", cfg, train=False), mode="whole", progress=False)
    assert calls and res["refined_fraction"] == 0.25 and res["per_class"]["road"] is not None


def test_checkpoints_hold_persistent_buffers_only():
    model = build_model(smoke(method="adaptformer"), verbose=False)
    model.method.register_buffer("cached_basis", torch.ones(3), persistent=False)
    state = model.trainable_state()
    assert "method.cached_basis" not in state and not any(k.endswith(".scale") for k in state)
    assert "head.bn_in.running_mean" in state


# ------------------------------------------------------------------ registries, imports, config
def test_one_registry_style_and_heads_declare_the_pyramid():
    from dgsslib.adapters import METHODS
    from dgsslib.heads import HEADS
    from dgsslib.recipes import RECIPES
    from dgsslib.registry import Registry
    assert all(isinstance(r, Registry) for r in (METHODS, HEADS, RECIPES))
    assert HEADS.get("mask2former").needs_pyramid and not HEADS.get("linear").needs_pyramid
    with pytest.raises(ValueError, match="accepted"):
        METHODS.build("full", lr_mul=0.1)        # Full refuses options it does not know
    with pytest.raises(ValueError, match="choose one of"):
        RECIPES.build("nope")


def _imports(path: Path, pkg: str) -> set[str]:
    mod = ".".join(path.relative_to(ROOT).with_suffix("").parts)
    if mod.endswith(".__init__"):
        mod = mod[: -len(".__init__")]
    base = mod.split(".") if path.name == "__init__.py" else mod.split(".")[:-1]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                parts = base[: len(base) - node.level + 1] + (node.module.split(".") if node.module else [])
                target = ".".join(parts)
            else:
                target = node.module or ""
            names = [target] + [f"{target}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        else:
            continue
        out |= {n for n in names if n.startswith(pkg)}
    return out


def test_no_import_circles_in_dgsslib_counting_imports_inside_functions():
    files = {p: None for p in (ROOT / "dgsslib").rglob("*.py")}
    mods = {}
    for p in files:
        name = ".".join(p.relative_to(ROOT).with_suffix("").parts)
        mods[name[: -len(".__init__")] if name.endswith(".__init__") else name] = p
    graph = {m: {t for t in _imports(p, "dgsslib") if t in mods and t != m} for m, p in mods.items()}
    # a package's __init__ re-exporting its own children is not a circle
    graph = {m: {t for t in ts if not (m.startswith(t + ".") and mods[t].name == "__init__.py")} for m, ts in graph.items()}
    state, cycle = {}, []

    def visit(m, stack):
        state[m] = 1
        for t in graph[m]:
            if state.get(t) == 1:
                cycle.append(stack[stack.index(t):] + [t] if t in stack else [m, t])
            elif t not in state:
                visit(t, stack + [t])
        state[m] = 2

    for m in graph:
        if m not in state:
            visit(m, [m])
    assert not cycle, f"import circles: {cycle[:3]}"


def test_config_precedence_profile_file_flags_set(tmp_path):
    """profile < --config file < --method/... flags < --set/--option; the file may name method, head, recipe."""
    from dgsslib.train import _parse, config_from_args
    (tmp_path / "c.yaml").write_text("method: rein\nhead: mask2former\nrecipe: self_training\n"
                                     "method_options: {m: 10}\ntrain: {lr: 0.002}\n")
    w = ["--work-dir", str(tmp_path / "w"), "--config", str(tmp_path / "c.yaml")]
    cfg = config_from_args(_parse(w))
    assert (cfg["method"], cfg["head"], cfg["recipe"], cfg["train"]["lr"]) == ("rein", "mask2former", "self_training", 0.002)
    cfg = config_from_args(_parse(w + ["--method", "lora", "--set", "train.lr=0.003", "--option", "m=20"]))
    assert cfg["method"] == "lora" and cfg["train"]["lr"] == 0.003 and cfg["method_options"] == {"m": 20}
    assert config_from_args(_parse(["--work-dir", "x"]))["method"] == "freeze"  # the profile default
