"""The README's layout section, generated from the docstrings of the tree.

    python -m dgsslib.layout            # print it
    python -m dgsslib.layout --readme   # write it between the README's layout markers
    python -m dgsslib.layout --check    # exit 1 when the README's section is out of date (tests run it)
"""
from __future__ import annotations

import argparse
import ast
import re
import sys
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
ROOT = PACKAGE.parent
START, END = "<!-- layout:start -->", "<!-- layout:end -->"
OTHER = [("notebooks/", "NN_*.ipynb, built from notebooks/src/*.py by notebooks/build.py (carry.py: mends without reruns)"),
         ("configs/", "<paper>/{paper,mini}.yaml: the papers' recipes and their CPU-sized versions"),
         ("data_scripts/", "prepare_<dataset>.py, verify.py, convert_offline_weights.py, sam2_regions.py"),
         ("tests/", "mirrors dgsslib/; fixtures build tiny fake datasets in the real layouts"),
         ("results/", "<notebook>/<profile>.json (runs with provenance) and bench.md")]


def summary(path: Path, width: int = 100) -> str:
    """The first sentence of a module's docstring, cut to ``width`` characters."""
    doc = ast.get_docstring(ast.parse(path.read_text())) or ""
    first = " ".join(doc.split("\n\n")[0].split())
    first = re.sub(r":\w+:`~?([^`]+)`", r"\1", first).replace("``", "")  # rst roles and literals -> plain
    first = first.split(". ")[0].rstrip(".")
    return first if len(first) <= width else first[: width - 1] + "…"


def layout() -> str:
    rows = []
    for pkg in sorted(p for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()):
        rows.append((f"  {pkg.name}/", summary(pkg / "__init__.py")))
    for mod in sorted(p for p in PACKAGE.glob("*.py") if p.name not in ("__init__.py", "__main__.py")):
        rows.append((f"  {mod.name}", summary(mod)))
    w = max(len(a) for a, _ in rows + OTHER) + 2
    lines = ["```", "dgsslib/"] + [f"{a:<{w}}{b}" for a, b in rows] + [f"{a:<{w}}{b}" for a, b in OTHER] + ["```"]
    return "\n".join(lines)


def _readme_parts() -> tuple[str, str, str]:
    text = (ROOT / "README.md").read_text()
    if START not in text or END not in text:
        raise SystemExit("[dgsslib] error: README.md has no layout markers")
    head, rest = text.split(START, 1)
    return head, rest.split(END, 1)[0], rest.split(END, 1)[1]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m dgsslib.layout", description=__doc__.split("\n\n")[0])
    p.add_argument("--readme", action="store_true", help="write the section into README.md")
    p.add_argument("--check", action="store_true", help="exit 1 when README.md's section is out of date")
    a = p.parse_args(argv)
    text = layout()
    if a.check or a.readme:
        head, old, tail = _readme_parts()
        if a.check:
            ok = old.strip() == text.strip()
            print("README layout: up to date" if ok else "README layout is out of date: python -m dgsslib.layout --readme")
            return 0 if ok else 1
        (ROOT / "README.md").write_text(head + START + "\n" + text + "\n" + END + tail)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
