"""The command line of the one trainer (``python -m dgsslib.train``): flags -> a checked config -> a run.

    python -m dgsslib.train --method rein --profile mini --work-dir runs/x [--config FILE]
        [--max-steps N] [--ckpt-every K] [--seed S] [--set key=value ...] [--option k=v ...]
    python -m dgsslib.train --work-dir runs/x --resume          # the stored config.json is reused

Exit codes: 0 ok, 2 user error (one line ``[dgsslib] error: ...``), 3 training diverged, 130 interrupted.
Taught in ``notebooks/01_frozen_vs_full.ipynb``.
"""
from __future__ import annotations

import json
from pathlib import Path

from . import checkpoint as ck
from .engine.loop import TrainingDiverged
from .engine.train import fit
from .engine.workdir import WorkDirError, checkpoint_config, stored_config

__all__ = ["config_from_args", "fit", "main"]

HELP_EPILOG = """precedence (lowest to highest): profile defaults < --config FILE < --method/--backbone/
--weights/--seed/--max-steps/--ckpt-every < --set/--option.  A method with its own step (fishertune)
gets its recipe unless --config or --set names one.  --resume reads WORK_DIR/config.json:
give no other flag to continue exactly, or only --max-steps N to extend a run; any other
difference is refused with the list of keys (old -> new).  exit codes: 0 ok, 2 user error
(bad config, data, checkpoint, work dir), 3 training diverged, 130 interrupted."""


def _parse(argv):
    import argparse

    from .adapters import METHODS
    from .backbones import BACKBONES
    from .profiles import PROFILES
    p = argparse.ArgumentParser(prog="python -m dgsslib.train", description=__doc__.split("\n\n")[0],
                                epilog=HELP_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--method", choices=sorted(METHODS),
                   help="the fine-tuning method (default: the --config file's, else freeze)")
    p.add_argument("--backbone", choices=sorted(BACKBONES),
                   help="default: the profile's (smoke: tiny, mini: dinov2_s, paper: dinov2_l)")
    p.add_argument("--profile", choices=PROFILES, help="smoke (default; CPU seconds), mini (CPU, DINOv2-S + "
                   "procedural benchmark) or paper (GPU, real data)")
    p.add_argument("--work-dir", required=True, help="where config.json, ckpt/, final.safetensors, results.json go")
    p.add_argument("--max-steps", type=int, help="train.max_steps (with --resume: extend a run)")
    p.add_argument("--ckpt-every", type=int, help="train.ckpt_every: checkpoint every K steps (0 = only the end)")
    p.add_argument("--seed", type=int, help="seed of data order, augmentation and init")
    p.add_argument("--weights", help="auto | hub | offline | none | a checkpoint path")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --work-dir from its newest readable checkpoint, with its stored config")
    p.add_argument("--overwrite", action="store_true", help="delete the run already in --work-dir and train anew")
    p.add_argument("--config", help="YAML/JSON overrides; may set method, head, recipe (e.g. configs/rein_g/paper.yaml)")
    p.add_argument("--option", action="append", default=[], metavar="K=V", help="method option, e.g. r=4")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="any config key, e.g. train.lr=1e-4, recipe=supervised, 'data.eval=[\"bdd:val\"]'")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p.parse_args(argv)


def _pairs(items: list[str], flag: str) -> list[tuple[str, str]]:
    from .profiles import ConfigError
    out = []
    for kv in items:
        k, sep, v = kv.partition("=")
        if not sep or not k.strip():
            raise ConfigError(f"{flag} wants KEY=VALUE, got {kv!r}")
        out.append((k.strip(), v))
    return out


def config_from_args(a) -> dict:
    """The run's config. Fresh: profile < --config < flags < --set/--option. With --resume: the
    stored ``config.json`` < the same layers, so repeating the original command (or giving no
    flag at all) reproduces it and any change shows up as a difference."""
    from .profiles import ConfigError, dotted_to_nested, load_config_file, merge, parse_value, resolve, \
        with_method_recipe
    stored = stored_config(a.work_dir) if a.resume else None
    if a.resume and stored is None:
        stored, held_in = checkpoint_config(a.work_dir)
        if stored is not None:
            print(f"[dgsslib] --resume: {a.work_dir}/config.json is missing; using the config held in {held_in.name} "
                  "(config.json is written again)", flush=True)
    if stored is not None:
        cfg = merge(stored, {"profile": a.profile}) if a.profile else stored
    else:
        cfg = resolve(a.profile or "smoke")
    if a.config:
        extra = load_config_file(a.config)
        if "profile" in extra:
            raise ConfigError(f"{a.config} sets profile: choose it with --profile (smoke, mini or paper) instead")
        cfg = merge(cfg, extra)
    flat = {}
    for key, val in (("method", a.method), ("backbone", a.backbone), ("train.max_steps", a.max_steps),
                     ("train.ckpt_every", a.ckpt_every), ("seed", a.seed), ("weights", a.weights)):
        if val is not None:
            flat[key] = val
    for k, v in _pairs(a.set, "--set"):
        if k == "profile":
            raise ConfigError("profile is chosen with --profile (smoke, mini or paper), not --set: it decides the "
                              "backbone, data and sizes that the rest of the config starts from")
        flat[k] = parse_value(v)
    for k, v in _pairs(a.option, "--option"):
        flat[f"method_options.{k}"] = parse_value(v)
    cfg = merge(cfg, dotted_to_nested(flat))
    named = "recipe" in flat or (a.config and "recipe" in load_config_file(a.config))
    return cfg if stored is not None else with_method_recipe(cfg, named)


def check_args(a) -> None:
    """Flags that contradict each other or name an unusable work dir: refused before anything runs."""
    from .profiles import ConfigError
    if not a.work_dir.strip():
        raise ConfigError("--work-dir is empty: name a folder for the run (e.g. --work-dir runs/rein_s0)")
    if Path(a.work_dir).exists() and not Path(a.work_dir).is_dir():
        raise ConfigError(f"--work-dir {a.work_dir} is a file, not a folder: choose another path")
    if a.resume and a.overwrite:
        raise ConfigError("--resume continues the run in --work-dir and --overwrite deletes it: give one of them")


def user_errors() -> tuple:
    """Exception types that mean "the input is wrong" (one line, exit 2), not "the kit has a bug"."""
    from .backbones.weights import WeightsUnavailable
    from .profiles import ConfigError
    errors = [ValueError, ck.CheckpointMismatch, WorkDirError, FileNotFoundError, PermissionError,
              IsADirectoryError, NotADirectoryError, WeightsUnavailable, ConfigError]
    return tuple(errors)


def main(argv=None) -> int:
    import sys
    a = _parse(argv)
    try:
        check_args(a)
        from .engine.validation import validate
        cfg = validate(config_from_args(a))
        record = fit(cfg, a.work_dir, resume=a.resume, overwrite=a.overwrite, progress=not a.no_progress)
    except TrainingDiverged as exc:
        print(f"[dgsslib] {exc}", file=sys.stderr)
        return 3
    except KeyboardInterrupt:
        last = ck.latest_checkpoint(Path(a.work_dir))
        where = f"the last checkpoint is {last}" if last else "no checkpoint was written yet"
        print(f"\n[dgsslib] interrupted: {where}; continue with: python -m dgsslib.train --work-dir "
              f"{a.work_dir} --resume", file=sys.stderr)
        return 130
    except user_errors() as exc:
        msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if isinstance(exc, OSError) and exc.filename:
            msg = f"{exc.strerror or exc}: {exc.filename}"
        print(f"[dgsslib] error: {msg}", file=sys.stderr)
        return 2
    if record:
        m = record["metrics"]
        print(json.dumps({k: round(v["miou"], 2) for k, v in m.items() if isinstance(v, dict)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
