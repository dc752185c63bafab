"""Type and range checks on a resolved config, run before any model or data is built.

:func:`validate` walks the keys it knows, coerces what is unambiguous -- YAML 1.1 reads ``1e-3``
as the *string* "1e-3", so a numeric string for a number key becomes that number; ``3.0`` for an
integer key becomes 3 -- and raises :class:`~dgsslib.profiles.ConfigError` naming the key, the
bad value and what is accepted. Names (backbone, method, head, recipe) and option *names* are
checked against their registries here too, so a typo costs a second, not a model build.
"""
from __future__ import annotations

import copy
import math
from typing import Any, Callable

from ..data.protocol import check_scale as scale  # the one test-scale rule: [long, short] | "native" | null
from ..profiles import ConfigError


def _num(v: Any, key: str) -> float:
    if isinstance(v, bool):
        raise ConfigError(f"{key} must be a number, got {v!r}")
    if isinstance(v, str):
        try:
            v = float(v.strip())
        except ValueError:
            raise ConfigError(f"{key} must be a number, got the string {v!r} (e.g. {key}=1e-4)") from None
    if not isinstance(v, (int, float)) or not math.isfinite(v):
        raise ConfigError(f"{key} must be a finite number, got {v!r}")
    return v


def number(lo: float | None = None, hi: float | None = None, lo_open: bool = False, optional: bool = False):
    def check(v, key):
        if v is None and optional:
            return None
        v = float(_num(v, key))
        if lo is not None and (v < lo or (lo_open and v == lo)):
            raise ConfigError(f"{key} must be {'>' if lo_open else '>='} {lo}, got {v!r}")
        if hi is not None and v > hi:
            raise ConfigError(f"{key} must be <= {hi}, got {v!r}")
        return v
    return check


def integer(lo: int | None = None, optional: bool = False, hi: int | None = None):
    def check(v, key):
        if v is None and optional:
            return None
        if isinstance(v, int) and not isinstance(v, bool):
            n = v  # exact, however large (a float would round it)
        else:
            f = _num(v, key)
            if float(f) != int(f):
                raise ConfigError(f"{key} must be a whole number, got {v!r}")
            n = int(f)
        if lo is not None and n < lo:
            raise ConfigError(f"{key} must be >= {lo}, got {n}")
        if hi is not None and n > hi:
            raise ConfigError(f"{key} must be <= {hi}, got {n}")
        return n
    return check


def choice(*options, optional: bool = False):
    def check(v, key):
        if v is None and optional:
            return None
        if v not in options:
            raise ConfigError(f"{key} must be one of {', '.join(map(str, options))}, got {v!r}")
        return v
    return check


TRUE_WORDS, FALSE_WORDS = ("true", "yes", "on", "1"), ("false", "no", "off", "0")


def boolean(v, key):
    """true/false; the words yes/no, on/off, 1/0 (any case) and the integers 1/0 are read as such."""
    if isinstance(v, bool):
        return v
    if isinstance(v, int) and v in (0, 1):
        return bool(v)
    if isinstance(v, str) and v.strip().lower() in TRUE_WORDS + FALSE_WORDS:
        return v.strip().lower() in TRUE_WORDS
    raise ConfigError(f"{key} must be true or false (also yes/no, on/off, 1/0), got {v!r}")


def data_string(optional: bool = False):
    def check(v, key):
        if v is None and optional:
            return None
        if not isinstance(v, str) or ":" not in v:
            raise ConfigError(f"{key} must be a data string like 'synthetic:source' or 'cityscapes:val', got {v!r}")
        return v
    return check


def list_of(item: Callable, length: int | None = None, optional: bool = False, nonempty: bool = True):
    def check(v, key):
        if v is None and optional:
            return None
        if isinstance(v, (str, bytes)) or not isinstance(v, (list, tuple)):
            raise ConfigError(f"{key} must be a list, got {v!r} (e.g. {key}=[...])")
        if length is not None and len(v) != length:
            raise ConfigError(f"{key} must have {length} entries, got {len(v)}: {v!r}")
        if nonempty and not v:
            raise ConfigError(f"{key} must not be empty")
        return [item(x, f"{key}[{i}]") for i, x in enumerate(v)]
    return check


def optional_str(v, key):
    if v is not None and not isinstance(v, str):
        raise ConfigError(f"{key} must be a string or null, got {v!r}")
    return v


def name(v, key):
    if not isinstance(v, str):
        raise ConfigError(f"{key} must be a name (a string), got {v!r}")
    return v


SCHEMA: dict[str, Callable] = {
    "profile": name,
    "backbone": name,
    "method": name,
    "head": name,
    "recipe": name,
    "pos_interp": name,
    "seed": integer(0, hi=2 ** 32 - 1),
    "weights": optional_str,
    "patch_size": integer(1, optional=True),
    "img_size": integer(1, optional=True),
    "data.train": data_string(),
    "data.target": data_string(optional=True),
    "data.eval": list_of(data_string(), nonempty=False),
    "data.rcs.enabled": boolean,
    "data.rcs.temperature": number(0, lo_open=True),
    "data.rcs.min_pixels": integer(0),
    "data.rcs.min_crop_ratio": number(0),
    "data.root": optional_str,
    "data.size": list_of(integer(1), length=2),
    "data.train_length": integer(1),
    "data.eval_length": integer(1),
    "data.crop": integer(1, optional=True),
    "data.scales": list_of(integer(1), optional=True),
    "data.cache_dir": optional_str,
    "data.num_workers": integer(0),
    "train.max_steps": integer(1),
    "train.batch_size": integer(1),
    "train.lr": number(0, lo_open=True),
    "train.weight_decay": number(0),
    "train.poly_power": number(0),
    "train.warmup_steps": integer(0),
    "train.grad_clip": number(0, lo_open=True, optional=True),
    "train.amp": choice("auto", "bf16", "fp32"),
    "train.log_every": integer(1),
    "train.ckpt_every": integer(0),
    "train.eval_every": integer(0),
    "train.keep_ckpts": integer(1),
    "eval.mode": choice("whole", "slide"),
    "eval.crop": integer(1),
    "eval.stride": integer(1),
    "eval.test_scale": scale,
    "eval.batch_size": integer(1),
}


def _get(cfg: dict, dotted: str):
    node = cfg
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return KeyError
        node = node[part]
    return node


def _set(cfg: dict, dotted: str, value) -> None:
    *parents, last = dotted.split(".")
    node = cfg
    for part in parents:
        node = node[part]
    node[last] = value


def check_option(value, annotation, key: str):
    """An option value against its constructor annotation (``int``, ``float``, ``bool``, ``str``, unions with
    ``None``): whole numbers for ints (2.7 is refused, 3.0 becomes 3), yes/no words for bools; any other
    annotation is left to the constructor."""
    types = {t.strip() for t in str(annotation).replace("Optional[", "").rstrip("]").split("|")}
    if value is None and "None" in types:
        return None
    simple = types - {"None"}
    if not simple or not simple <= {"int", "float", "bool", "str"}:
        return value
    if simple == {"bool"}:
        return boolean(value, key)
    if "int" in simple and "float" not in simple and not isinstance(value, str):
        return integer()(value, key)
    if "float" in simple and not (isinstance(value, str) and "str" in simple):
        return int(value) if (isinstance(value, int) and not isinstance(value, bool)) else number()(value, key)
    if simple == {"str"} and not isinstance(value, str):
        raise ConfigError(f"{key} must be a string, got {value!r}")
    if "int" in simple and isinstance(value, str) and "str" not in simple:
        return integer()(value, key)
    return value


def plugin_options(kind: str, name: str, opts: dict) -> dict:
    """``opts`` for the ``kind`` (method, head, recipe) plug-in ``name``, checked as the trainer checks them:
    known keys only, each coerced by the constructor's annotation and bounded by the class's ``option_ranges``.
    ``dgsslib.params`` and ``dgsslib.bench`` call this too, so ``r=2.7`` is refused everywhere."""
    from ..adapters import METHODS
    from ..heads import HEADS
    from ..recipes import RECIPES
    from ..registry import accepted_options
    reg = {"method": METHODS, "head": HEADS, "recipe": RECIPES}[kind]
    if not isinstance(name, str) or name not in reg:
        raise ConfigError(f"{kind} must be one of {', '.join(reg)}, got {name!r}")
    if not isinstance(opts, dict):
        raise ConfigError(f"{kind}_options must be a mapping, got {opts!r}")
    accepted = accepted_options(reg.get(name))
    if accepted is not None:
        accepted = [a for a in accepted if a != "in_channels"]  # a head's input widths come from the backbone
        unknown = sorted(set(opts) - set(accepted))
        if unknown:
            raise ConfigError(f"unknown {kind}_options {unknown} for {kind} {name!r}; accepted: {accepted}")
    opts = _typed_options(reg.get(name), opts, kind)
    check = getattr(reg.get(name), "check_options", None)  # a plug-in with nested options (the method stack)
    return check(opts) if check is not None else opts


def _typed_options(cls, opts: dict, kind: str) -> dict:
    """Coerce and range-check ``*_options`` by the class's constructor annotations and ``option_ranges``."""
    import inspect
    params = inspect.signature(cls.__init__ if inspect.isclass(cls) else cls).parameters
    ranges = getattr(cls, "option_ranges", {}) or {}
    out = {}
    for k, v in opts.items():
        key = f"{kind}_options.{k}"
        p = params.get(k)
        v = check_option(v, p.annotation, key) if p is not None and p.annotation is not inspect.Parameter.empty else v
        if k in ranges and isinstance(v, (int, float)) and not isinstance(v, bool):
            lo, hi = ranges[k]
            if (lo is not None and v < lo) or (hi is not None and v > hi):
                bounds = " and ".join(b for b in (f">= {lo}" if lo is not None else "",
                                                  f"<= {hi}" if hi is not None else "") if b)
                raise ConfigError(f"{key} must be {bounds}, got {v!r}")
        out[k] = v
    return out


def _check_data(cfg: dict) -> None:
    """Cross-key checks that would otherwise surface late or never: the target stream, labelled splits,
    slide windows that cover every pixel."""
    from ..recipes import RECIPES
    streams = RECIPES.get(cfg["recipe"]).streams
    if cfg["data"]["target"] and "target" not in streams:
        users = [n for n in RECIPES if "target" in RECIPES.get(n).streams]
        raise ConfigError(f"data.target is set but recipe {cfg['recipe']!r} has no target stream (recipes that "
                          f"use one: {', '.join(users)}); set data.target=null or choose one of those recipes")
    spec = cfg["data"]["train"].split(":")
    if spec[0] != "synthetic" and len(spec) > 1:
        from ..data.registry import DATASETS
        cls = DATASETS.get(spec[0])
        if cls is not None and spec[1] in getattr(cls, "UNLABELLED_SPLITS", ()):
            raise ConfigError(f"data.train {cfg['data']['train']!r} is an unlabelled split (its labels are all "
                              f"ignore): use it as data.target with a UDA recipe, or train on a labelled split")
    d = cfg["data"]
    if spec[0] != "synthetic" and (d["crop"] is None or not d["scales"]):
        raise ConfigError(f"data.train {d['train']!r} is a real dataset: its pipeline needs data.crop and data.scales "
                          "(the paper profile sets 512 and the Rein scales; e.g. --set data.crop=512 "
                          "--set 'data.scales=[512]')")
    e = cfg["eval"]
    if e["mode"] == "slide" and e["stride"] > e["crop"]:
        raise ConfigError(f"eval.stride {e['stride']} > eval.crop {e['crop']}: slide windows would leave pixels "
                          "unscored; use a stride <= the crop (e.g. 2/3 of it)")


def _check_names(cfg: dict) -> None:
    from ..adapters import METHODS
    from ..backbones import BACKBONES
    from ..backbones.posembed import POS_INTERP
    from ..profiles import PROFILES
    if cfg["profile"] not in PROFILES:
        raise ConfigError(f"profile must be one of {', '.join(PROFILES)}, got {cfg['profile']!r}")
    if cfg["backbone"] not in BACKBONES:
        raise ConfigError(f"backbone must be one of {', '.join(BACKBONES)}, got {cfg['backbone']!r}")
    if cfg.get("pos_interp", "auto") not in POS_INTERP:
        raise ConfigError(f"pos_interp must be one of {', '.join(POS_INTERP)}, got {cfg['pos_interp']!r}")
    for kind in ("method", "head", "recipe"):
        cfg[f"{kind}_options"] = plugin_options(kind, cfg[kind], cfg.get(f"{kind}_options") or {})
    try:
        needs = METHODS.get(cfg["method"]).recipe_needs(cfg["method_options"])
    except ValueError as exc:
        raise ConfigError(f"method {cfg['method']!r}: {exc}") from None
    if needs and cfg["recipe"] not in needs:  # e.g. FisherTune: its recipe estimates the selection it trains
        raise ConfigError(f"method {cfg['method']!r} runs under recipe {' or '.join(needs)} (which computes what it "
                          f"trains), got recipe {cfg['recipe']!r}")


def validate(cfg: dict) -> dict:
    """A checked (and coerced) copy of a resolved config; raises ConfigError naming the key."""
    out = copy.deepcopy(cfg)
    for key, check in SCHEMA.items():
        val = _get(out, key)
        if val is KeyError:
            continue
        _set(out, key, check(val, key))
    for name, sc in (out["eval"].get("test_scales") or {}).items():
        out["eval"]["test_scales"][name] = scale(sc, f"eval.test_scales.{name}")
    _check_names(out)
    _check_data(out)
    return out
