"""The trainer: results, exact resume after SIGKILL (with and without an EMA teacher), refusal of
foreign checkpoints, NaN stop, frozen weights, param groups, DDP under torchrun."""
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from dgsslib import checkpoint as ck
from dgsslib.profiles import resolve
from dgsslib.recipes.supervised import Supervised
from dgsslib.engine.loop import TrainingDiverged
from dgsslib.engine.train import fit
from dgsslib.optim import param_groups

ROOT = Path(__file__).resolve().parent.parent


def cli(*args, env=None, check=True):
    e = dict(os.environ, PYTHONUNBUFFERED="1", **(env or {}))
    r = subprocess.run([sys.executable, "-m", "dgsslib.train", "--profile", "smoke", "--no-progress", *args],
                       cwd=ROOT, env=e, capture_output=True, text=True, timeout=300)
    if check and r.returncode != 0:
        raise AssertionError(f"exit {r.returncode}\n{r.stdout}\n{r.stderr}")
    return r


def small(**over):
    cfg = resolve("smoke", {"data": {"train_length": 8, "eval_length": 2, "eval": ["synthetic:source"]},
                            "train": {"max_steps": 3, "batch_size": 2}})
    for k, v in over.items():
        cfg[k] = v
    return cfg


def test_cli_writes_results_and_final(tmp_path):
    cli("--method", "freeze", "--work-dir", str(tmp_path), "--max-steps", "3", "--set", "recipe=supervised")
    rec = json.loads((tmp_path / "results.json").read_text())
    assert rec["profile"] == "smoke" and rec["backbone"] == "tiny" and rec["weights"] == "random init"
    assert set(rec["metrics"]) == {"source", "citys"}
    assert 0 <= rec["metrics"]["source"]["miou"] <= 100 and rec["metrics"]["source"]["test_scale"] == "native"
    assert rec["device"]["torch"] and rec["config"]["train"]["max_steps"] == 3
    assert rec["config"]["recipe"] == "supervised" and rec["final_step"] == 3 and rec["steps_run"] == 3
    final = load_file(tmp_path / "final.safetensors")
    assert final and all(k.startswith("head.") for k in final)  # freeze: only the head trains


KILL = textwrap.dedent("""
    import json, os, sys
    from dgsslib.engine.train import Callback, fit
    class Kill(Callback):
        def on_checkpoint(self, step, path):
            if step == {kill}:
                os.kill(os.getpid(), 9)
    cfg = json.loads(sys.argv[1])
    fit(cfg, sys.argv[2], resume=len(sys.argv) > 3, progress=False, callbacks=[Kill()])
""")


def _run(cfg, work, kill=-1, resume=False):
    args = [sys.executable, "-c", KILL.format(kill=kill), json.dumps(cfg), str(work)] + (["resume"] if resume else [])
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("recipe", ["supervised", "self_training"])
def test_resume_after_sigkill_is_exact(tmp_path, recipe):
    """Kill right after the step-4 checkpoint, resume: final weights (and, with a teacher, the
    EMA teacher's) and the full loss history equal an uninterrupted run's, bit for bit."""
    cfg = small(method="full" if recipe == "supervised" else "rein", seed=3, recipe=recipe)
    cfg["train"].update(max_steps=6, ckpt_every=2)
    if recipe == "self_training":
        cfg["data"]["target"] = "synthetic:night"
        cfg["recipe_options"] = {"alpha": 0.9, "tau": 0.1}  # low threshold: the tiny model gets pseudo-labels
    a, b = tmp_path / "a", tmp_path / "b"
    assert _run(cfg, a).returncode == 0
    killed = _run(cfg, b, kill=4)
    assert killed.returncode == -9, killed.stderr  # died by SIGKILL right after the step-4 checkpoint
    assert not (b / "final.safetensors").exists()
    assert json.loads((b / "ckpt" / "latest.json").read_text())["step"] == 4
    resumed = _run(cfg, b, resume=True)
    assert resumed.returncode == 0 and "resumed from" in resumed.stdout, resumed.stderr
    fa, fb = load_file(a / "final.safetensors"), load_file(b / "final.safetensors")
    assert fa.keys() == fb.keys() and len(fa) > 3
    for k in fa:
        assert torch.equal(fa[k], fb[k]), k
    ra, rb = (json.loads((d / "results.json").read_text()) for d in (a, b))
    assert [h["step"] for h in rb["history"]] == list(range(1, 7))  # history covers every step
    assert ra["history"] == rb["history"] and rb["resumed_from"] == 4 and rb["steps_run"] == 2
    if recipe == "self_training":
        ta, tb = (load_file(d / "ckpt" / "step_0000006.safetensors") for d in (a, b))
        teacher = [k for k in ta if k.startswith("recipe.teacher.")]
        assert teacher and all(torch.equal(ta[k], tb[k]) for k in teacher)
        assert {"loss_source", "loss_pseudo", "pseudo_weight"} <= set(rb["history"][0])


def test_checkpoint_from_another_method_is_refused(tmp_path):
    cfg = small(method="freeze")
    cfg["train"].update(max_steps=4, ckpt_every=2)
    fit(cfg, tmp_path, progress=False)
    other = small(method="full")
    other["train"].update(max_steps=4, ckpt_every=2)
    from dgsslib.engine.workdir import WorkDirError
    with pytest.raises(WorkDirError, match=r"method: 'freeze' -> 'full'"):
        fit(other, tmp_path, resume=True, progress=False)
    # a checkpoint file brought in from another model is refused by its own identity too
    meta = ck.load_tensors(ck.latest_checkpoint(tmp_path))[1]
    bad = dict(meta["config"], method="full")
    with pytest.raises(ck.CheckpointMismatch, match="another model"):
        ck.check_compatible(meta, bad, "x")


class NaNAt(Supervised):
    """The supervised step, whose loss turns NaN at step ``at`` (as if the weights written just
    before had blown up)."""

    def __init__(self, at: int = 5):
        super().__init__()
        self.at = at

    def step(self, model, batches, step):
        terms = super().step(model, batches, step)
        return dict(terms, loss=terms["loss"] * float("nan")) if step == self.at else terms


def test_nan_loss_stops_and_keeps_a_checkpoint_that_gave_a_finite_loss(tmp_path):
    from dgsslib.recipes import RECIPES
    RECIPES.register("nan_at", "test_train:NaNAt")  # tests/ is on sys.path under pytest
    cfg = small(method="full", recipe="nan_at", recipe_options={"at": 5})
    cfg["train"].update(max_steps=20, ckpt_every=1)
    with pytest.raises(TrainingDiverged, match="last good checkpoint") as info:
        fit(cfg, tmp_path, progress=False)
    assert "loss is nan at step 5" in str(info.value)
    last = ck.latest_checkpoint(tmp_path)
    tensors, meta = ck.load_tensors(last)
    assert meta["step"] == 4  # step_5's weights gave the NaN: demoted; step_4's gave a finite loss
    assert (tmp_path / "ckpt" / "step_0000005.safetensors.bad").exists()
    assert str(last) in str(info.value) and not (tmp_path / "final.safetensors").exists()


def test_exploding_weights_stop_the_run(tmp_path):
    cfg = small(method="full")
    cfg["train"].update(max_steps=30, lr=1e12, ckpt_every=1)
    with pytest.raises(TrainingDiverged, match="last good checkpoint"):
        fit(cfg, tmp_path, progress=False)
    last = ck.latest_checkpoint(tmp_path)
    if last is not None:  # whatever is left as last good holds finite weights
        tensors, _ = ck.load_tensors(last)
        assert all(torch.isfinite(t).all() for t in tensors.values() if t.is_floating_point())
    assert not (tmp_path / "final.safetensors").exists()


def test_frozen_backbone_unchanged_head_changed(tmp_path):
    from dgsslib.model import build_model
    cfg = small()
    model = build_model(cfg, verbose=False)
    before_bb = {k: v.clone() for k, v in model.vfm.state_dict().items()}
    before_head = {k: v.clone() for k, v in model.head.state_dict().items()}
    fit(cfg, tmp_path, model=model, progress=False)
    assert all(torch.equal(before_bb[k], v) for k, v in model.vfm.state_dict().items())
    assert any(not torch.equal(before_head[k], v) for k, v in model.head.state_dict().items())


def test_param_groups_lr_and_weight_decay():
    from dgsslib.model import build_model
    model = build_model(small(method="full"), verbose=False)
    groups = param_groups(model, lr=1e-4, weight_decay=0.05)
    by_name = {n: g for g in groups for n in g["names"]}
    assert by_name["vfm.model.blocks.0.attn.qkv.weight"]["base_lr"] == pytest.approx(1e-5)
    assert by_name["vfm.model.blocks.0.attn.qkv.weight"]["weight_decay"] == 0.05
    assert by_name["vfm.model.blocks.0.norm1.weight"]["weight_decay"] == 0.0
    assert by_name["vfm.model.blocks.0.ls1.gamma"]["weight_decay"] == 0.0
    assert by_name["vfm.model.pos_embed"]["weight_decay"] == 0.0
    assert by_name["head.cls.weight"]["base_lr"] == 1e-4 and by_name["head.cls.weight"]["weight_decay"] == 0.05
    n_trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert sum(p.numel() for g in groups for p in g["params"]) == n_trainable


@pytest.mark.slow
def test_torchrun_ddp_two_processes(tmp_path):
    e = dict(os.environ, PYTHONUNBUFFERED="1", OMP_NUM_THREADS="1")
    r = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_port=29533",
                        "-m", "dgsslib.train", "--profile", "smoke", "--method", "freeze", "--no-progress",
                        "--work-dir", str(tmp_path), "--max-steps", "2"],
                       cwd=ROOT, env=e, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert (tmp_path / "results.json").exists()
