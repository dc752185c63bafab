"""Causal-Tune's published numbers as plain data (Tables 1-3, the cutoffs, the paper-vs-code list).

Source: *Causal-Tune: Mining Causal Factors from Vision Foundation Models for Domain Generalized
Semantic Segmentation* (Zhang et al., AAAI 2026; code https://github.com/zhangyin1996/Causal-Tune),
transcribed from the paper's text. DINOv2-L + Mask2Former, 512² crops, batch 4, 40k iterations, mean
of three runs. mIoU in %. Key equation (what the tables measure): Rein's token update on the DCT
band-pass of each block's features, F̂ = IDCT(M ⊙ DCT(F)), M keeping D_L < d < D_H.
Taught in ``notebooks/40_causal_tune.ipynb``.
"""
from __future__ import annotations

CAUSAL_TUNE_PAPER = "Causal-Tune (Zhang et al., AAAI 2026, github.com/zhangyin1996/Causal-Tune)"
#: Table 1 column groups: Cityscapes -> ACDC conditions, Cityscapes -> BDD/Map, GTAV -> Citys/BDD/Map
CT_TABLE_1_COLUMNS = {"citys2acdc": ("Night", "Snow", "Fog", "Rain", "Avg."),
                      "citys": ("BDD", "Map"), "gtav": ("Citys", "BDD", "Map")}
_CT1 = [
    # method, family, Citys->ACDC (5), Citys->(B, M), GTAV->(C, B, M)
    ("IBN", "resnet", (21.2, 49.6, 63.8, 50.4, 46.3), (48.56, 57.04), (33.85, 32.30, 37.75)),
    ("Itenorm", "resnet", (23.8, 49.9, 63.3, 50.1, 46.9), (49.23, 56.26), (31.81, 32.70, 33.88)),
    ("IW", "resnet", (21.8, 47.6, 62.4, 52.4, 46.1), (48.49, 55.82), (29.91, 27.48, 29.71)),
    ("ISW", "resnet", (24.3, 49.8, 64.3, 56.0, 48.6), (50.73, 58.64), (36.58, 35.20, 40.33)),
    ("DIRL", "resnet", (None, None, None, None, None), (51.80, None), (41.04, 39.15, 41.60)),
    ("HGFormer", "transformer", (52.7, 68.6, 69.9, 72.0, 65.8), (53.40, 66.90), (None, None, None)),
    ("CMFormer", "transformer", (33.7, 64.3, 77.8, 67.6, 60.9), (59.27, 71.10), (55.31, 49.91, 60.09)),
    ("Rein", "vfm", (55.9, 70.6, 79.5, 72.5, 69.6), (63.54, 74.03), (66.40, 60.40, 66.10)),
    ("SET", "vfm", (57.3, 73.6, 80.1, 74.8, 71.5), (65.07, 75.67), (68.06, 61.64, 67.68)),
    ("FADA", "vfm", (57.4, 73.5, 80.2, 75.0, 71.5), (65.12, 75.86), (68.23, 61.94, 68.09)),
    ("Causal-Tune", "vfm", (56.2, 75.4, 81.3, 75.2, 72.0), (66.28, 76.05), (66.22, 61.80, 68.21)),
]
#: one dict per row: method, family, citys2acdc / citys / gtav: column -> mIoU (None = "-")
CT_TABLE_1 = [dict(method=m, family=fam, **{g: dict(zip(CT_TABLE_1_COLUMNS[g], v)) for g, v in
                                             zip(CT_TABLE_1_COLUMNS, (a, c, g2))}) for m, fam, a, c, g2 in _CT1]
#: Table 2 (frequency transform), same columns as Table 1 without the families
CT_TABLE_2 = [dict(transform=t, citys2acdc=dict(zip(CT_TABLE_1_COLUMNS["citys2acdc"], a)),
                   citys=dict(zip(CT_TABLE_1_COLUMNS["citys"], c)), gtav=dict(zip(CT_TABLE_1_COLUMNS["gtav"], g)))
              for t, a, c, g in [
                  ("fft", (57.1, 71.1, 80.6, 69.2, 69.5), (65.07, 71.00), (65.22, 60.56, 64.77)),
                  ("hwt", (52.8, 72.2, 79.4, 72.4, 69.2), (64.43, 71.52), (65.77, 61.08, 66.66)),  # printed "64,43"
                  ("dct", (56.2, 75.4, 81.3, 75.2, 72.0), (66.28, 76.05), (66.22, 61.80, 68.21))]]
#: Table 3 (filter on the DCT spectrum, Citys -> ACDC); ``filter`` = our CausalTune option
#: (row "none" is the Rein baseline: no Causal-Tune at all in the paper)
CT_TABLE_3 = [dict(filter=f, removed=r, citys2acdc=dict(zip(CT_TABLE_1_COLUMNS["citys2acdc"], a))) for f, r, a in [
    ("none", "-", (55.9, 70.6, 79.5, 72.5, 69.6)),
    ("lf", "LF", (57.3, 72.1, 73.2, 71.1, 68.4)),
    ("hf", "HF", (54.8, 73.7, 80.5, 74.1, 70.4)),
    ("bandpass", "L&HF", (56.2, 75.4, 81.3, 75.2, 72.0))]]
#: cutoffs: printed default D_L = 0.2, D_H = 0.7 (Fig. 4 says 0.2 / 0.8 scored best); the code uses 0.1 / 0.7
CT_CUTOFFS = {"paper_default": (0.2, 0.7), "paper_fig4_best": (0.2, 0.8), "official_code": (0.1, 0.7)}
#: the paper prints no parameter count ("a small number of parameters"; it is Rein's parameter set)
CT_PARAMS_STATEMENT = None
CT_INCONSISTENCIES = [
    "Table 3 row HF: Avg. printed 70.4, but the mean of 54.8/73.7/80.5/74.1 is 70.8.",
    "Table 1 row Itenorm: Avg. printed 46.9, but the mean of 23.8/49.9/63.3/50.1 is 46.8.",
    "Table 2 HWT Citys->BDD printed as '64,43' (comma).",
    "Text: Gaussian band-pass at 0.2/0.7; code: MAD piecewise mask at 0.1/0.7 (see dgsslib.adapters.freq).",
]


__all__ = ["CAUSAL_TUNE_PAPER", "CT_CUTOFFS", "CT_INCONSISTENCIES", "CT_PARAMS_STATEMENT", "CT_TABLE_1",
           "CT_TABLE_1_COLUMNS", "CT_TABLE_2", "CT_TABLE_3"]
