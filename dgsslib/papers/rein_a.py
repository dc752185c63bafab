"""Rein-A's published numbers (Rein++ §VI-B, Tables IX-XIII), transcribed for notebook 11.

Paper card: Rein++ (Wei et al., https://arxiv.org/abs/2508.01667) §VI-B; no public code. mIoU (%).
Presentation only: no training code reads this file.
"""
from __future__ import annotations

PAPER = "Rein++ (Wei et al., https://arxiv.org/abs/2508.01667)"

# Table IX, DINOv2-L: Rein-A after adaptation; Rein-G source-only from Table II (GTAV -> Cityscapes).
TABLE_IX = {
    "gta2cs": {"target": "Cityscapes val", "rein_g_source_only": 70.7, "rein_a": 76.9},
    "cs2acdc": {"target": "ACDC test", "rein_g_source_only": None, "rein_a": 77.7},
    "cs2dz": {"target": "Dark Zurich test", "rein_g_source_only": None, "rein_a": 70.9},
}

# Table X (GTAV -> Cityscapes val, DINOv2-L): components removed one at a time.
TABLE_X = {"Rein-A": 76.9, "w/o Rein-G": 71.5, "w/o L_mix": 71.6, "w/o L_mask": 74.4, "w/o M_stm": 71.8}

# Table XI: region masks from SAM1 vs SAM2 (GTAV -> Cityscapes val).
TABLE_XI = {"SAM1": 75.5, "SAM2": 76.9}

# Table XII (A100 40 GB): training cost of Rein-A vs Full at batch size 1.
TABLE_XII = [
    {"backbone": "dinov2_l", "method": "Full", "batch": 1, "hours": 25.2, "memory_gb": 22.9, "storage_gb": 1.22},
    {"backbone": "dinov2_l", "method": "Rein-A", "batch": 1, "hours": 16.7, "memory_gb": 15.0, "storage_gb": 0.09},
    {"backbone": "dinov2_g", "method": "Full", "batch": 1, "hours": None, "memory_gb": None, "storage_gb": 4.35},
    {"backbone": "dinov2_g", "method": "Rein-A", "batch": 1, "hours": 30.0, "memory_gb": 34.9, "storage_gb": 0.11},
]

# Table XIII (titled Cityscapes -> ACDC val): loss weights α (rows) × β (columns).
TABLE_XIII_BETAS = (0.1, 10 ** -0.5, 1.0, 10 ** 0.5, 10.0)
TABLE_XIII = {0.1: (74.3, 74.5, 74.3, 70.7, 70.5), 1.0: (75.8, 76.1, 76.9, 74.8, 73.8), 10.0: (75.2, 75.3, 74.9, 74.9, 74.8)}

REIN_A_INCONSISTENCIES = [
    "Batch size: §VI-A3 (inherited by Rein-A, 'all other hyperparameters consistent') says 4; Table XII trains Rein-A at 1.",
    "Table XIII is titled Cityscapes -> ACDC (val) but its best cell, 76.9, is the GTAV -> Cityscapes number of Tables IX-XI.",
    "Eq. 19 pairs student query i with STM query i, but the STM's queries come from SAM masks whose number varies per image; "
    "the paper does not say how counts are matched (we pad/truncate to the student's Q, largest regions first).",
]

__all__ = ["PAPER", "TABLE_IX", "TABLE_X", "TABLE_XI", "TABLE_XII", "TABLE_XIII", "TABLE_XIII_BETAS",
           "REIN_A_INCONSISTENCIES"]
