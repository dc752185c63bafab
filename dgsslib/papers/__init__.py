"""The papers' published numbers, one file per paper, as plain data (no code that computes).

| module | paper | taught in |
|---|---|---|
| :mod:`~dgsslib.papers.rein` | Rein++ / Rein-G (Wei et al., arXiv 2508.01667): Tables III, V-VIII, parameter rows | 10 |
| :mod:`~dgsslib.papers.rein_a` | Rein++ / Rein-A: Tables IX-XIII | 11 |
| :mod:`~dgsslib.papers.fishertune` | FisherTune (Zhao et al., CVPR 2025): Tables 1-5, budget rows | 20 |
| :mod:`~dgsslib.papers.vfmseg` | VFMSeg: Tables 2-4, Fig. 4 | 30 |
| :mod:`~dgsslib.papers.causal_tune` | Causal-Tune (Zhang et al., AAAI 2026): Tables 1-3 | 40 |

Notebooks print them beside our numbers; ``python -m dgsslib.params --paper-tables`` recounts the
parameter columns.
"""
