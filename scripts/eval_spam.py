"""Precision and recall of the poisoning detector, and of the reference bot's filter set, on the labelled corpus.

The corpus (usdt_trio/testing/spam_corpus.py) is seeded; `--seed` draws another one of the same shape.
Usage: python scripts/eval_spam.py [--seed 2026] [--details]
"""

from __future__ import annotations

import argparse
from collections import Counter

from usdt_trio.testing.spam_corpus import build_corpus, evaluate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--details", action="store_true", help="list every miss and false alarm")
    args = parser.parse_args()
    cases = build_corpus(args.seed)
    events = [e for case in cases for e in case.events]
    kinds = Counter(e.scenario for e in events if e.poison)
    print(f"corpus (seed {args.seed}): {len(cases)} watched addresses, {len(events)} transfers, "
          f"{sum(kinds.values())} of them poisoning: " + ", ".join(f"{k} {n}" for k, n in sorted(kinds.items())))
    print()
    print(f"{'detector':<28} {'precision':>9} {'recall':>7} {'caught':>7} {'missed':>7} {'false alarms':>13}")
    results = {"usdt-trio": evaluate(cases), "usdt_monitor_bot filters": evaluate(cases, reference_only=True)}
    for name, r in results.items():
        print(f"{name:<28} {r.precision:>9.3f} {r.recall:>7.3f} {r.tp:>7} {r.fn:>7} {r.fp:>13}")
    ours = results["usdt-trio"]
    print()
    verdict = "PASS" if ours.recall >= 0.95 and ours.precision >= 0.95 else "MISS"
    print(f"target recall ≥ 0.95 with precision ≥ 0.95: {verdict}")
    for name, r in results.items():
        shown = r.missed + r.false_alarms if args.details else (r.missed + r.false_alarms)[:6]
        if shown:
            print(f"\n{name}: misses and false alarms{'' if args.details else ' (first 6; --details for all)'}")
            for line in shown:
                print(f"  {'missed' if line in r.missed else 'false alarm'}: {line}")


if __name__ == "__main__":
    main()
