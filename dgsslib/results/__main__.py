"""``python -m dgsslib.results``: the results table, the provenance report, ``--restamp``, ``--reproduce``.

    python -m dgsslib.results              # the results table; flagged runs say why (exit 0)
    python -m dgsslib.results --readme     # the same table into README.md, led by the leaderboard (notebook 90)
    python -m dgsslib.results --strict     # exit 1 when any committed run is flagged
    python -m dgsslib.results --restamp [NOTEBOOK]   # trace flagged runs at HEAD; equal -> attested
    python -m dgsslib.results --reproduce results/10_rein_g/mini.json --run rein-s0
    python -m dgsslib.results --against build/demo/results   # new records beside the committed ones (make demo)
"""
from __future__ import annotations

import argparse
import sys

from .provenance import ROOT
from .tables import UNREADABLE, ResultsError, check_root, provenance_report, readme_table, write_readme


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m dgsslib.results", description=__doc__.split("\n\n")[0])
    p.add_argument("--readme", action="store_true", help="rewrite the results table in README.md")
    p.add_argument("--root", default=None, help="results folder (default: results/)")
    p.add_argument("--strict", action="store_true", help="exit 1 when a run is flagged")
    p.add_argument("--restamp", nargs="?", const="", metavar="NOTEBOOK",
                   help="backfill code identities and reference traces, then trace runs whose code changed at "
                        "HEAD and attest the bit-equal ones (all notebooks, or e.g. 10_rein_g)")
    p.add_argument("--reproduce", metavar="RECORD", help="rerun one run of RECORD (a results json) and compare")
    p.add_argument("--against", metavar="DIR", help="compare the records under DIR (e.g. make demo's) with the "
                   "committed ones of the same run tag and config: PASS/FAIL at --tolerance")
    p.add_argument("--numerics-of", metavar="RECORD", help="print the CPU numerics RECORD's runs were made with "
                   "(portable | native): make demo reruns each notebook under its record's")
    p.add_argument("--run", metavar="TAG", help="with --reproduce: the run's tag (default: the first run)")
    p.add_argument("--tolerance", type=float, default=0.05, help="with --reproduce: max |Δ mIoU| (default 0.05)")
    p.add_argument("--work-dir", default=None, help="with --reproduce: keep the rerun here (default: a temp dir)")
    a = p.parse_args(argv)
    if a.numerics_of:
        from .against import record_numerics
        try:
            print(record_numerics(a.numerics_of))
        except ResultsError as exc:
            print(f"[dgsslib] error: --numerics-of: {exc}", file=sys.stderr)
            return 2
        return 0
    if a.against:
        from .against import main_against
        return main_against(a.against, a.root, a.tolerance)
    if a.reproduce:
        from .reproduce import main_reproduce
        return main_reproduce(a.reproduce, a.run, a.tolerance, a.work_dir)
    if a.restamp is not None:
        from .restamp import main_restamp
        return main_restamp(a.restamp or None, a.root)
    try:
        check_root(a.root)
    except ResultsError as exc:
        print(f"[dgsslib] error: {exc}", file=sys.stderr)
        return 2
    table = readme_table(a.root)
    if a.readme:
        try:
            write_readme(table, a.root)
        except ResultsError as exc:
            print(f"[dgsslib] error: {exc}", file=sys.stderr)
            return 1
    print(table)
    lines, n = provenance_report(a.root)
    for path, why in UNREADABLE.items():
        print(f"[dgsslib] warning: {path} was skipped: {why}", file=sys.stderr)
    if UNREADABLE and a.strict:
        print(f"[dgsslib] error: {len(UNREADABLE)} results file(s) could not be read (named above)", file=sys.stderr)
        return 1
    if n:
        print(f"\n{n} run(s) flagged (shown with ⚠ above): python -m dgsslib.results --restamp attests runs whose "
              "trace is unchanged; others need --reproduce or a rerun from a clean, committed tree:")
        print("\n".join(lines))
    else:
        print("\nprovenance: every run was made from clean, committed code that is current (or attested by trace).")
    return 1 if (a.strict and n) else 0


if __name__ == "__main__":
    raise SystemExit(main())
