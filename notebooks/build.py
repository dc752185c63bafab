"""Build the .ipynb notebooks from their percent-format sources in notebooks/src/.

    python notebooks/build.py            # rebuild every notebook whose source changed (keeps outputs
                                         # of cells whose source is unchanged)
    python notebooks/build.py --check    # exit 1 if a notebook's cell sources differ from src/
    python notebooks/build.py --adopt build/notebooks/mini/01_frozen_vs_full.ipynb
                                         # commit an executed run's outputs (papermill's injected
                                         # parameters cell is dropped, so PROFILE stays a choice)

Cell markers: ``# %% [markdown]`` (markdown; lines start with "# "), ``# %%`` (code) and
``# %% tags=["parameters"]`` (the papermill parameters cell). Reviewing a .py diff beats an
.ipynb diff; the .ipynb files are what readers open.
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent
MARK = re.compile(r"^# %%(?P<md> \[markdown\])?(?: tags=(?P<tags>\[.*\]))?\s*$")


def parse(src: str) -> list[dict]:
    cells, cur = [], None
    for line in src.splitlines():
        m = MARK.match(line)
        if m:
            if cur:
                cells.append(cur)
            cur = {"type": "markdown" if m["md"] else "code", "tags": json.loads(m["tags"]) if m["tags"] else [],
                   "lines": []}
            continue
        if cur is None:
            continue
        if cur["type"] == "markdown":
            line = line[2:] if line.startswith("# ") else line[1:] if line.startswith("#") else line
        cur["lines"].append(line)
    if cur:
        cells.append(cur)
    out = []
    for c in cells:
        text = "\n".join(c["lines"]).strip("\n")
        cell = nbformat.v4.new_markdown_cell(text) if c["type"] == "markdown" else nbformat.v4.new_code_cell(text)
        if c["tags"]:
            cell.metadata["tags"] = c["tags"]
        out.append(cell)
    return out


def build(src_path: Path, check: bool = False) -> bool:
    target = HERE / (src_path.stem + ".ipynb")
    cells = parse(src_path.read_text())
    old = nbformat.read(target, as_version=4) if target.exists() else None
    if old is not None and [c.source for c in old.cells] == [c.source for c in cells] and \
            [c.cell_type for c in old.cells] == [c.cell_type for c in cells]:
        return True
    if check:
        print(f"{target.name} is out of date with src/{src_path.name}: run python notebooks/build.py")
        return False
    prev = {c.source: c for c in old.cells if c.cell_type == "code"} if old else {}
    for c in cells:  # keep outputs of unchanged code cells
        if c.cell_type == "code" and c.source in prev:
            c.outputs, c.execution_count = prev[c.source].outputs, prev[c.source].execution_count
    nb = nbformat.v4.new_notebook(cells=cells, metadata={
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
        "language_info": {"name": "python"}})
    nbformat.write(nb, target)
    print(f"wrote {target.relative_to(HERE.parent)}")
    return True


def adopt(executed: Path) -> None:
    """Copy the outputs of an executed notebook onto notebooks/<name>.ipynb (sources must match)."""
    nb = nbformat.read(executed, as_version=4)
    nb.cells = [c for c in nb.cells if "injected-parameters" not in c.metadata.get("tags", [])]
    for c in nb.cells:
        for key in ("papermill", "execution"):
            c.metadata.pop(key, None)
    nb.metadata.pop("papermill", None)
    target = HERE / executed.name
    src = nbformat.read(target, as_version=4)
    if [c.source for c in src.cells] != [c.source for c in nb.cells]:
        raise SystemExit(f"{executed} was executed from other sources than {target.name}: rebuild and re-run")
    nbformat.write(nb, target)
    print(f"adopted outputs of {executed} into notebooks/{target.name} ({target.stat().st_size / 1e3:.0f} kB)")


def main(argv: list[str]) -> int:
    if argv[:1] == ["--adopt"]:
        for path in argv[1:]:
            adopt(Path(path))
        return 0
    check = "--check" in argv
    ok = all([build(p, check) for p in sorted((HERE / "src").glob("*.py"))])
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
