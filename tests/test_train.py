"""The trainer: results, exact resume after SIGKILL, refusal of foreign checkpoints, NaN stop,
frozen weights, param groups, DDP under torchrun."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from dgsslib import checkpoint as ck
from dgsslib.profiles import resolve
from dgsslib.train import TrainingDiverged, fit, param_groups

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
    cli("--method", "freeze", "--work-dir", str(tmp_path), "--max-steps", "3")
    rec = json.loads((tmp_path / "results.json").read_text())
    assert rec["profile"] == "smoke" and rec["backbone"] == "tiny" and rec["weights"] == "random init"
    assert set(rec["metrics"]) == {"source", "citys"}
    assert 0 <= rec["metrics"]["source"]["miou"] <= 100 and rec["metrics"]["source"]["test_scale"] == "native"
    assert rec["device"]["torch"] and rec["config"]["train"]["max_steps"] == 3
    final = load_file(tmp_path / "final.safetensors")
    assert final and all(k.startswith("head.") for k in final)  # freeze: only the head trains


def test_resume_after_sigkill_is_exact(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    common = ["--method", "full", "--max-steps", "6", "--ckpt-every", "2", "--seed", "3"]
    cli(*common, "--work-dir", str(a))
    killed = cli(*common, "--work-dir", str(b), env={"DGSS_FAULT_AFTER_CKPT_STEP": "4"}, check=False)
    assert killed.returncode == -9, killed.stderr  # died by SIGKILL right after the step-4 checkpoint
    assert not (b / "final.safetensors").exists()
    assert json.loads((b / "ckpt" / "latest.json").read_text())["step"] == 4
    resumed = cli(*common, "--work-dir", str(b), "--resume")
    assert "resumed from" in resumed.stdout
    fa, fb = load_file(a / "final.safetensors"), load_file(b / "final.safetensors")
    assert fa.keys() == fb.keys() and len(fa) > 10
    for k in fa:
        assert torch.equal(fa[k], fb[k]), k


def test_checkpoint_from_another_method_is_refused(tmp_path):
    cli("--method", "freeze", "--work-dir", str(tmp_path), "--max-steps", "4", "--ckpt-every", "2")
    r = cli("--method", "full", "--work-dir", str(tmp_path), "--max-steps", "4", "--resume", check=False)
    assert r.returncode == 2
    assert "another model" in r.stderr and "method" in r.stderr


def test_nan_loss_stops_and_keeps_last_good_checkpoint(tmp_path):
    cfg = small(method="full")
    cfg["train"].update(max_steps=20, lr=1e12, ckpt_every=1)
    with pytest.raises(TrainingDiverged, match="last good checkpoint"):
        fit(cfg, tmp_path, progress=False)
    last = ck.latest_checkpoint(tmp_path)
    assert last is not None
    tensors, meta = ck.load_tensors(last)
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
