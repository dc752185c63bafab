"""The engine every paper shares: the one trainer, its loop, the one evaluator, run folders, records.

| module | what |
|---|---|
| :mod:`~dgsslib.engine.train` | ``fit(cfg, work_dir)``: data streams, optimiser, recipe, resume, DDP (the CLI is :mod:`dgsslib.train`) |
| :mod:`~dgsslib.engine.loop` | one iteration at a time: step, masks, clipping, NaN stop, checkpoints, evaluation |
| :mod:`~dgsslib.engine.evaluate` | the one evaluator: whole / slide inference, confusion matrices, mIoU per domain |
| :mod:`~dgsslib.engine.validation` | type and range checks of a resolved config, before anything runs |
| :mod:`~dgsslib.engine.workdir` | work-dir rules: resume, overwrite, locks, same-run checks |
| :mod:`~dgsslib.engine.runtime` | device, DDP ranks, autocast |
| :mod:`~dgsslib.engine.records` | a run's record (``results.json``): config, metrics, provenance |

A paper's difference never lives here: it is a method (:mod:`dgsslib.adapters`, :mod:`dgsslib.selection`)
and a recipe (:mod:`dgsslib.recipes`).
"""
