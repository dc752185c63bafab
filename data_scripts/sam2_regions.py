#!/usr/bin/env python
"""Pre-compute SAM2 automatic masks for every image of a prepared dataset (Rein-A's STM regions).

Rein++ §VI-B7 pre-computes SAM2 masks offline so training pays no SAM cost. For each image of
<name>:<split> this writes <out>/<image path relative to the dataset root>.png: a uint16 region map
(0 = no mask, id + 1 otherwise; masks painted largest first so smaller ones stay visible, see
dgsslib/uda/sam_regions.py). Existing files are kept (re-run to resume after an interruption).
Needs the `sam2` package and a checkpoint (no SAM weights exist offline in this kit's CI):

    python data_scripts/sam2_regions.py cityscapes --split train \
        --checkpoint checkpoints/sam2.1_hiera_large.pt --config configs/sam2.1/sam2.1_hiera_l.yaml

Default output: <dataset root>/sam2_regions/. Note: training (recipe rein_a, regions=sam2) runs SAM2
on each crop; these maps are for inspection and for a data pipeline that carries them through the
random resize/crop (not wired yet; see configs/rein_a/paper_*.yaml).
Exit codes: 0 done; 1 some images failed (listed); 2 user error.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from dgsslib.data.base import DatasetError  # noqa: E402
from dgsslib.data.registry import DATASETS, build_dataset  # noqa: E402
from dgsslib.progress import progress_bar  # noqa: E402
from dgsslib.uda.sam_regions import SAM2Regions, save_region_map  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    doc = __doc__.splitlines()
    p = argparse.ArgumentParser(description=doc[0], epilog="\n".join(doc[1:]),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("name", choices=sorted(DATASETS))
    p.add_argument("--root", default=None, help="dataset root (default $DGSS_DATA/<name> or ./data/<name>)")
    p.add_argument("--split", default="train")
    p.add_argument("--checkpoint", required=True, help="SAM2 checkpoint file")
    p.add_argument("--config", default="configs/sam2.1/sam2.1_hiera_l.yaml", help="SAM2 model config name")
    p.add_argument("--out", default=None, help="output folder (default <root>/sam2_regions)")
    p.add_argument("--points-per-side", type=int, default=32)
    a = p.parse_args(argv)
    if not Path(a.checkpoint).expanduser().is_file():  # this script's own flag, not the recipe option
        print(f"[dgsslib] error: --checkpoint {a.checkpoint} is not a file: give the SAM2 checkpoint "
              "(e.g. checkpoints/sam2.1_hiera_large.pt)", file=sys.stderr)
        return 2
    try:
        ds = build_dataset(a.name, a.root, a.split)
        gen = SAM2Regions(a.checkpoint, a.config, points_per_side=a.points_per_side)
    except (DatasetError, FileNotFoundError, ImportError, ValueError) as e:
        print(f"[dgsslib] error: {e}", file=sys.stderr)
        return 2
    out = Path(a.out) if a.out else Path(ds.root) / "sam2_regions"
    failed = []
    for i in progress_bar(range(len(ds)), desc=f"sam2 {a.name}:{a.split}"):
        target = out / Path(ds._rel(ds.items[i].image)).with_suffix(".png")
        if target.exists():
            continue
        try:
            image = ds.load(i)["image"][None].float() / 255.0              # 1 × 3 × H × W
            save_region_map(target, gen(image)[0].cpu().numpy())
        except (OSError, ValueError, RuntimeError) as e:
            failed.append(f"{ds.items[i].image}: {e}")
    for f in failed:
        print(f"failed: {f}", file=sys.stderr)
    print(f"{len(ds) - len(failed)} region maps under {out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
