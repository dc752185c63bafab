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


# ------------------------------------------------------------------ committed-output hygiene (#12)
def _build_module():
    import importlib.util
    spec = importlib.util.spec_from_file_location("nb_build", ROOT / "notebooks" / "build.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_committed_outputs_are_clean(path):
    """No stale bars, machine noise or widget state; JupyterLab metadata; counts 1..n; params parse."""
    assert _build_module().problems(path) == []


def test_clean_turns_an_executed_notebook_into_a_committable_one():
    import nbformat
    b = _build_module()
    params = nbformat.v4.new_code_cell("PROFILE = 'mini'\nSEED = 0\nOVERRIDES = {}", metadata={"tags": ["parameters"]})
    run = nbformat.v4.new_code_cell("train()", execution_count=7)
    run.outputs = [
        nbformat.v4.new_output("display_data", data={b.WIDGET_MIME: {"model_id": "x"}, "text/plain": "train:   0%|  | 0/200"}),
        nbformat.v4.new_output("stream", name="stderr", text="\rtrain:   0%|  | 0/200\rtrain:  50%|# | 100/200"),
        nbformat.v4.new_output("stream", name="stderr", text="\rtrain: 100%|##| 200/200\n[progress] eval: 3/8 (38%)\n"),
        nbformat.v4.new_output("stream", name="stdout", text=f"wrote {b.ROOT}/results/x/mini.json\n"
                               "[dgsslib] loaded w from /root/.cache/dgsslib/w.safetensors\n"
                               "[dgsslib] dinov2_s: hub weights unavailable (cannot reach huggingface.co: [Errno -2] x)\n"
                               "freeze-s0: 200 steps, 2.9 min, targets 27.9 mIoU\n"),
    ]
    res = nbformat.v4.new_code_cell("1 + 1", execution_count=9)
    res.outputs = [nbformat.v4.new_output("execute_result", data={"text/plain": "2"}, execution_count=9)]
    nb = nbformat.v4.new_notebook(cells=[params, run, res], metadata={
        "kernelspec": {"name": "python3", "display_name": "Python 3"}, "widgets": {"state": {}}, "papermill": {}})
    out = b.clean(nb)
    texts = ["".join(o.get("text", "")) for o in out.cells[1].outputs]
    assert texts == ["wrote results/x/mini.json\n[dgsslib] loaded w from ~/.cache/dgsslib/w.safetensors\n"
                     "freeze-s0: 200 steps, 2.9 min, targets 27.9 mIoU\n"]
    assert [c.execution_count for c in out.cells] == [None, 1, 2] and out.cells[2].outputs[0]["execution_count"] == 2
    assert set(out.metadata) == {"kernelspec", "language_info"}
    assert out.metadata["kernelspec"]["display_name"] == "Python 3 (ipykernel)"
    tmp = ROOT / "build" / "test_clean.ipynb"
    tmp.parent.mkdir(exist_ok=True)
    nbformat.write(out, tmp)
    try:
        assert b.problems(tmp) == []
        nb.metadata["widgets"] = {}
        nb.cells[1].execution_count = 5
        nb.cells[1].outputs.append(nbformat.v4.new_output("stream", name="stderr", text="eval:  0%|   | 0/8\n"))
        nbformat.write(nb, tmp)
        found = "\n".join(b.problems(tmp))
        assert "metadata.widgets" in found and "execution counts" in found and "'0%|'" in found
    finally:
        tmp.unlink()


def test_parameters_must_parse_cleanly_in_papermill():
    b = _build_module()
    assert b.papermill_warnings("import os\nPROFILE = os.environ.get('X', 'mini')  # smoke | mini\nSEED = 0\n") == []
    assert b.papermill_warnings("SEEDS = None  # None = the default\n")  # two '=' on one line


SOURCES = sorted((ROOT / "notebooks" / "src").glob("[0-9]*.py"))


@pytest.mark.parametrize("path", SOURCES, ids=[p.stem for p in SOURCES])
def test_user_overrides_are_applied_after_every_notebook_default(path):
    """A user's OVERRIDES win in every notebook (issue: notebook 10's mini branch used to overwrite
    train.max_steps): in the cell that calls setup(), nothing assigns cfg after the merge of OVERRIDES."""
    import ast
    cells = [c for c in path.read_text().split("\n# %%") if "setup(PROFILE, SEED, OVERRIDES" in c]
    assert len(cells) == 1
    body = "\n".join(line for line in cells[0].splitlines()[1:] if not line.lstrip().startswith("%"))
    tree = ast.parse(body)
    writes = []  # (line, mentions OVERRIDES) of each assignment to cfg or cfg[...]
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            names = [t.id if isinstance(t, ast.Name) else getattr(t.value, "id", None) for t in node.targets
                     if isinstance(t, (ast.Name, ast.Subscript))]
            if "cfg" in names:
                text = ast.get_source_segment(body, node.value) or ""
                writes.append((node.lineno, "OVERRIDES" in text or re.search(r"\bover\b", text) is not None))
    writes.sort()
    if len(writes) > 1:  # setup() itself applies OVERRIDES; a notebook with defaults of its own re-applies them last
        assert writes[-1][1], f"{path.name}: cfg is assigned after the OVERRIDES merge (line {writes[-1][0]} of the setup cell)"
