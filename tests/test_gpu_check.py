"""The prepared GPU check runs end to end at tiny sizes on CPU (``make gpu-check DRY_RUN=1``): every
part measures something, no part fails, the report holds one table per part."""
import json

import pytest
import torch

from dgsslib import gpu_check


def test_gpu_check_dry_run_measures_every_part(tmp_path):
    out, js = tmp_path / "bench_gpu.md", tmp_path / "rows.json"
    assert gpu_check.main(["--dry-run", "--out", str(out), "--json", str(js)]) == 0
    rows = json.loads(js.read_text())
    assert not [r for r in rows if "error" in r]
    parts = {r["part"] for r in rows}
    assert parts == {"Table VII", "attention/compile", "recipe step", "VFMSeg inference", "notebook"}
    timed = [r for r in rows if r["part"] in ("Table VII", "attention/compile", "recipe step")]
    n_vii = len(gpu_check.TABLE_VII) * len(gpu_check.sizes(True)["dtypes"])
    assert len(timed) == n_vii + 3 + len(gpu_check.RECIPES) and all(r["s_iter"] > 0 for r in timed)
    assert {r["name"] for r in rows if r["part"] == "recipe step"} == {r[0] for r in gpu_check.RECIPES}
    vfm = next(r for r in rows if r["part"] == "VFMSeg inference")
    assert vfm["s_per_image"] > 0 and vfm["image"] == "64x128"
    text = out.read_text()
    assert text.count("\n## ") == 5 and "dry-run" in text


@pytest.mark.skipif(torch.cuda.is_available(), reason="the refusal is for machines without a GPU")
def test_gpu_check_refuses_a_real_run_without_a_gpu(tmp_path, capsys):
    assert gpu_check.main(["--out", str(tmp_path / "x.md")]) == 2
    assert "no CUDA device" in capsys.readouterr().err
    assert not (tmp_path / "x.md").exists()
