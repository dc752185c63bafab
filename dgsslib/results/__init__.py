"""Results: provenance (code identity, traces, attestations), tables, --restamp and --reproduce.

| module | what |
|---|---|
| :mod:`~dgsslib.results.provenance` | what a record says about its code, tree, benchmark and machine; the rules of "current" |
| :mod:`~dgsslib.results.codeid` | a run's declared dependencies (static import closure) and AST hashes |
| :mod:`~dgsslib.results.trace` | a run's config shrunk to the tiny backbone: a digest in seconds |
| :mod:`~dgsslib.results.restamp` | ``--restamp``: trace at HEAD == trace at the run's commit -> attestation |
| :mod:`~dgsslib.results.reproduce` | ``--reproduce``: retrain a run from its config (and the runs it starts from) |
| :mod:`~dgsslib.results.against` | ``--against DIR``: new records (``make demo``'s) beside the committed ones, PASS/FAIL |
| :mod:`~dgsslib.results.tables` | the README table and the provenance report |

CLI: ``python -m dgsslib.results [--readme] [--strict] [--restamp [NOTEBOOK]] [--reproduce RECORD --run TAG] [--against DIR]``.
Nothing here is imported by training: these modules only read and write records.
"""
