"""Carry a committed run's outputs onto notebook cells whose source changed but whose effect did not -- proven by
re-running only the cells up to the last changed one, never assumed.

    python notebooks/carry.py notebooks/40_causal_tune.ipynb --from a492cf7~1 -p PROFILE mini -p PLAN full

Why. A mend to a notebook's setup cell (a new quick-plan branch, a clearer message) changes no number of the
committed run, but ``build.py`` keeps outputs only of cells whose source is unchanged, so the mend would cost a full
rerun (an hour for notebook 40). What this does instead, with the parameters the committed run was made with:

1. runs the notebook built from today's ``src/`` up to its last changed code cell (papermill, a truncated copy);
2. runs the committed notebook (``--from REV``) up to the same cell, the same way;
3. carries the committed outputs over only when (a) every code cell of today's prefix printed exactly what the
   committed run printed (after ``build.py``'s cleaning) and (b) both prefixes end with the same plain-data state
   (every global that is a dict / list / tuple / str / number / bool / None, by ``repr``): the cells after the prefix,
   unchanged in source, then see the same inputs and would print the same outputs.

Anything else is refused (exit 1, the first difference named): rerun the notebook and ``build.py --adopt`` it.
The two notebooks must have the same cells in the same order (a changed cell, not an added or removed one).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat

sys.path.insert(0, str(Path(__file__).resolve().parent))
from build import HERE, ROOT, clean  # noqa: E402

STATE_MARK = "__carry_state__ "
STATE_CELL = f"""import json as _json
_plain = (dict, list, tuple, str, int, float, bool, type(None))
print({STATE_MARK!r} + _json.dumps({{_k: repr(_v) for _k, _v in sorted(globals().items())
                                     if not _k.startswith("_") and isinstance(_v, _plain) and _k not in ("In", "Out")}}))"""


def committed(path: Path, rev: str):
    text = subprocess.run(["git", "show", f"{rev}:{path.relative_to(ROOT).as_posix()}"], cwd=ROOT, check=True,
                          capture_output=True, text=True).stdout
    return nbformat.reads(text, as_version=4)


def run_prefix(nb, upto: int, params: dict, tag: str):
    """Execute cells[:upto + 1] of ``nb`` plus a state-dump cell; the executed cells (cleaned) and the state."""
    pre = nbformat.reads(nbformat.writes(nb), as_version=4)
    pre.cells = pre.cells[:upto + 1]
    for c in pre.cells:
        if c.cell_type == "code":
            c.outputs, c.execution_count = [], None
    pre.cells.append(nbformat.v4.new_code_cell(STATE_CELL))
    with tempfile.TemporaryDirectory() as tmp:
        src, out = Path(tmp) / f"{tag}.ipynb", Path(tmp) / f"{tag}-out.ipynb"
        nbformat.write(pre, src)
        cmd = [sys.executable, "-m", "papermill", str(src), str(out), "--cwd", str(HERE), "--no-progress-bar", "-k", "python3"]
        for k, v in params.items():
            cmd += ["-p", k, v]
        r = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env=os.environ.copy())
        if r.returncode:
            raise SystemExit(f"[dgsslib] error: the {tag} prefix failed to run:\n{r.stderr[-2000:]}")
        ran = nbformat.read(out, as_version=4)
    ran.cells = [c for c in ran.cells if "injected-parameters" not in c.metadata.get("tags", [])]
    state_text = "".join(o.get("text", "") for o in ran.cells[-1].outputs if o.get("output_type") == "stream")
    state = json.loads(state_text.split(STATE_MARK, 1)[1])
    ran.cells = ran.cells[:-1]
    return clean(ran).cells, state


IDENTITY = re.compile(r"^code\s+: commit .*$", re.M)  # setup()'s banner: which commit ran and when -- differs by design


def outputs_of(cell) -> list:
    """A cell's outputs without what differs between any two runs: execution counts and the banner's run identity
    (the carried output keeps the committed run's, the commit its numbers came from)."""
    return [{k: IDENTITY.sub("code : <run identity>", v) if k == "text" else v for k, v in o.items()
             if k != "execution_count"} for o in cell.get("outputs", [])]


def carry(target: Path, rev: str, params: dict, old=None) -> int:
    """0 when the committed outputs were carried onto ``target`` (or nothing changed), 1 when refused.
    ``old``: the committed notebook itself instead of ``git show rev:target`` (tests)."""
    new = nbformat.read(target, as_version=4)
    old = old if old is not None else committed(target, rev)
    if [c.cell_type for c in new.cells] != [c.cell_type for c in old.cells]:
        print(f"[dgsslib] error: {target.name} has other cells than at {rev} (added or removed): rerun and --adopt it")
        return 1
    changed = [i for i, (a, b) in enumerate(zip(new.cells, old.cells)) if a.cell_type == "code" and a.source != b.source]
    if not changed:
        print(f"{target.name}: no code cell changed since {rev}; nothing to carry")
        return 0
    upto = max(changed)
    print(f"{target.name}: code cells {changed} changed since {rev}; running both prefixes (cells 0-{upto}) with {params}")
    new_cells, new_state = run_prefix(new, upto, params, "today")
    _, old_state = run_prefix(old, upto, params, "committed")
    old_clean = clean(nbformat.reads(nbformat.writes(old), as_version=4)).cells
    for i in range(upto + 1):
        if old.cells[i].cell_type == "code" and outputs_of(new_cells[i]) != outputs_of(old_clean[i]):
            print(f"[dgsslib] error: cell {i} prints something else than the committed run: rerun and --adopt it\n"
                  f"  today:     {json.dumps(outputs_of(new_cells[i]))[:600]}\n  committed: {json.dumps(outputs_of(old_clean[i]))[:600]}")
            return 1
    differ = sorted(k for k in set(new_state) | set(old_state) if new_state.get(k) != old_state.get(k))
    if differ:
        print(f"[dgsslib] error: the prefixes end in other states ({', '.join(differ[:6])}): later cells would see "
              "other inputs; rerun and --adopt it")
        return 1
    for i in changed:
        new.cells[i].outputs, new.cells[i].execution_count = old.cells[i].outputs, old.cells[i].execution_count
    nbformat.write(clean(new), target)
    print(f"carried the committed outputs of cells {changed} into notebooks/{target.name}: the prefix printed the same "
          f"and ended in the same state ({len(new_state)} plain globals)")
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("notebook", type=Path)
    p.add_argument("--from", dest="rev", required=True, help="the commit whose executed notebook holds the outputs")
    p.add_argument("-p", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                   help="a parameter of the committed run (as papermill -p), e.g. -p PROFILE mini -p PLAN full")
    a = p.parse_args(argv)
    return carry(a.notebook.resolve(), a.rev, dict(a.p))


if __name__ == "__main__":
    raise SystemExit(main())
