"""Build the .ipynb notebooks from their percent-format sources in notebooks/src/, adopt executed
runs, and enforce what a committed notebook must look like.

    python notebooks/build.py            # rebuild every notebook whose source changed (keeps outputs
                                         # of cells whose source is unchanged)
    python notebooks/build.py --check    # exit 1 if a notebook is out of date with src/ or breaks a
                                         # hygiene rule (listed below; tests/test_notebooks.py runs it)
    python notebooks/build.py --adopt build/notebooks/mini/01_frozen_vs_full.ipynb
                                         # commit an executed run's outputs, cleaned (papermill's
                                         # injected parameters cell is dropped, so PROFILE stays a choice)
    python notebooks/build.py --clean    # apply the cleaning to the committed notebooks in place

Cell markers: ``# %% [markdown]`` (markdown; lines start with "# "), ``# %%`` (code) and
``# %% tags=["parameters"]`` (the papermill parameters cell). Reviewing a .py diff beats an
.ipynb diff; the .ipynb files are what readers open.

Cleaning (``--adopt`` / ``--clean``): widget outputs and ``metadata.widgets`` dropped; stream text
collapsed to what a terminal shows (``\\r`` redraws keep their last state), progress lines
(``dgsslib.progress`` log lines, tqdm bars) and network-error lines dropped; absolute paths made
relative (repo) or ``~`` (home); a weights line (``[dgsslib] weights:`` / ``[dgsslib] loaded``) kept
the first time only (the kit says it once per process now: ``dgsslib.progress.say_once``); a bare
``PosixPath(...)`` echo dropped; PNG figures re-encoded with a 256-colour palette when smaller; a re-run's "changed since ... from scratch" and "the committed record attests bit-equal" lines dropped; empty stream outputs (a cleared progress line's stderr bar) dropped;
execution counts renumbered 1, 2, ...; notebook metadata set to what JupyterLab + ipykernel write, so
opening and closing a notebook leaves ``git status`` clean.

Hygiene rules (``--check``): no output text contains ``0%|``, ``huggingface.co``, ``Errno`` or an
absolute path under ``/root``, ``/home``, ``/tmp``, ``/work``; no widget outputs or
``metadata.widgets``; kernelspec ``python3`` / ``Python 3 (ipykernel)`` and full ``language_info``;
execution counts consecutive; exactly one parameters cell, parsed by papermill without warnings; no
weights line twice, no ``PosixPath(`` echo, no empty stream output, no "changed since ... from scratch"
line (a re-run's history, not the run's).
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import sys
from pathlib import Path

import nbformat

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
MARK = re.compile(r"^# %%(?P<md> \[markdown\])?(?: tags=(?P<tags>\[.*\]))?\s*$")
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
LANGUAGE_INFO = {"codemirror_mode": {"name": "ipython", "version": 3}, "file_extension": ".py",
                 "mimetype": "text/x-python", "name": "python", "nbconvert_exporter": "python",
                 "pygments_lexer": "ipython3", "version": "3.11.7"}
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
FORBIDDEN = re.compile(r"0%\||huggingface\.co|Errno|/root|/home|/tmp|/work")
PROGRESS_LINE = re.compile(r"^\[progress\] |\d+%\|")
NOISE_LINE = re.compile(r"huggingface\.co|Errno|hub weights unavailable")
ONCE_LINE = re.compile(r"^\[dgsslib\] (weights: |loaded )")   # said once per process by the kit
RERUN_LINE = re.compile(r"changed since .*from scratch|the committed record attests bit-equal")  # a re-run's history


# ----------------------------------------------------------------------------------------- build
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
    for i, c in enumerate(cells):
        text = "\n".join(c["lines"]).strip("\n")
        cell = nbformat.v4.new_markdown_cell(text) if c["type"] == "markdown" else nbformat.v4.new_code_cell(text)
        cell.id = f"c{i:02d}-{hashlib.sha1(text.encode()).hexdigest()[:8]}"  # stable ids: no churn on rebuild
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
    moved = {import_neutral(c.source): c for c in old.cells if c.cell_type == "code"} if old else {}
    for c in cells:  # keep outputs of unchanged code cells (a module that only moved changes no output)
        if c.cell_type != "code":
            continue
        same = prev.get(c.source) or moved.get(import_neutral(c.source))
        if same is not None:
            c.outputs, c.execution_count = same.outputs, same.execution_count
    nb = clean(nbformat.v4.new_notebook(cells=cells))
    nbformat.write(nb, target)
    print(f"wrote {target.relative_to(ROOT)}")
    return True


IMPORT_LINE = re.compile(r"^(\s*)from\s+[\w.]+\s+import\s+(.*)$")


def import_neutral(source: str) -> str:
    """The cell's source with each ``from <module> import names`` reduced to its names: two cells that
    differ only in where a module lives (a moved file) compare equal, anything else does not."""
    return "\n".join(IMPORT_LINE.sub(r"\1import \2", line) for line in source.splitlines())


# ----------------------------------------------------------------------------------------- clean
def scrub_paths(text: str) -> str:
    """Absolute paths -> repo-relative (``results/...``) or ``~/...``, other build-machine roots -> ``<tmp>``;
    a network error detail -> ``hub not reachable``."""
    text = text.replace(str(ROOT) + "/", "").replace(str(ROOT), ".")
    home = os.path.expanduser("~")
    if home not in ("", "/"):
        text = text.replace(home + "/", "~/")
    text = re.sub(r"cannot reach [\w.-]+: \[Errno[^\]]*\][^|\n]*?(?=\s*(?:\||$))", "hub not reachable", text,
                  flags=re.M)  # network noise
    text = re.sub(r"(?<![\w.~])/(?:root|home/[\w.-]+)/", "~/", text)
    return re.sub(r"(?<![\w.~])/(?:tmp|work)/[^\s'\")]*", "<tmp>", text)


def collapse_stream(text: str) -> str:
    """What a terminal shows: per line, the text after the last ``\\r``; progress/noise lines dropped."""
    lines = []
    for line in text.split("\n"):
        shown = line.rstrip("\r").split("\r")[-1]
        if PROGRESS_LINE.search(shown) or NOISE_LINE.search(shown) or RERUN_LINE.search(shown):
            continue
        lines.append(shown)
    out = "\n".join(lines)
    return re.sub(r"\n{3,}", "\n\n", out)


def clean_outputs(outputs: list) -> list:
    out = []
    for o in outputs:
        if o.get("output_type") == "stream":
            if out and out[-1].get("output_type") == "stream" and out[-1]["name"] == o["name"]:
                out[-1]["text"] += o["text"]  # merge before collapsing (a redraw may span messages)
            else:
                out.append(nbformat.from_dict({"output_type": "stream", "name": o["name"], "text": o["text"]}))
            continue
        data = o.get("data", {})
        if WIDGET_MIME in data:
            continue
        for mime, val in data.items():
            if mime == "image/png":
                data[mime] = shrink_png(val if isinstance(val, str) else "".join(val))
            if mime.startswith("text/") or mime == "application/json":
                data[mime] = scrub_paths(val if isinstance(val, str) else "".join(val)) \
                    if isinstance(val, (str, list)) else val
        if o.get("output_type") == "error":
            o["traceback"] = [scrub_paths(t) for t in o.get("traceback", [])]
        out.append(o)
    for o in out:
        if o.get("output_type") == "stream":
            o["text"] = scrub_paths(collapse_stream(o["text"]))
    return [o for o in out if o.get("output_type") != "stream" or o["text"].strip()]


def dedupe_once_lines(cells) -> None:
    """Keep the first weights line of each kind in the notebook (``ONCE_LINE``), drop later repeats."""
    seen = set()
    for c in cells:
        for o in c.get("outputs", []):
            if o.get("output_type") != "stream":
                continue
            keep = []
            for line in o["text"].split("\n"):
                m = ONCE_LINE.match(line)
                if m:
                    key = m.group(1)
                    if key in seen:
                        continue
                    seen.add(key)
                keep.append(line)
            o["text"] = "\n".join(keep)


def shrink_png(b64: str) -> str:
    """A matplotlib PNG re-encoded with a 256-colour palette when that is smaller (plots have few colours;
    a notebook's figures then cost ~4x less on disk). Palette images and non-PNG data are left alone."""
    import base64
    import io
    try:
        from PIL import Image
    except ImportError:  # building without Pillow: keep the figure as it is
        return b64
    raw = base64.b64decode(b64)
    im = Image.open(io.BytesIO(raw))
    if im.format != "PNG" or im.mode == "P":
        return b64
    buf = io.BytesIO()
    im.convert("RGBA").quantize(colors=256, method=Image.Quantize.FASTOCTREE).save(buf, format="PNG", optimize=True)
    small = buf.getvalue()
    return base64.b64encode(small).decode() + "\n" if len(small) < len(raw) else b64


def is_path_echo(o) -> bool:
    text = o.get("data", {}).get("text/plain", "")
    text = "".join(text) if isinstance(text, list) else text
    return o.get("output_type") == "execute_result" and text.startswith(("PosixPath(", "WindowsPath("))


def clean(nb):
    """Everything ``--adopt`` does to an executed notebook besides dropping the injected cell."""
    count = 0
    dedupe_once_lines([c for c in nb.cells if c.cell_type == "code"])
    for c in nb.cells:
        for key in ("papermill", "execution", "widgets"):
            c.metadata.pop(key, None)
        if not c.metadata.get("tags", True):
            c.metadata.pop("tags")
        if c.cell_type != "code":
            continue
        c.outputs = [o for o in clean_outputs(c.get("outputs", [])) if not is_path_echo(o)]
        if c.execution_count is not None or c.outputs:
            count += 1
            c.execution_count = count
            for o in c.outputs:
                if o.get("output_type") == "execute_result":
                    o["execution_count"] = count
    lang = dict(LANGUAGE_INFO, version=nb.metadata.get("language_info", {}).get("version", LANGUAGE_INFO["version"]))
    nb.metadata = nbformat.from_dict({"kernelspec": dict(KERNELSPEC), "language_info": lang})
    nb.nbformat, nb.nbformat_minor = 4, 5
    return nb


def adopt(executed: Path) -> None:
    """Copy the cleaned outputs of an executed notebook onto notebooks/<name>.ipynb (sources must match)."""
    nb = nbformat.read(executed, as_version=4)
    nb.cells = [c for c in nb.cells if "injected-parameters" not in c.metadata.get("tags", [])]
    target = HERE / executed.name
    src = nbformat.read(target, as_version=4)
    if [c.source for c in src.cells] != [c.source for c in nb.cells]:
        raise SystemExit(f"{executed} was executed from other sources than {target.name}: rebuild and re-run")
    for mine, theirs in zip(src.cells, nb.cells):
        theirs.id = mine.id
    nbformat.write(clean(nb), target)
    print(f"adopted outputs of {executed} into notebooks/{target.name} ({target.stat().st_size / 1e3:.0f} kB)")


# ----------------------------------------------------------------------------------------- check
def _output_texts(cell):
    for o in cell.get("outputs", []):
        if o.get("output_type") == "stream":
            yield "".join(o.get("text", ""))
        elif o.get("output_type") == "error":
            yield "\n".join(o.get("traceback", []))
        for mime, val in o.get("data", {}).items():
            if mime.startswith("text/") or mime == "application/json" or mime == WIDGET_MIME:
                yield val if isinstance(val, str) else json.dumps(val) if isinstance(val, dict) else "".join(val)


def papermill_warnings(source: str) -> list[str]:
    """Warnings papermill logs while inferring the parameters of ``source`` ([] when it parses cleanly)."""
    from papermill.translators import PythonTranslator
    seen: list[str] = []

    class Catch(logging.Handler):
        def emit(self, record):
            seen.append(record.getMessage())

    log = logging.getLogger("papermill.translators")
    handler, old = Catch(level=logging.WARNING), log.propagate
    log.addHandler(handler)
    log.propagate = False
    try:
        names = [p.name for p in PythonTranslator.inspect(nbformat.v4.new_code_cell(source))]
    finally:
        log.removeHandler(handler)
        log.propagate = old
    assigned = re.findall(r"^(\w+)\s*(?::[^=]*)?=", source, re.M)
    seen += [f"papermill does not see parameter {n}" for n in assigned if n not in names]
    return seen


def problems(path: Path) -> list[str]:
    """Every hygiene rule ``path`` breaks (see the module docstring)."""
    nb = json.loads(Path(path).read_text())
    bad, meta = [], nb.get("metadata", {})
    if "widgets" in meta:
        bad.append("metadata.widgets is present (saved widget state)")
    ks = meta.get("kernelspec", {})
    if ks.get("name") != "python3" or ks.get("display_name") != "Python 3 (ipykernel)":
        bad.append(f"kernelspec is {ks}, not python3 / 'Python 3 (ipykernel)'")
    missing = set(LANGUAGE_INFO) - set(meta.get("language_info", {}))
    if missing:
        bad.append(f"language_info lacks {sorted(missing)}")
    counts = [c.get("execution_count") for c in nb["cells"] if c["cell_type"] == "code"]
    ran = [n for n in counts if n is not None]
    if ran != list(range(1, len(ran) + 1)):
        bad.append(f"execution counts are not 1, 2, 3, ...: {ran}")
    once = {}
    for i, c in enumerate(nb["cells"]):
        for o in c.get("outputs", []):
            if is_path_echo(o):
                bad.append(f"cell {i}: a bare path echo ({o['data']['text/plain'][:40]!r})")
            if o.get("output_type") == "stream":
                text = "".join(o["text"]) if isinstance(o["text"], list) else o["text"]
                if not text.strip():
                    bad.append(f"cell {i}: an empty {o.get('name')} stream output")
                for line in text.split("\n"):
                    m = ONCE_LINE.match(line)
                    if m:
                        once[m.group(1)] = once.get(m.group(1), 0) + 1
                    if RERUN_LINE.search(line):
                        bad.append(f"cell {i}: a re-run's history line: {line.strip()[:80]}")
        if c.get("metadata", {}).get("widgets"):
            bad.append(f"cell {i}: widget state in cell metadata")
        for o in c.get("outputs", []):
            if WIDGET_MIME in o.get("data", {}):
                bad.append(f"cell {i}: a widget output (no static fallback in a viewer)")
        for text in _output_texts(c):
            for m in FORBIDDEN.finditer(text):
                line = text[:m.end()].rsplit("\n", 1)[-1] + text[m.end():].split("\n", 1)[0]
                bad.append(f"cell {i}: output contains {m.group(0)!r}: {line.strip()[:100]}")
    bad += [f"'[dgsslib] {k.strip()}' line {n} times (say it once)" for k, n in once.items() if n > 1]
    params = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(params) != 1:
        bad.append(f"{len(params)} parameters cells (want exactly one)")
    else:
        bad += [f"parameters cell: {w}" for w in papermill_warnings("".join(params[0]["source"]))]
    return bad


def check_all(paths) -> bool:
    ok = True
    for p in paths:
        for msg in problems(p):
            print(f"{Path(p).name}: {msg}")
            ok = False
    return ok


def main(argv: list[str]) -> int:
    if argv[:1] == ["--adopt"]:
        for path in argv[1:]:
            adopt(Path(path))
        return 0
    notebooks = sorted(HERE.glob("[0-9]*.ipynb"))
    if argv[:1] == ["--clean"]:
        for path in notebooks:
            before = path.stat().st_size
            nbformat.write(clean(nbformat.read(path, as_version=4)), path)
            print(f"cleaned notebooks/{path.name}: {before / 1e3:.0f} kB -> {path.stat().st_size / 1e3:.0f} kB")
        return 0
    check = "--check" in argv
    ok = all([build(p, check) for p in sorted((HERE / "src").glob("*.py"))])
    if check:
        ok = check_all(notebooks) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
