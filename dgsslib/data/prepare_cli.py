"""The one command-line front end of every ``data_scripts/prepare_<dataset>.py``.

Each script passes its dataset name and any extra options; this parses ``--root``, ``--workers``
and ``--no-progress``, calls ``dgsslib.data.<name>.prepare(...)`` (resumable: valid outputs are
skipped, writes are atomic), prints the summary and the verify command to run next.
Exit codes: 0 done; 1 some files failed (each listed); 2 a user error (missing root, wrong
layout), printed as one ``[dgsslib] error: ...`` line on stderr.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from typing import Callable

from .base import DatasetError, default_root
from .imageio import summarize


def prepare_main(name: str, doc: str, argv: list[str] | None = None,
                 add_args: Callable[[argparse.ArgumentParser], None] | None = None,
                 kwargs: Callable[[argparse.Namespace], dict] | None = None) -> int:
    p = argparse.ArgumentParser(description=doc.splitlines()[0], epilog="\n".join(doc.splitlines()[1:]),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--root", default=None,
                   help=f"dataset root (default: $DGSS_DATA/{name} or ./data/{name}; now {default_root(name)})")
    p.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    if add_args:
        add_args(p)
    a = p.parse_args(argv)
    module = importlib.import_module(f"dgsslib.data.{name}")
    try:
        results = module.prepare(a.root, a.workers, not a.no_progress, **(kwargs(a) if kwargs else {}))
    except DatasetError as e:  # a user error: missing root, wrong layout, bad option
        print(f"[dgsslib] error: {e}", file=sys.stderr)
        return 2
    code = summarize(results, f"prepare {name}")
    if code == 0:
        root = f" --root {a.root}" if a.root else ""
        print(f"next: python data_scripts/verify.py {name}{root}")
    return code
