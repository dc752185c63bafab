"""FisherTune: θ and its parts, the schedule (eq. 16 as the text reads), DR-FIM (eq. 7), the direct
estimator, the ranking and nested masks, the phased recipe end to end (unselected weights never
move, the budget is exact), small checkpoints that rebuild exact weights, exact resume in T2
and T3, Child-Tuning-D, the config rules and the papers' parameter budget."""
import json
import math
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from dgsslib.adapters import build_method
from dgsslib.backbones import load_vfm
from dgsslib.engine.validation import validate
from dgsslib.model import build_model
from dgsslib.profiles import ConfigError, resolve
from dgsslib.selection.fisher import FisherAccumulator, candidate_masks, combine, part_summary, theta_tensors
from dgsslib.selection.schedule import selected_count, selected_fraction
from dgsslib.engine.train import fit

from test_train import ROOT, _run, cli


@pytest.fixture(scope="module")
def tiny():
    return load_vfm("tiny", weights="none", verbose=False)


def test_theta_splits_fused_qkv_into_q_k_v_rows_and_takes_every_mlp_linear(tiny):
    theta = theta_tensors(tiny)
    C = tiny.embed_dim
    names = sorted(theta)
    assert len(names) == 3 * len(tiny.model.blocks)  # qkv, fc1, fc2 per block; proj and norms are not θ
    assert all(n.endswith(("attn.qkv.weight", "mlp.fc1.weight", "mlp.fc2.weight")) for n in names)
    w, rows = theta["blocks.0.attn.qkv.weight"]
    assert w is tiny.model.blocks[0].attn.qkv.weight and rows["k"] == slice(C, 2 * C)
    m = candidate_masks(theta, "q")
    assert set(m) == {n for n in names if "qkv" in n}
    q = m["blocks.0.attn.qkv.weight"]
    assert q[:C].all() and not q[C:].any()
    with pytest.raises(ValueError, match="subset"):
        candidate_masks(theta, "q,proj")


def test_schedule_grows_from_delta_min_to_delta_max_and_the_printed_form_never_reaches_it():
    T, lo, hi = 50, 0.01, 0.05
    rho = [selected_fraction(t, T, lo, hi) for t in range(T)]
    assert rho[0] == pytest.approx(lo) and rho[-1] == pytest.approx(hi)
    assert all(b >= a for a, b in zip(rho, rho[1:]))
    assert rho[T // 2] > lo + (hi - lo) * 0.5  # concave: the exponential of eq. 16, turned to grow
    printed = selected_fraction(T - 1, T, lo, hi, "printed_growing")
    assert printed == pytest.approx(hi - (hi - lo) * math.exp(-1))
    assert selected_fraction(7, T, lo, hi, "fixed") == hi
    assert selected_fraction(10, 21, lo, hi, "linear") == pytest.approx(0.03)
    assert selected_count(T - 1, T, 1000, lo, hi) == 50
    with pytest.raises(ValueError):
        selected_fraction(0, T, 0.1, 0.05)
    with pytest.raises(ValueError):
        selected_fraction(0, T, lo, hi, "decreasing")


def test_drfim_is_eq7_per_element():
    fx = {"a": torch.tensor([1e-6, 4e-6, 0.0]), "b": torch.tensor([[2e-6]])}
    fxp = {"a": torch.tensor([3e-6, 4e-6, 1e-6]), "b": torch.tensor([[1e-6]])}
    w, eps = math.exp(-2), 1e-8
    out = combine("drfim", fx, fxp, weight=w, damping=eps)
    for n in fx:
        for i in range(fx[n].numel()):
            a, b = fx[n].flatten()[i].item(), fxp[n].flatten()[i].item()
            assert out[n].flatten()[i].item() == pytest.approx(a + w * abs(a - b) / (min(a, b) + eps), rel=1e-5)
    assert torch.equal(combine("fim", fx, fxp)["a"], fx["a"])
    delta = combine("delta", fx, fxp, weight=w, damping=eps)
    assert delta["a"][1] == 0 and delta["a"][0] == pytest.approx(w * 2e-6 / (1e-6 + eps))
    scaled = combine("drfim", fx, fxp, weight=w, damping=eps, scale="mean")
    both = torch.cat([v.flatten() for v in scaled.values()])
    assert both.mean() == pytest.approx(2.0, rel=1e-4)  # each term over its global mean, summed
    with pytest.raises(ValueError, match="F\\(x'\\)"):
        combine("drfim", fx, None)


def test_direct_fisher_is_the_mean_squared_gradient_with_per_tensor_clipping():
    g1 = {"w": torch.tensor([3.0, 4.0]), "v": torch.tensor([1.0])}
    g2 = {"w": torch.tensor([0.0, 1.0]), "v": torch.tensor([-2.0])}
    acc = FisherAccumulator(["w", "v"])
    acc.add(g1), acc.add(g2)
    assert torch.allclose(acc.mean()["w"], torch.tensor([4.5, 8.5])) and acc.mean()["v"].item() == 2.5
    clipped = FisherAccumulator(["w", "v"], clip=1.0)  # Child-Tuning-D: each tensor's gradient to norm 1
    clipped.add(g1)
    assert torch.allclose(clipped.mean()["w"], torch.tensor([0.36, 0.64]), atol=1e-5)
    again = FisherAccumulator(["w", "v"])
    again.load(acc.state("acc"), "acc")
    assert again.count == 2 and torch.equal(again.mean()["w"], acc.mean()["w"])


def test_ranking_masks_are_the_top_k_and_nested(tiny):
    m = build_method("fishertune", budget=0.05, score="fim", schedule_steps="t3").attach(tiny)  # T = T3 below
    n_bb = sum(p.numel() for p in tiny.model.parameters())
    assert m.num_trainable() == round(0.05 * n_bb) == m.k_max
    scores = {n: torch.randn(w.shape, generator=torch.Generator().manual_seed(i)) for i, (n, (w, _)) in
              enumerate(m.theta.items())}
    m.set_scores(scores)
    flat = torch.cat([scores[n].flatten() for n in m.theta])
    for k in (1, m.k_max // 3, m.k_max):
        masks = m.masks_for(k)
        chosen = torch.cat([masks[n].flatten() for n in m.theta])
        assert chosen.sum() == k and flat[chosen.bool()].min() >= flat[~chosen.bool()].max()
    small = {n: v.clone() for n, v in m.masks_for(10).items()}  # views of one buffer: copy before growing
    big = m.masks_for(100)
    assert sum(int(v.sum()) for v in small.values()) == 10 and sum(int(v.sum()) for v in big.values()) == 100
    assert all((small[n] <= big[n]).all() for n in m.theta)  # growing masks are nested
    m.tune_start, m.tune_steps = 5, 10
    assert all(v.sum() == 0 for v in m.grad_masks(4).values())  # warm-up / estimation: nothing selected
    assert sum(v.sum() for v in m.grad_masks(14).values()) == m.k_max  # last step: the whole budget
    sens = part_summary({n: (s > 0).float() for n, s in scores.items()}, m.theta, len(tiny.model.blocks))
    assert sens.shape == (len(tiny.model.blocks), 4) and ((sens > 0.3) & (sens < 0.7)).all()


def _model(cfg):
    torch.manual_seed(cfg["seed"])  # as fit does: the same random init of the tiny ViT and head
    return build_model(cfg, verbose=False)


def _cfg(**method_options):
    cfg = resolve("smoke", {"data": {"train_length": 8, "eval_length": 2, "eval": ["synthetic:source"]},
                            "train": {"max_steps": 7, "batch_size": 2}})
    cfg.update(method="fishertune", recipe="fishertune", seed=1,
               method_options={"estimator": "direct", **method_options},
               recipe_options={"t1": 2, "t2": 2})
    return validate(cfg)


def test_phases_run_in_order_and_only_selected_elements_move(tmp_path):
    cfg = _cfg()
    rec = fit(cfg, tmp_path, progress=False)
    phases = [h["phase"] for h in rec["history"]]
    assert phases == ["warmup"] * 2 + ["estimate"] * 2 + ["tune"] * 3
    assert all(h.get("loss") is None and "fisher_loss_xp" in h for h in rec["history"][2:4])
    sel = [h["selected"] for h in rec["history"][4:]]
    # eq. 16 with T = all 7 steps (the default): the first fine-tuning step (t = 4) has grown past δ_min already
    rho4 = 0.01 + 0.04 * (1 - math.exp(-4 / 6)) / (1 - math.exp(-1))
    assert sel == sorted(sel) and sel[0] == pytest.approx(rho4, abs=2e-4) and sel[-1] == pytest.approx(0.05, abs=2e-4)
    trained, fresh = _model(cfg), _model(cfg)
    final = load_file(tmp_path / "final.safetensors")
    from dgsslib.checkpoint import load_checkpoint
    load_checkpoint(sorted((tmp_path / "ckpt").glob("*.safetensors"))[-1], trained)
    m = trained.method
    allowed = m.masks_for(m.k_max)
    moved = 0
    for n, (w, _) in m.theta.items():
        w0 = fresh.method.theta[n][0]
        changed = w.detach() != w0.detach()
        assert not (changed & (allowed[n] == 0)).any(), n  # unselected weights (and their decay) never move
        moved += int(changed.sum())
    assert 0 < moved <= m.k_max
    assert any(k.endswith("@sel") for k in final) and "method.order" in final
    assert not any(k.startswith("vfm.model.") and not k.endswith("@sel") for k in final)  # no full matrices


def test_small_checkpoint_rebuilds_exact_weights_and_is_smaller_than_the_matrices(tmp_path):
    cfg = _cfg()
    fit(cfg, tmp_path, progress=False)
    ckpt = sorted((tmp_path / "ckpt").glob("*.safetensors"))[-1]
    from dgsslib.checkpoint import load_checkpoint, packed_model_state
    a, b = _model(cfg), _model(cfg)
    load_checkpoint(ckpt, a)
    load_checkpoint(ckpt, b)
    for (n, p), (_, q) in zip(a.named_parameters(), b.named_parameters()):
        assert torch.equal(p, q), n
    packed = packed_model_state(a)
    full_theta = sum(w.numel() for w, _ in a.method.theta.values())
    stored_theta = sum(v.numel() for k, v in packed.items() if k.endswith("@sel"))
    assert stored_theta == a.method.k_max < full_theta / 10


@pytest.mark.parametrize("estimator,kill", [("direct", 3), ("variational", 3), ("direct", 5)])
def test_resume_in_estimation_and_in_fine_tuning_is_exact(tmp_path, estimator, kill):
    cfg = _cfg(estimator=estimator)
    cfg["train"]["ckpt_every"] = 1
    a, b = tmp_path / "a", tmp_path / "b"
    assert _run(cfg, a).returncode == 0
    assert _run(cfg, b, kill=kill).returncode == -9
    r = _run(cfg, b, resume=True)
    assert r.returncode == 0, r.stderr[-2000:]
    fa, fb = load_file(a / "final.safetensors"), load_file(b / "final.safetensors")
    assert fa.keys() == fb.keys()
    for k in fa:
        assert torch.equal(fa[k], fb[k]), k
    ha, hb = (json.loads((d / "results.json").read_text())["history"] for d in (a, b))
    assert ha == hb


def test_childtune_is_a_fixed_fisher_mask_at_the_same_budget(tmp_path, tiny):
    m = build_method("childtune").attach(tiny)
    assert m.num_trainable() == build_method("fishertune").attach(tiny).num_trainable()
    assert (m.schedule, m.score, m.estimator, m.grad_clip) == ("fixed", "fim", "direct", 1.0)
    cfg = _cfg()
    cfg.update(method="childtune", method_options={})
    rec = fit(validate(cfg), tmp_path, progress=False)
    sel = {h["selected"] for h in rec["history"] if h["phase"] == "tune"}
    assert len(sel) == 1 and sel.pop() == pytest.approx(0.05, abs=2e-4)  # fixed mask, the whole budget
    assert "fisher_loss_xp" not in rec["history"][2]  # no perturbed pass


def test_random_baseline_restricted_to_q(tmp_path):
    cfg = _cfg(score="random", targets="q")
    model = _model(cfg)
    m = model.method
    m.set_scores(m.random_scores(seed=0))
    C = model.vfm.embed_dim
    for n, mask in m.masks_for(m.k_max).items():
        assert mask[C:].sum() == 0  # only Q rows of the fused qkv
    rec = fit(cfg, tmp_path, progress=False)
    assert "fisher_loss_x" not in rec["history"][2]  # nothing to estimate


def test_the_method_brings_its_recipe_and_refuses_another(tmp_path):
    bad = _cfg()
    bad["recipe"], bad["recipe_options"] = "supervised", {}
    with pytest.raises(ConfigError, match="fishertune"):
        validate(bad)
    r = cli("--method", "fishertune", "--work-dir", str(tmp_path / "a"), "--set", "data.train_length=8",
            "--set", "data.eval_length=2")
    rec = json.loads((tmp_path / "a" / "results.json").read_text())
    assert rec["config"]["recipe"] == "fishertune" and r.returncode == 0
    assert {h["phase"] for h in rec["history"]} == {"warmup", "estimate", "tune"}
    with pytest.raises(ValueError, match="no fine-tuning step"):
        fit(validate({**_cfg(), "recipe_options": {"t1": 4, "t2": 3}}), tmp_path / "b", progress=False)


def test_budget_is_the_papers_15_21M_on_dinov2_l():
    out = subprocess.run([sys.executable, "-m", "dgsslib.params", "--backbone", "dinov2_l", "--method", "fishertune"],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    rec = json.loads(out.stdout.strip().splitlines()[-1])
    assert rec["trainable"] == round(0.05 * rec["total"]) and abs(rec["trainable"] / 1e6 - 15.21) < 0.005


def test_fidelity_per_sample_fisher_is_eq9_mean_of_squared_per_sample_gradients():
    """#21 item 12: ``fisher_samples=per_sample`` accumulates 1/N Σ_i (∂ log p(y_i|x_i)/∂θ)² (eq. 9), not the
    square of the batch-mean gradient; checked against separate autograd calls on the same forward."""
    import contextlib

    from dgsslib.recipes import build_recipe
    cfg = _cfg(score="fim", fisher_samples="per_sample")
    model = _model(cfg).eval()  # eval: dropout off, so the test's forward equals the recipe's
    recipe = build_recipe("fishertune", t1=2, t2=2)
    recipe.bind(model, contextlib.nullcontext, cfg)
    recipe.setup(model, cfg)
    g = torch.Generator().manual_seed(3)
    src = {"image": torch.rand(3, 3, 112, 224, generator=g), "label": torch.randint(0, 19, (3, 112, 224), generator=g)}
    recipe._pass("x", model, src, 2, torch.Generator().manual_seed(0).get_state())
    params = [w for w, _ in model.method.theta.values()]
    out = model(src["image"])
    direct = [torch.zeros_like(p) for p in params]
    for i in range(3):  # by hand: each sample's loss on its own slice of the batched output
        gi = torch.autograd.grad(model.loss({"logits": out["logits"][i:i + 1]}, src["label"][i:i + 1])["loss"], params,
                                 retain_graph=True)
        direct = [d + x.pow(2) / 3 for d, x in zip(direct, gi)]
    got = recipe.acc["x"].mean()
    for name, d in zip(model.method.theta, direct):
        assert torch.allclose(got[name], d, rtol=1e-4, atol=1e-12)
    batch_sq = torch.autograd.grad(model.loss(out, src["label"])["loss"], params)[0].pow(2)
    assert not torch.allclose(got[next(iter(model.method.theta))], batch_sq, rtol=1e-2, atol=0)  # not the batch form


def test_fidelity_schedule_steps_total_uses_the_global_step_over_all_training_steps(tiny):
    """#21 item 13: eq. 16's T is the total number of training steps (``schedule_steps=total``); T3 kept as
    ``t3``. Checked against ρ(t) of the growing exponential computed by hand."""
    import math
    from dgsslib.selection.fishertune import FisherTune
    n = sum(p.numel() for p in tiny.model.parameters())
    counts = {}
    for steps in ("t3", "total"):
        m = FisherTune(budget=0.05, delta_min=0.01, schedule_steps=steps).attach(tiny)
        m.set_schedule(2, 2, 10)
        m.order.copy_(torch.arange(m.k_max, dtype=m.order.dtype))  # any ranking: estimated
        counts[steps] = [m.count_at(t) for t in range(4, 10)]
    rho = lambda u: 0.01 + (0.05 - 0.01) * (1 - math.exp(-1.0 * u)) / (1 - math.exp(-1.0))  # noqa: E731  (κ = 1)
    close = lambda a, b: all(abs(x - y) <= 1 for x, y in zip(a, b))  # noqa: E731  (float rounding of ρ·N)
    assert close(counts["t3"], [rho(t / 5) * n for t in range(6)])            # T3 = 6 steps, t from T3's start
    assert close(counts["total"], [rho(t / 9) * n for t in range(4, 10)])     # T = 10 steps, t the global step
    assert counts["total"][0] > counts["t3"][0] and counts["total"][-1] == counts["t3"][-1]
