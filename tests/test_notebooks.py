"""Notebook hygiene: structure the kit promises, sources in sync, nothing hidden."""
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9]*.ipynb"))


def test_there_are_notebooks():
    assert len(NOTEBOOKS) >= 2


def test_sources_in_sync():
    r = subprocess.run([sys.executable, "notebooks/build.py", "--check"], cwd=ROOT, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_structure(path):
    nb = json.loads(path.read_text())
    cells = nb["cells"]
    assert path.stat().st_size < 2_500_000, "keep notebooks small"
    assert cells[0]["cell_type"] == "markdown" and "".join(cells[0]["source"]).startswith("# ")
    assert sum("".join(c["source"]).lstrip().startswith("# ") for c in cells if c["cell_type"] == "markdown") == 1, \
        "exactly one H1 (the title cell)"
    card = "".join(cells[1]["source"])
    assert cells[1]["cell_type"] == "markdown" and "Runtime" in card and "Reproduces" in card
    params = [c for c in cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(params) == 1
    src = "".join(params[0]["source"])
    for name in ("PROFILE", "SEED", "OVERRIDES"):
        assert re.search(rf"^{name}\s*=", src, re.M), name
    code = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "code")
    assert "!pip" not in code and ".cuda()" not in code and "urlretrieve" not in code
    assert "setup(PROFILE, SEED, OVERRIDES" in code, "the parameters must be validated strictly"
    md = "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown").lower()
    assert "exercises" in md and "paper" in md
