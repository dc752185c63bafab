"""The paper recipes: config files resolve strictly, and Rein + Mask2Former runs end to end."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dgsslib.profiles import load_config_file, merge, resolve

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("name", sorted(p.name for p in (ROOT / "configs" / "rein_g").glob("*.yaml")))
def test_config_files_resolve_strictly(name):
    profile = "paper" if name.startswith("paper") else "mini"
    cfg = merge(resolve(profile), load_config_file(ROOT / "configs" / "rein_g" / name))
    if profile == "paper":
        assert cfg["backbone"] == "dinov2_l" and cfg["patch_size"] == 16 and cfg["head"] == "mask2former"
        assert cfg["train"]["max_steps"] == 40000 and cfg["train"]["batch_size"] == 4 and cfg["train"]["lr"] == 1e-4
        assert cfg["eval"]["mode"] == "slide" and (cfg["eval"]["crop"], cfg["eval"]["stride"]) == (512, 341)


def test_rein_mask2former_smoke_end_to_end(tmp_path):
    r = subprocess.run([sys.executable, "-m", "dgsslib.train", "--method", "rein", "--profile", "smoke",
                        "--config", "configs/rein_g/mini.yaml", "--work-dir", str(tmp_path), "--max-steps", "2",
                        "--no-progress", "--set", "data.eval=[\"synthetic:source\"]"],
                       cwd=ROOT, env=dict(os.environ, PYTHONUNBUFFERED="1"), capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    rec = json.loads((tmp_path / "results.json").read_text())
    assert rec["head"] == "mask2former" and rec["method"] == "rein"
    assert rec["trainable_head_params"] > 1e6
    from safetensors.torch import load_file
    final = load_file(tmp_path / "final.safetensors")
    assert any(k.startswith("method.learnable_tokens") for k in final)  # Rein state kept
    assert any(k.startswith("head.") for k in final)
    assert not any(k.startswith("vfm.model.blocks") for k in final)  # the frozen VFM is never stored
