"""Rein-A: the recipe's branches (source, mix, mask and the STM's three terms) run on the
mask-classification head, log their terms, switch off for the Table X ablation, start from a
source-only run, resume exactly (student, teacher and STM); eq. 15's NLL on the normalised map."""
import json

import pytest
import torch
from safetensors.torch import load_file

from dgsslib.engine.validation import validate
from dgsslib.profiles import load_config_file, merge, resolve
from dgsslib.recipes.rein_a import normalized_nll
from dgsslib.engine.train import fit

from test_train import ROOT, _run


def _cfg(**recipe_options):
    cfg = merge(resolve("smoke"), load_config_file(ROOT / "configs" / "rein_a" / "mini.yaml"))
    cfg["data"].update(train_length=8, eval_length=2, eval=["synthetic:night"])
    cfg["train"].update(max_steps=3, batch_size=2)
    cfg["recipe_options"] = {**cfg["recipe_options"], "tau": 0.0, "stm_warmup": 0,  # tau 0: q = 1 on a tiny model
                             **recipe_options}
    return validate(cfg)


def test_normalized_nll_is_eq15_on_the_normalised_map():
    S = torch.rand(2, 3, 4, 5) + 0.01
    y = torch.randint(0, 3, (2, 4, 5))
    y[0, 0, 0] = 255
    w = torch.rand(2, 4, 5)
    p = S / S.sum(1, keepdim=True)
    direct = torch.zeros(2, 4, 5)
    for b in range(2):
        for i in range(4):
            for j in range(5):
                if y[b, i, j] != 255:
                    direct[b, i, j] = -torch.log(p[b, y[b, i, j], i, j]) * w[b, i, j]
    assert torch.allclose(normalized_nll(S, y, w), direct.mean(), atol=1e-6)


def test_branches_log_their_terms_and_switch_off(tmp_path):
    rec = fit(_cfg(), tmp_path / "all", progress=False)
    h = rec["history"][-1]
    terms = ("loss_source", "loss_mix", "loss_mask", "loss_stm_src", "loss_stm_mix", "loss_stm_mask")
    assert all(h[t] > 0 for t in terms) and h["pseudo_weight"] == 1.0
    qs = [r["pseudo_weight"] for r in rec["history"]]                       # q̄ over the run, in the record
    assert rec["summary"]["pseudo_weight_mean"] == pytest.approx(sum(qs) / len(qs))
    assert h["loss"] == pytest.approx(sum(h[t] for t in terms), rel=1e-4)   # α = β = 1 (eq. 20)
    rec = fit(_cfg(stm=False, regions="slic"), tmp_path / "nostm", progress=False)
    assert not any("stm" in k for k in rec["history"][-1]) and "loss_mix" in rec["history"][-1]
    rec = fit(_cfg(mix=False, mask=False, regions="slic"), tmp_path / "src", progress=False)
    h = rec["history"][-1]
    assert "loss_mix" not in h and "loss_mask" not in h and "loss_stm_mix" not in h and "loss_stm_mask" not in h
    assert h["loss"] == pytest.approx(h["loss_source"] + h["loss_stm_src"], rel=1e-4)


def test_stm_warmup_keeps_eq19_off_for_its_steps_only(tmp_path):
    rec = fit(_cfg(stm_warmup=2, regions="slic"), tmp_path / "warm", progress=False)
    h = {r["step"]: r for r in rec["history"]}
    assert sorted(h) == [1, 2, 3]  # history rows count finished steps: row t is recipe step t - 1
    for t in (1, 2):  # the STM learns (eq. 18) but does not teach (eq. 19)
        assert "loss_stm_src" in h[t] and "loss_stm_mix" in h[t] and "loss_stm_mask" not in h[t]
        assert h[t]["loss"] == pytest.approx(sum(v for k, v in h[t].items() if k.startswith("loss_")), rel=1e-4)
    assert h[3]["loss_stm_mask"] > 0
    with pytest.raises(ValueError, match="stm_warmup"):
        fit(_cfg(stm_warmup=-1, regions="slic"), tmp_path / "bad", progress=False)


def test_init_from_a_source_only_run_and_stm_trains_without_a_teacher_copy(tmp_path):
    src_cfg = _cfg()
    src_cfg["recipe"], src_cfg["recipe_options"] = "supervised", {}
    src_cfg["data"]["target"] = None
    fit(validate(src_cfg), tmp_path / "src", progress=False)
    init = load_file(tmp_path / "src" / "final.safetensors")
    cfg = _cfg(init=str(tmp_path / "src"))
    cfg["train"].update(max_steps=1, ckpt_every=1)
    fit(cfg, tmp_path / "ada", progress=False)
    ck = load_file(tmp_path / "ada" / "ckpt" / "step_0000001.safetensors")
    teacher = {k[len("recipe.teacher."):]: v for k, v in ck.items() if k.startswith("recipe.teacher.")}
    # after one step the teacher is ½ init + ½ student (α_1 = 0.5): it started from the source-only run
    for k, v in teacher.items():
        if v.is_floating_point():
            assert torch.allclose(v, 0.5 * init[k] + 0.5 * ck["model." + k], atol=1e-6), k
    assert any(k.startswith("model.stm.") for k in ck) and not any(k.startswith("stm.") for k in teacher)
    assert any(k.startswith("optim.stm.") for k in ck)               # the STM is optimised (and resumes)
    with pytest.raises(FileNotFoundError, match="source-only"):
        fit(_cfg(init=str(tmp_path / "nowhere")), tmp_path / "bad", progress=False)


def test_kill_and_resume_equals_an_uninterrupted_run(tmp_path):
    cfg = _cfg()
    cfg["train"]["ckpt_every"] = 1
    a, b = tmp_path / "a", tmp_path / "b"
    assert _run(cfg, a).returncode == 0
    assert _run(cfg, b, kill=2).returncode == -9
    r = _run(cfg, b, resume=True)
    assert r.returncode == 0, r.stderr[-2000:]
    fa, fb = load_file(a / "final.safetensors"), load_file(b / "final.safetensors")
    assert fa.keys() == fb.keys() and all(torch.equal(fa[k], fb[k]) for k in fa)
    ta, tb = (load_file(d / "ckpt" / "step_0000003.safetensors") for d in (a, b))
    teacher = [k for k in ta if k.startswith("recipe.teacher.")]
    assert teacher and all(torch.equal(ta[k], tb[k]) for k in teacher)
    stm = [k for k in ta if k.startswith("model.stm.")]
    assert stm and all(torch.equal(ta[k], tb[k]) for k in stm)
    ha, hb = (json.loads((d / "results.json").read_text())["history"] for d in (a, b))
    assert ha == hb


def test_needs_the_mask_classification_head(tmp_path):
    cfg = _cfg()
    cfg["head"], cfg["head_options"] = "linear", {}
    with pytest.raises(ValueError, match="mask2former"):
        fit(validate(cfg), tmp_path, progress=False)


def test_init_noise_perturbs_trainable_weights_by_float_noise_only():
    from dgsslib.model import build_model
    from dgsslib.recipes.supervised import Supervised, perturb_trainable
    cfg = _cfg()
    a, b = build_model(cfg, verbose=False), build_model(cfg, verbose=False)
    b.load_state_dict(a.state_dict())
    frozen = {n: p.clone() for n, p in b.named_parameters() if not p.requires_grad}
    assert perturb_trainable(b, 1e-7) > 0
    moved = 0
    for (n, pa), pb in zip(a.named_parameters(), b.parameters()):
        if not pa.requires_grad:
            assert torch.equal(pb, frozen[n])                       # the frozen VFM is untouched
            continue
        rel = ((pb - pa).abs() / pa.abs().clamp_min(1e-30))[pa != 0]
        assert rel.numel() == 0 or rel.max() < 1e-5                   # float noise, not a new init
        moved += int((pb != pa).sum())
    assert moved > 0
    c = build_model(cfg, verbose=False)
    c.load_state_dict(a.state_dict())
    perturb_trainable(c, 1e-7)
    assert all(torch.equal(x, y) for x, y in zip(b.parameters(), c.parameters()))   # deterministic
    with pytest.raises(ValueError):
        Supervised(init_noise=0.5)
    assert Supervised().options == {}                                 # off: the recipe is unchanged


def test_step_profile_times_the_real_rein_a_step_and_restores_every_patch():
    from dgsslib.backbones.vfm import VFM
    from dgsslib.engine.step_profile import markdown, profile_step
    from dgsslib.heads.mask2former.head import Mask2FormerHead
    before = (VFM.forward_features, Mask2FormerHead.forward, torch.Tensor.backward)
    prof = profile_step(_cfg(), steps=1)
    parts = prof["parts"]
    assert prof["steps"] == 1 and prof["s_per_step"] > 0
    assert prof["calls"]["VFM forward (student, grad)"] == 3       # x_s, x_mix, x_masked
    assert prof["calls"]["VFM forward (no grad)"] == 3             # teacher on x_t; STM features of x_s, x_mix
    assert prof["calls"]["STM forward (grad)"] == 2 and prof["calls"]["backward"] == 1
    assert sum(v for k, v in parts.items() if not k.startswith("other")) <= prof["s_per_step"] * 1.001
    assert (VFM.forward_features, Mask2FormerHead.forward, torch.Tensor.backward) == before
    assert "| **step** |" in markdown(prof)


def test_divergence_probe_is_exact_without_noise_and_sees_float_noise():
    from dgsslib.engine.divergence import lockstep
    cfg = _cfg()
    cfg["recipe"], cfg["recipe_options"], cfg["data"]["target"] = "supervised", {}, None
    same = lockstep(cfg, steps=2, every=1, eps=0.0, log=lambda *_: None)
    assert [r["distance"] for r in same] == [0.0, 0.0]            # lockstep copies stay bit-equal
    assert all(r["loss_a"] == r["loss_b"] for r in same)
    noisy = lockstep(cfg, steps=2, every=1, eps=1e-7, log=lambda *_: None)
    assert all(0.0 < r["distance"] < 1e-2 for r in noisy)
