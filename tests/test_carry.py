"""notebooks/carry.py: a changed cell gets the committed outputs only when re-running the prefix proves that it
prints the same and leaves the same state for the cells after it."""
import sys
from pathlib import Path

import nbformat
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "notebooks"))
import carry  # noqa: E402

OLD = ["X = 1", "Y = X + 1\nprint(Y)", "print(Y * 10)"]
OUT = [None, "2\n", "20\n"]


def _nb(sources, outputs):
    cells = []
    for i, (src, out) in enumerate(zip(sources, outputs)):
        c = nbformat.v4.new_code_cell(src, metadata={"tags": ["parameters"]} if i == 0 else {})
        if out is not None:
            c.outputs, c.execution_count = [nbformat.v4.new_output("stream", name="stdout", text=out)], i + 1
        cells.append(c)
    return nbformat.v4.new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                                          "language": "python"}})


@pytest.mark.parametrize("changed, carried", [
    ("Y = 1 + X  # the same value, written otherwise\nprint(Y)", True),
    ("Y = X + 2\nprint(X + 1)", False),   # prints the same, but the next cell would see another Y
    ("Y = X + 1\nprint(Y, 'units')", False),  # prints something else
])
def test_carry_only_what_a_rerun_of_the_prefix_proves(tmp_path, changed, carried):
    old = _nb(OLD, OUT)
    new_sources = [OLD[0], changed, OLD[2]]
    target = tmp_path / "nb.ipynb"
    nbformat.write(_nb(new_sources, [None, None, "20\n"]), target)
    rc = carry.carry(target, "REV", {"X": "1"}, old=old)
    got = nbformat.read(target, as_version=4)
    assert (rc == 0) is carried
    texts = ["".join(o.get("text", "") for o in c.outputs) for c in got.cells]
    assert texts[1] == ("2\n" if carried else "")  # refused: the cell stays without outputs (rerun it)
    assert [c.source for c in got.cells] == new_sources
