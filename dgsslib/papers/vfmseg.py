"""VFMSeg's published numbers (AAAI 2025, Tables 2-4, Fig. 4), transcribed for notebook 30.

Paper card: *Unleashing the Power of Visual Foundation Models for Generalizable Semantic Segmentation*
(VFMSeg, Tang et al., AAAI 2025; code https://github.com/tpy001/VFMSeg). mIoU (%), DINOv2-L, trained
on GTAV, tested on Cityscapes / BDD100K / Mapillary. Presentation only: no training code reads this file.
"""
from __future__ import annotations

PAPER = "VFMSeg (Tang et al., AAAI 2025, github.com/tpy001/VFMSeg)"

# Table 2: components added one after another (baseline = frozen DINOv2 + linear decoder).
TABLE_2 = [
    {"config": "Baseline", "citys": 59.80, "bdd": 54.83, "map": 61.57, "avg": 58.73},
    {"config": "+ VFMNet", "citys": 72.16, "bdd": 62.98, "map": 71.88, "avg": 69.00},
    {"config": "+ MGRNet", "citys": 72.94, "bdd": 62.56, "map": 72.56, "avg": 69.35},
    {"config": "+ Feat.Mask", "citys": 73.87, "bdd": 62.91, "map": 73.52, "avg": 70.10},
]

# Table 3: VFMNet's decoder vs others (no MGRNet), average over Citys/BDD/Map.
TABLE_3 = {"Linear": 67.94, "SegFormer": 68.04, "Mask2Former": 67.64, "Ours (VFMNet)": 69.00}

# Table 4: (a) feature-mask ratio p, (b) detail-loss weight λ; average mIoU.
TABLE_4A = {0.0: 69.35, 0.1: 69.56, 0.2: 70.10, 0.3: 69.87, 0.4: 69.33}
TABLE_4B = {0.2: 69.27, 0.5: 69.61, 1.0: 70.10, 1.5: 69.63, 2.0: 69.48}

# Fig. 4 is a plot (no numbers in the text): short sides 512, 1024, 1536, 2048; the text states VFMSeg
# improves monotonically, +4.7 mIoU from 512 to 2048, while most methods peak and then degrade.
FIG_4_SHORT_SIDES = (512, 1024, 1536, 2048)
FIG_4_STATEMENT = "VFMSeg improves monotonically with test resolution: +4.7 mIoU from short side 512 to 2048"

VFMSEG_INCONSISTENCIES = [
    "Backbone lr: the paper says 1e-5 (heads 1e-4); the official configs train LoRA at 1e-4 (option backbone_lr).",
    "Taps: the paper says depths 1/4, 1/2, 3/4, 1 ([5, 11, 17, 23]); the DINOv2 code uses Rein's [7, 11, 15, 23] (option taps).",
    "MGRNet: the paper draws one cross-attention F + softmax(QKᵀ/√d)V; the code runs 3 pre-LN blocks with self-attention, "
    "cross-attention and a GEGLU FFN (head option decoder).",
    "Table 1's test resolution is not stated; the repo's configs test at short side 1024 (DINOv2) or 1536 (EVA02/SAM/CLIP).",
]

__all__ = ["PAPER", "TABLE_2", "TABLE_3", "TABLE_4A", "TABLE_4B", "FIG_4_SHORT_SIDES", "FIG_4_STATEMENT",
           "VFMSEG_INCONSISTENCIES"]
