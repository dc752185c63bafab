"""A run's work dir: never mixed with another run, never overwritten, never run twice at once.

| state of WORK_DIR | new run | ``--resume`` | ``--overwrite`` |
|---|---|---|---|
| empty / missing | trains | "nothing to resume": trains from step 0 | trains |
| holds a run (config.json, ckpt/, results.json) | refused: use --resume, a new dir or --overwrite | continues if the config is the same run (only ``train.max_steps`` may grow) | deletes the run's files, trains |
| another process holds ``.lock`` | refused | refused | refused |
| ``.lock`` of a dead process | taken over, with a note | taken over | taken over |

"Same run" compares the stored ``config.json`` with the new config on every key except the
ones that cannot change the numbers (``RUNTIME_KEYS``: progress, logging, workers, eval
cadence) and ``train.max_steps``; the resolved weight source is checked separately (a resume
never swaps hub weights for the offline copy). Mismatches are listed as ``key: old -> new``.
"""
from __future__ import annotations

import json
import os
import shutil
import socket
from pathlib import Path

RUN_FILES = ("config.json", "results.json", "final.safetensors", "final.json", "history.jsonl", "ckpt")
RUNTIME_KEYS = ("train.log_every", "train.eval_every", "train.ckpt_every", "train.keep_ckpts",
                "data.num_workers", "data.cache_dir", "eval.batch_size", "data.root")
EXTENDABLE = ("train.max_steps",)


class WorkDirError(RuntimeError):
    """The work dir holds another run, is locked, or cannot be written."""


def flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v and k not in ("method_options", "head_options", "recipe_options"):
            out.update(flatten(v, key + "."))
        else:
            out[key] = v
    return out


def config_diff(old: dict, new: dict, ignore=RUNTIME_KEYS) -> dict[str, tuple]:
    """{dotted key: (old, new)} for every key whose value differs (JSON-normalised)."""
    norm = lambda c: flatten(json.loads(json.dumps(c, default=str)))  # noqa: E731
    a, b = norm(old), norm(new)
    return {k: (a.get(k, "<absent>"), b.get(k, "<absent>")) for k in sorted(set(a) | set(b))
            if a.get(k, "<absent>") != b.get(k, "<absent>") and k not in ignore}


def holds_run(work_dir: Path) -> bool:
    return any((Path(work_dir) / f).exists() for f in RUN_FILES)


def stored_config(work_dir: Path) -> dict | None:
    path = Path(work_dir) / "config.json"
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise WorkDirError(f"{path} is unreadable ({exc}); move the work dir aside or use --overwrite") from exc


def check_same_run(work_dir: Path, cfg: dict) -> dict[str, tuple]:
    """Refuse (WorkDirError) unless ``cfg`` continues the run stored in ``work_dir``; return the
    allowed differences (``train.max_steps``)."""
    old = stored_config(work_dir)
    if old is None:
        return {}
    diff = config_diff(old, cfg)
    allowed = {k: v for k, v in diff.items() if k in EXTENDABLE}
    bad = {k: v for k, v in diff.items() if k not in EXTENDABLE}
    if bad:
        lines = "; ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in bad.items())
        raise WorkDirError(f"--resume: {work_dir} holds a different run ({lines}). Resume with the "
                           "original settings (omit the flags: --resume reads config.json), or train "
                           "into a new --work-dir")
    return allowed


def checkpoint_config(work_dir: Path) -> tuple[dict | None, Path | None]:
    """The config held in the headers of the run's checkpoints: ``final.safetensors`` first, then the
    newest readable ``ckpt/step_*.safetensors`` (None when there is none)."""
    from ..checkpoint import header_meta, step_files
    for path in [Path(work_dir) / "final.safetensors", *reversed(step_files(work_dir))]:
        meta = header_meta(path) if path.exists() else None
        if meta and isinstance(meta.get("config"), dict):
            return meta["config"], path
    return None, None


def check_checkpoint_config(work_dir: Path, cfg: dict) -> None:
    """Refuse a resume whose config differs from the one its checkpoints were trained with (an edited
    ``config.json``): the checkpoint's config is the run's."""
    held, path = checkpoint_config(work_dir)
    if held is None:
        return
    bad = {k: v for k, v in config_diff(held, cfg).items() if k not in EXTENDABLE}
    if bad:
        lines = "; ".join(f"{k}: {a!r} in the checkpoint, {b!r} now" for k, (a, b) in bad.items())
        raise WorkDirError(f"--resume: the config differs from the one {path.name} was trained with ({lines}); "
                           "config.json was edited? Restore it (or delete it: the checkpoint's config is then "
                           "used), or train into a new --work-dir")


def remove_run(work_dir: Path) -> None:
    for name in RUN_FILES:
        p = Path(work_dir) / name
        if p.is_dir():
            shutil.rmtree(p)
        elif p.exists():
            p.unlink()
    for p in Path(work_dir).glob("eval_step*.json"):
        p.unlink()


class RunLock:
    """``WORK_DIR/.lock`` holding host and pid; a lock whose process is gone is stale and taken over."""

    def __init__(self, work_dir: Path):
        self.path = Path(work_dir) / ".lock"
        self.held = False
        self.note = ""

    def _alive(self, info: dict) -> bool:
        if info.get("host") != socket.gethostname():
            return True  # cannot tell for another host: assume it runs
        try:
            os.kill(int(info["pid"]), 0)
        except ProcessLookupError:
            return False
        except (PermissionError, ValueError, KeyError, TypeError):
            return True
        return True

    def acquire(self) -> "RunLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        me = {"host": socket.gethostname(), "pid": os.getpid()}
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                try:
                    info = json.loads(self.path.read_text() or "{}")
                except (OSError, ValueError):
                    info = {}
                if info and self._alive(info):
                    raise WorkDirError(f"{self.path.parent} is in use by another run (pid {info.get('pid')} on "
                                       f"{info.get('host')}); wait for it, or use another --work-dir") from None
                self.note = f"took over the stale lock of pid {info.get('pid')} (that process is gone)"
                self.path.unlink(missing_ok=True)
                continue
            with os.fdopen(fd, "w") as f:
                json.dump(me, f)
            self.held = True
            return self
        raise WorkDirError(f"could not lock {self.path}")

    def release(self) -> None:
        if self.held:
            self.path.unlink(missing_ok=True)
            self.held = False

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()
