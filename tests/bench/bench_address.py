"""Address parsing on the NAACL 2019 Chinese address corpus: per-label span F1 (exact
boundaries) on dev.txt for the rule parser and for a CRF trained on train.txt only (never on
dev). The CRF is trained into a temporary directory unless --save is given, which writes it to
the configured model path (var/models/address-crf.crfsuite by default) for the product to use.

    python -m tests.bench.bench_address [--save] [--no-crf] [--limit N]
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
ADDRESSES = SHARED_DATA / "addresses"


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--save", action="store_true", help="keep the trained model at the configured model path")
    ap.add_argument("--no-crf", action="store_true", help="score the rule parser only")
    ap.add_argument("--limit", type=int, default=None, help="train on the first N addresses only")
    args = ap.parse_args(argv)
    train, dev = ADDRESSES / "train.txt", ADDRESSES / "dev.txt"
    if not (train.is_file() and dev.is_file()):
        print(f"SKIP bench_address: {ADDRESSES} not found (the shared data set is not shipped with GridGov)")
        return 0

    from gridgov.nlp.address import (
        CrfParser,
        RuleParser,
        configured_model_path,
        evaluate_parser,
        read_bio,
        train_address_model,
    )

    dev_data = read_bio(dev)
    print(f"\n=== address parsing: train {len(read_bio(train)):,} addresses, dev {len(dev_data):,} ===")
    results = {}
    rules = RuleParser()
    t0 = time.perf_counter()
    results["rules"] = evaluate_parser(rules, dev_data)
    rate = len(dev_data) / (time.perf_counter() - t0)
    print(f"  rules: {rate:,.0f} addresses/s")

    if not args.no_crf:
        with tempfile.TemporaryDirectory() as tmp:
            out = configured_model_path() if args.save else Path(tmp) / "address-crf.crfsuite"
            t0 = time.perf_counter()
            train_address_model(train, out, limit=args.limit)
            print(
                f"  crf: trained on train.txt in {time.perf_counter() - t0:.0f} s → {out if args.save else 'temp file'}"
            )
            crf = CrfParser(out)
            t0 = time.perf_counter()
            results["crf"] = evaluate_parser(crf, dev_data)
            rate = len(dev_data) / (time.perf_counter() - t0)
            print(f"  crf: {rate:,.0f} addresses/s (including the rule features)")

    names = list(results)
    labels = list(next(iter(results.values())).per_label)
    for ev in results.values():
        labels += [lab for lab in ev.per_label if lab not in labels]
    print(f"\nspan F1 on dev.txt (exact match)\n  {'label':<11} {'gold':>6}" + "".join(f" {n:>7}" for n in names))
    for lab in labels:
        gold = max(ev.per_label[lab].support for ev in results.values() if lab in ev.per_label)
        cells = "".join(
            f" {ev.per_label[lab].f1:7.3f}" if lab in ev.per_label else f" {'-':>7}" for ev in results.values()
        )
        print(f"  {lab:<11} {gold:6d}{cells}")
    for title, pick in (
        ("micro P", lambda ev: ev.micro.precision),
        ("micro R", lambda ev: ev.micro.recall),
        ("micro F1", lambda ev: ev.micro.f1),
        ("F1 w/o red.", lambda ev: ev.micro_without("redundant").f1),
    ):
        print(f"  {title:<11} {'':>6}" + "".join(f" {pick(ev):7.3f}" for ev in results.values()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
