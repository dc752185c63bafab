"""Element-wise selection methods: train a chosen subset of the backbone's weight elements.

A selection method is a :class:`~dgsslib.adapters.base.Method` whose ``grad_masks(step)`` returns
{parameter: 0/1 mask} and whose ``selection_parameters()`` lists the masked tensors; the trainer
masks gradients, AdamW moments and decoupled weight decay with it (:mod:`dgsslib.optim`).

| method | file | selection |
|---|---|---|
| ``random_select`` | ``random.py`` | a seeded random ``fraction`` of the Q/K/V/proj/FFN weights (FisherTune Table 4 "Random") |
"""
