"""Exact trainable-parameter counts, built on the meta device (no memory, no weights, < 5 s).

Command line::

    python -m dgsslib.params --backbone dinov2_l --method rein [--option r=4 --option variant=core]
    python -m dgsslib.params --paper-tables [--json]
    python -m dgsslib.params --decoders [--json]

The first prints ONE JSON object ``{"backbone", "method", "options", "trainable", "total",
"img_size", "patch_size"}``: ``trainable`` counts what the method trains on the backbone side
(the decode head excluded, as Rein++ Table III: "the calculation of trainable parameters
includes only the backbone"); ``total`` = every backbone parameter + the method's own,
trainable or not; ``options`` are the method's resolved options (defaults filled in).
Option values parse as int, float, bool (true/false), none, else str.

Geometry: by default the backbone is built as the Rein configs use it: 512×512 input and the
patch 14 -> 16 conversion for patch-14 VFMs (DINOv2, EVA02, CLIP, MAE). Only ``total`` (and
Full's trainable count) depend on it: DINOv2-L has 304,198,656 parameters at patch 16 / 512
(Rein++ Table V: 304.20M) and 304,367,616 at its native patch 14 / 518.
``--patch-size native`` keeps the native patch.

``--paper-tables`` prints Rein++ Tables III, V, VI and VIII: ours vs the paper
(see :mod:`dgsslib.papers.rein`). Taught in ``notebooks/10_rein_g.ipynb``.

``--decoders`` prints VFMSeg's decode heads at DINOv2-L widths (:data:`VFMSEG_DECODER_ROWS`: VFMNet,
MGRNet with ``decoder=official`` and ``decoder=paper``) and its LoRA count; the paper prints no
counts, so these rows are ours only (``--paper-tables`` appends them to its text output).
Taught in ``notebooks/30_vfmseg.ipynb``.
"""
from __future__ import annotations

import argparse
import copy
import functools
import json
import sys
from typing import Any

from .papers.causal_tune import CT_PARAMS_STATEMENT
from .papers.fishertune import FT_PARAM_ROWS
from .papers.rein import PAPER, PARAM_ROWS, TABLE_TITLES
from .profiles import parse_value  # the one CLI value parser (re-exported)


def parse_options(items: list[str] | None) -> dict[str, Any]:
    out = {}
    for item in items or []:
        if "=" not in item:
            raise ValueError(f"--option needs key=value, got {item!r}")
        k, v = item.split("=", 1)
        out[k.strip()] = parse_value(v)
    return out


def build_meta(backbone: str, method: str, options: dict | None = None, img_size: int = 512,
               patch_size: int | str | None = 16):
    """(vfm, method) built and attached on the meta device. ``patch_size``: 16 (Rein's
    conversion for patch-14 models), ``None``/"native" (keep the VFM's own patch)."""
    import torch

    from .adapters import build_method
    from .backbones.registry import get_spec

    spec = get_spec(backbone)
    ps = None if patch_size in (None, "native") else int(patch_size)
    if ps == spec.patch_size:
        ps = None
    with torch.device("meta"):
        m = build_method(method, **(options or {}))
        vfm = copy.deepcopy(_meta_vfm(backbone, img_size, ps))  # attach mutates: work on a copy
        m.attach(vfm)
    return vfm, m


@functools.lru_cache(maxsize=8)
def _meta_vfm(backbone: str, img_size: int, patch_size: int | None):
    import torch

    from .backbones.vfm import load_vfm

    with torch.device("meta"):
        return load_vfm(backbone, weights="none", img_size=img_size, patch_size=patch_size, verbose=False)


def count_params(backbone: str, method: str, options: dict | None = None, img_size: int = 512,
                 patch_size: int | str | None = 16) -> dict:
    """The JSON record the CLI prints (trainable = backbone side only, the head excluded)."""
    from .backbones.registry import get_spec

    vfm, m = build_meta(backbone, method, options, img_size, patch_size)
    seen, total = set(), 0
    for p in list(vfm.model.parameters()) + list(m.parameters()):
        if id(p) not in seen:
            seen.add(id(p))
            total += p.numel()
    native = get_spec(backbone).patch_size
    return {"backbone": backbone, "method": method, "options": _jsonable(m.options),
            "trainable": int(m.num_trainable()), "total": int(total),
            "img_size": img_size, "patch_size": vfm.patch_size if patch_size not in (None, "native") else native}


def _jsonable(d: dict) -> dict:
    return {k: (v if isinstance(v, (int, float, bool, str, type(None))) else str(v)) for k, v in d.items()}


# ------------------------------------------------------------------ ours vs the papers
def parse_paper_count(text: str) -> tuple[float, int, str]:
    """'0.27M' -> (0.27, 2, 'M'); '304M' -> (304.0, 0, 'M'); '1.14B' -> (1.14, 2, 'B')."""
    t = text.strip()
    unit = t[-1].upper()
    if unit not in "MB":
        raise ValueError(f"paper count {text!r} must end in M or B")
    num = t[:-1]
    decimals = len(num.split(".")[1]) if "." in num else 0
    return float(num), decimals, unit


def matches(ours: int, paper: str) -> bool:
    """True when ``ours`` rounds to the paper's value at the paper's printed precision."""
    value, decimals, unit = parse_paper_count(paper)
    scale = 1e6 if unit == "M" else 1e9
    return round(ours / scale, decimals) == round(value, decimals)


def param_rows(rows=PARAM_ROWS) -> list[dict]:
    """Recount every row of :data:`PARAM_ROWS` on the meta device."""
    out = []
    for table, label, backbone, method, options, paper, must in rows:
        rec = count_params(backbone, method, dict(options))
        value, decimals, unit = parse_paper_count(paper)
        out.append({"table": table, "row": label, "backbone": backbone, "method": method,
                    "options": dict(options), "trainable": rec["trainable"], "total": rec["total"],
                    "ours_M": round(rec["trainable"] / 1e6, 2), "paper": paper,
                    "paper_M": value * (1000 if unit == "B" else 1),
                    "precision": f"{10 ** -decimals:g}{unit}", "match": matches(rec["trainable"], paper),
                    "must_match": must})
    return out


def print_param_tables(rows: list[dict]) -> None:
    """Print the rows grouped by table: ours (M, 2 decimals), exact count, paper, ✓/✗."""
    for table in dict.fromkeys(r["table"] for r in rows):
        source = "FisherTune (CVPR 2025, arXiv 2503.17940)" if table.startswith("FT") else PAPER
        print(f"\n{TABLE_TITLES.get(table, 'Table ' + table)}  [{source}]")
        w = max(len(r["row"]) for r in rows if r["table"] == table)
        print(f"  {'row':<{w}}  {'ours (M)':>10}  {'exact':>13}  {'paper':>8}  {'compared to':>11}  match")
        for r in (r for r in rows if r["table"] == table):
            mark = "✓" if r["match"] else "✗"
            note = "" if r["must_match"] or r["match"] else "  (not claimed: see note)"
            print(f"  {r['row']:<{w}}  {r['ours_M']:>10.2f}  {r['trainable']:>13,}  {r['paper']:>8}  "
                  f"{r['precision']:>11}  {mark}{note}")
    bad = [r for r in rows if r["must_match"] and not r["match"]]
    print(f"\n{sum(r['match'] for r in rows)}/{len(rows)} rows match the paper at its printed precision"
          + (f"; MISMATCH: {', '.join(r['row'] for r in bad)}" if bad else "."))
    print("Geometry: 512x512 input, patch-14 VFMs converted to patch 16 (Rein configs); only Full depends on it.\n"
          "Note: the text's 'Full 304.24M' (Fig. 6) is not reproduced: DINOv2-L at patch 16/512 has 304,198,656\n"
          "parameters (Table V's 304.20M); at its native patch 14/518 it has 304,367,616.")


def causal_tune_param_rows() -> list[dict]:
    """DINOv2-L (512², patch 16) counts: effective trainable params per mode, and the official code's
    count with its created-but-unused ``learnable_tokens2`` / ``mlp_token2feat2`` / ``mlp_delta_f2``."""
    rows = [("paper mode (effective)", {"mode": "paper"}), ("official mode (effective)", {"mode": "official"}),
            ("official code incl. unused params", {"mode": "official", "official_unused": True})]
    out = [{"row": label, "options": opts, "trainable": count_params("dinov2_l", "causal_tune", opts)["trainable"],
            "paper": CT_PARAMS_STATEMENT} for label, opts in rows]
    out.append({"row": "Rein-G (same code base)", "options": {}, "paper": "2.99M (Rein++ Table III)",
                "trainable": count_params("dinov2_l", "rein")["trainable"]})
    return out


#: VFMSeg's decoders (decode heads, not backbone side), kept apart from PARAM_ROWS (notebook 10 asserts
#: on that list): (row, head name, head options), built at DINOv2-L widths (4 taps × 1024, 19 classes).
VFMSEG_DECODER_ROWS = [
    ("VFMNet (fuse + 2 deconvolutions + classifier)", "vfmnet", {}),
    ("MGRNet, decoder=official (3 pre-LN blocks, 8×64)", "mgrnet", {"decoder": "official"}),
    ("MGRNet, decoder=paper (one cross-attention)", "mgrnet", {"decoder": "paper"}),
    ("VFMSeg head (VFMNet + MGRNet official)", "vfmseg", {"decoder": "official"}),
    ("VFMSeg head (VFMNet + MGRNet paper)", "vfmseg", {"decoder": "paper"}),
]


def vfmseg_decoder_rows(embed_dim: int = 1024, num_taps: int = 4, num_classes: int = 19) -> list[dict]:
    """Exact parameter counts of :data:`VFMSEG_DECODER_ROWS` (meta device) + the official LoRA on DINOv2-L."""
    import torch

    from .heads.mgrnet import MGRNetDecoder
    from .heads.vfmnet import VFMNetDecoder
    from .heads.vfmseg import VFMSegHead

    classes = {"vfmnet": VFMNetDecoder, "mgrnet": MGRNetDecoder, "vfmseg": VFMSegHead}
    out = []
    for label, kind, opts in VFMSEG_DECODER_ROWS:
        with torch.device("meta"):
            head = classes[kind]([embed_dim] * num_taps, num_classes, **opts)
        n = sum(p.numel() for p in head.parameters())
        out.append({"row": label, "head": kind, "options": dict(opts), "params": int(n), "M": round(n / 1e6, 2),
                    "widths": f"{num_taps}×{embed_dim} taps, {num_classes} classes"})
    lora = count_params("dinov2_l", "vfmseg")["trainable"]
    out.append({"row": "LoRA on DINOv2-L (fused qkv, r = α = 32; backbone side)", "head": None,
                "options": {"method": "vfmseg"}, "params": int(lora), "M": round(lora / 1e6, 2),
                "widths": "24 blocks × (1024·32 + 32·3072)"})
    return out


def print_decoder_rows(rows: list[dict]) -> None:
    print("\nVFMSeg decoders at DINOv2-L widths (ours; the paper prints no counts)")
    w = max(len(r["row"]) for r in rows)
    print(f"  {'row':<{w}}  {'params (M)':>10}  {'exact':>12}")
    for r in rows:
        print(f"  {r['row']:<{w}}  {r['M']:>10.2f}  {r['params']:>12,}")


def main(argv: list[str] | None = None) -> int:
    from .adapters import METHODS
    from .backbones.registry import BACKBONES

    ap = argparse.ArgumentParser(prog="python -m dgsslib.params", description=__doc__.split("\n\n")[0])
    ap.add_argument("--backbone", help=f"one of: {', '.join(BACKBONES)}")
    ap.add_argument("--method", help=f"one of: {', '.join(METHODS)}")
    ap.add_argument("--option", action="append", metavar="KEY=VALUE", help="a method option (repeatable)")
    ap.add_argument("--img-size", type=int, default=512)
    ap.add_argument("--patch-size", default="16", help="16 (Rein's patch-14->16 conversion, default) or native")
    ap.add_argument("--paper-tables", action="store_true", help="print Rein++ Tables III/V/VI/VIII, ours vs paper")
    ap.add_argument("--decoders", action="store_true", help="print VFMSeg's decoders (VFMNet, MGRNet official/paper) "
                    "at DINOv2-L widths")
    ap.add_argument("--json", action="store_true", help="with --paper-tables / --decoders: machine-readable rows")
    args = ap.parse_args(argv)

    if args.paper_tables:
        rows = param_rows(PARAM_ROWS + FT_PARAM_ROWS)
        if args.json:
            print(json.dumps(rows, indent=1))
        else:
            print_param_tables(rows)
            print_decoder_rows(vfmseg_decoder_rows())
        return 0 if all(r["match"] for r in rows if r.get("must_match")) else 1

    if args.decoders:
        rows = vfmseg_decoder_rows()
        if args.json:
            print(json.dumps(rows, indent=1))
        else:
            print_decoder_rows(rows)
        return 0

    if not args.backbone or not args.method:
        ap.error("--backbone and --method are required (or use --paper-tables / --decoders)")
    if args.backbone not in BACKBONES:
        ap.error(f"unknown backbone {args.backbone!r}; choose one of: {', '.join(BACKBONES)}")
    if args.method not in METHODS:
        ap.error(f"unknown method {args.method!r}; choose one of: {', '.join(METHODS)}")
    if args.patch_size not in ("native",) and not args.patch_size.isdigit():
        ap.error(f"--patch-size must be an integer or 'native', got {args.patch_size!r}")
    try:
        from .engine.validation import plugin_options  # typed and bounded as the trainer does: r=2.7 refused
        options = plugin_options("method", args.method, parse_options(args.option))
        rec = count_params(args.backbone, args.method, options, args.img_size,
                           "native" if args.patch_size == "native" else int(args.patch_size))
    except (ValueError, NotImplementedError) as exc:
        print(f"[dgsslib] error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(rec))
    return 0


if __name__ == "__main__":
    sys.exit(main())
