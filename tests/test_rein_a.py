"""Rein-A (in progress): the recipe's branches run on the mask-classification head, log their terms,
switch off for the Table X ablation, resume exactly; eq. 15's NLL on the normalised semantic map."""
import json

import pytest
import torch
from safetensors.torch import load_file

from dgsslib.config_check import validate
from dgsslib.profiles import load_config_file, merge, resolve
from dgsslib.recipes.rein_a import normalized_nll
from dgsslib.train import fit

from test_train import ROOT, _run


def _cfg(**recipe_options):
    cfg = merge(resolve("smoke"), load_config_file(ROOT / "configs" / "rein_a" / "mini.yaml"))
    cfg["data"].update(train_length=8, eval_length=2, eval=["synthetic:night"])
    cfg["train"].update(max_steps=3, batch_size=2)
    cfg["recipe_options"] = {**cfg["recipe_options"], "tau": 0.0, **recipe_options}  # tau 0: q = 1 on a tiny model
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
    assert h["loss_mix"] > 0 and h["loss_mask"] > 0 and h["pseudo_weight"] == 1.0
    assert h["loss"] == pytest.approx(h["loss_source"] + h["loss_mix"] + h["loss_mask"], rel=1e-4)
    rec = fit(_cfg(mix=False, mask=False), tmp_path / "src", progress=False)
    assert "loss_mix" not in rec["history"][-1] and "loss_mask" not in rec["history"][-1]


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
    ha, hb = (json.loads((d / "results.json").read_text())["history"] for d in (a, b))
    assert ha == hb


def test_needs_the_mask_classification_head(tmp_path):
    cfg = _cfg()
    cfg["head"], cfg["head_options"] = "linear", {}
    with pytest.raises(ValueError, match="mask2former"):
        fit(validate(cfg), tmp_path, progress=False)
