"""Unsupervised domain adaptation machinery (Rein-A, Rein++ §V), one concept per file.

| file | what | paper |
|---|---|---|
| ``classmix.py`` | ClassMix masks (half of each source image's classes), mixing, DAFormer's strong augmentation (colour jitter + blur) | DACS / DAFormer, Rein++ eq. 15 |
| ``masking.py`` | MIC block masking (block 32/64 px, ratio 0.7) | MIC, Rein++ Algorithm 1 |
| ``pseudo_label.py`` | the teacher's semantic map S = p̂ᵀm̂, a non-degenerate confidence score with τ = 0.968, query-wise losses without matching | DAFormer, Mask2Former, Rein++ eq. 14–19 |
| ``regions.py`` | class-agnostic region maps: the named stand-ins ``oracle`` (label components) and ``slic``; ClassMix composition; area-ordered masks | Rein++ eq. 17 |
| ``sam_regions.py`` | SAM2 automatic masks → region maps (needs ``sam2`` + a checkpoint) | Rein++ §V-C, Table XI |
| ``stm.py`` | the Semantic Transfer Module: region queries pooled on teacher features → a Mask2Former head | Rein++ eq. 17–19 |

The EMA teacher is :mod:`dgsslib.recipes.ema`, the self-training baseline
:mod:`dgsslib.recipes.self_training`, the Rein-A step :mod:`dgsslib.recipes.rein_a`.
Taught in ``notebooks/11_rein_a.ipynb``.
"""
