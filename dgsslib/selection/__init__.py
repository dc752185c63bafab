"""Element-wise selection methods: train a chosen subset of the backbone's weight elements.

A selection method is a :class:`~dgsslib.adapters.base.Method` whose ``grad_masks(step)`` returns
{parameter: 0/1 mask} and whose ``selection_parameters()`` lists the masked tensors; the trainer
masks gradients, AdamW moments and decoupled weight decay with it (:mod:`dgsslib.optim`).

| method / module | file | selection |
|---|---|---|
| ``random_select`` | ``random.py`` | a seeded random ``fraction`` of the Q/K/V/proj/FFN weights |
| ``fishertune`` | ``fishertune.py`` | FisherTune (CVPR 2025): top ρ(t) of θ = {Q, K, V, FFN} by DR-FIM, growing δ_min → δ_max; ``score=random|fim|delta|drfim`` gives Table 4's rows |
| ``childtune`` | ``childtune.py`` | Child-Tuning-D: fixed top-budget mask by the empirical Fisher (per-tensor clipped) |
| θ, F, DR-FIM | ``fisher.py`` | Q/K/V rows of fused qkv, FFN linears; direct estimator; eq. 7; Fig. 6 summaries |
| SGVB posterior | ``variational.py`` | eq. 10–15: Λ* = F/γ + τ⁻², F̂ = γ(Λ − τ⁻²) |
| schedule | ``schedule.py`` | eq. 16 read as a growing share (exp / printed_growing / linear / fixed) |

The phases (warm-up, estimation, masked fine-tuning) are the recipe :mod:`dgsslib.recipes.fishertune`;
x′ for F(x′) is :mod:`dgsslib.selection.perturb` (DSU). Taught in ``notebooks/20_fishertune.ipynb``.
"""
