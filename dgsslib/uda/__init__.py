"""Unsupervised domain adaptation machinery (Rein-A, Rein++ §V), one concept per file.

| file | what | paper |
|---|---|---|
| ``classmix.py`` | ClassMix masks (half of each source image's classes), mixing, DAFormer's strong augmentation (colour jitter + blur) | DACS / DAFormer, Rein++ eq. 15 |
| ``masking.py`` | MIC block masking (block 32/64 px, ratio 0.7) | MIC, Rein++ Algorithm 1 |
| ``pseudo_label.py`` | the teacher's semantic map S = p̂ᵀm̂, a non-degenerate confidence score with τ = 0.968, query-wise losses without matching | DAFormer, Mask2Former, Rein++ eq. 14–19 |

The EMA teacher is :mod:`dgsslib.recipes.ema`, the self-training baseline
:mod:`dgsslib.recipes.self_training`; the Rein-A recipe and its Semantic Transfer Module build on
these (issue #10, in progress). Taught in ``notebooks/11_rein_a.ipynb`` (planned).
"""
