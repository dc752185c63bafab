"""One place that decides how progress is shown (live bars in a terminal or JupyterLab, lines in logs).

Every long loop in the kit (training, evaluation, conversion, preparation) calls
:func:`progress_bar` instead of creating a tqdm bar itself, so how progress looks under
papermill, in CI logs and in committed notebooks is decided here once.

Modes (environment variable ``DGSS_PROGRESS``; ``auto`` is the default):

=========  =======================================================================================
``bar``    a live tqdm text bar on stderr (a terminal; ``auto`` picks it when stderr is a TTY)
``live``   a live text bar on stderr that is *erased when done* (``auto`` picks it inside a
           Jupyter kernel: JupyterLab redraws the ``\\r`` line in place; no ipywidgets, so no widget
           state is ever saved; the run's one-line summary printed by
           ``dgsslib.notebook.train_and_eval`` is what stays in the output)
``log``    one plain line every ``DGSS_PROGRESS_INTERVAL`` seconds (default 20) and a final one,
           each starting with :data:`LOG_PREFIX` (``auto`` picks it when stderr is not a TTY: CI,
           pipes; ``make demo`` sets it so papermill ``--log-output`` shows live progress)
``off``    nothing (also ``disable=True``)
=========  =======================================================================================

``notebooks/build.py --adopt`` drops the lines of the ``log`` mode and collapses ``\\r`` redraws,
so an executed notebook commits without progress noise.
"""
from __future__ import annotations

import os
import sys

from tqdm.std import tqdm

MODES = ("auto", "bar", "live", "log", "off")
#: every line of the ``log`` mode starts with this (notebooks/build.py drops such lines)
LOG_PREFIX = "[progress] "
LOG_FORMAT = "{desc}: {n_fmt}/{total_fmt} ({percentage:.0f}%) [{elapsed}<{remaining}, {rate_fmt}{postfix}]"


def _in_jupyter_kernel() -> bool:
    shell = sys.modules.get("IPython")
    try:
        ip = shell.get_ipython() if shell is not None else None
    except Exception:  # noqa: BLE001 - any failure means "not in a kernel"
        return False
    return ip is not None and type(ip).__name__ == "ZMQInteractiveShell"


def progress_mode() -> str:
    """The mode in effect: ``DGSS_PROGRESS`` when set, else chosen from where we run."""
    mode = os.environ.get("DGSS_PROGRESS", "auto").strip().lower() or "auto"
    if mode not in MODES:
        raise ValueError(f"DGSS_PROGRESS={mode!r} is not a progress mode; use one of {', '.join(MODES)}")
    if mode != "auto":
        return mode
    if _in_jupyter_kernel():
        return "live"
    stream = sys.stderr
    return "bar" if stream is not None and hasattr(stream, "isatty") and stream.isatty() else "log"


class _LineWriter:
    """A file for tqdm that turns each ``\\r`` redraw into one prefixed, newline-ended line."""

    def __init__(self, stream):
        self.stream, self.last = stream, None

    def write(self, s: str) -> None:
        for part in s.replace("\n", "\r").split("\r"):
            if part.strip() and part.strip() != self.last:
                self.last = part.strip()
                self.stream.write(LOG_PREFIX + self.last + "\n")

    def flush(self) -> None:
        self.stream.flush()


class _LogBar(tqdm):
    """A bar whose postfix changes wait for the next timed line instead of printing one each."""

    def set_postfix(self, ordered_dict=None, refresh=False, **kwargs):
        super().set_postfix(ordered_dict, refresh=False, **kwargs)


def progress_bar(iterable=None, **kwargs):
    """A tqdm bar shaped by :func:`progress_mode`; takes tqdm's keyword arguments
    (``total``, ``initial``, ``desc``, ``unit``, ``leave``, ``disable``...) and returns a tqdm
    object (iterate it, or call ``update`` / ``set_postfix`` / ``close``)."""
    mode = progress_mode()
    if mode == "off":
        kwargs["disable"] = True
    elif mode == "live":
        kwargs.update(leave=False, file=sys.stderr, dynamic_ncols=False)
        kwargs.setdefault("ncols", 100)
        kwargs.setdefault("mininterval", 0.5)
    elif mode == "log":
        interval = float(os.environ.get("DGSS_PROGRESS_INTERVAL", 20))
        kwargs.update(file=_LineWriter(sys.stderr), leave=True, bar_format=LOG_FORMAT, ascii=True,
                      mininterval=interval, maxinterval=max(interval, 10.0), ncols=None, dynamic_ncols=False)
        return _LogBar(iterable, **kwargs)
    else:
        kwargs.setdefault("file", sys.stderr)
    return tqdm(iterable, **kwargs)


_SAID: set = set()


def say_once(key: str, msg: str) -> None:
    """Print ``[dgsslib] msg`` the first time ``key`` comes up in this process: a notebook that trains
    twenty runs on the same weights states where they come from once, not twenty times."""
    if key not in _SAID:
        _SAID.add(key)
        print(f"[dgsslib] {msg}", file=sys.stdout, flush=True)


__all__ = ["LOG_PREFIX", "MODES", "progress_bar", "progress_mode", "say_once"]
