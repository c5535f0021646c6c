"""Appeal category classifier on real labelled messages (Teddy Cup 2020, 241 messages, 7
level-1 categories): stratified 70/30 split with a fixed seed, fit on the 70 % only, top-1 and
top-3 accuracy on the held-out 30 %; then 5-fold stratified cross-validation over all messages
as a second figure. Nothing is tuned on the held-out part. Also times prediction and the rules.

    python -m tests.bench.bench_classify
"""

import statistics
import sys
import time
from collections import Counter
from pathlib import Path

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
MESSAGES = SHARED_DATA / "appeals" / "labelled_messages_train.csv"
SEED = 12345
HOLDOUT = 0.3


def split(texts, labels):
    from sklearn.model_selection import train_test_split

    return train_test_split(texts, labels, test_size=HOLDOUT, stratify=labels, random_state=SEED)


def holdout_scores():
    from gridgov.nlp.classify import Classifier, load_labelled_messages, top_k_accuracy

    texts, labels = load_labelled_messages(MESSAGES)
    x_tr, x_te, y_tr, y_te = split(texts, labels)
    clf = Classifier().fit(x_tr, y_tr)
    return {
        "n_train": len(x_tr),
        "n_test": len(x_te),
        "top1": top_k_accuracy(clf, x_te, y_te, k=1),
        "top3": top_k_accuracy(clf, x_te, y_te, k=3),
        "clf": clf,
        "x_te": x_te,
        "y_te": y_te,
    }


def cross_validated(folds=5):
    from sklearn.model_selection import StratifiedKFold

    from gridgov.nlp.classify import Classifier, load_labelled_messages, top_k_accuracy

    texts, labels = load_labelled_messages(MESSAGES)
    top1, top3 = [], []
    for train_idx, test_idx in StratifiedKFold(folds, shuffle=True, random_state=SEED).split(texts, labels):
        clf = Classifier().fit([texts[i] for i in train_idx], [labels[i] for i in train_idx])
        x_te, y_te = [texts[i] for i in test_idx], [labels[i] for i in test_idx]
        top1.append(top_k_accuracy(clf, x_te, y_te, k=1))
        top3.append(top_k_accuracy(clf, x_te, y_te, k=3))
    return top1, top3


def main():
    if not MESSAGES.is_file():
        print(f"SKIP bench_classify: {MESSAGES} not found (the shared data set is not shipped with GridGov)")
        return 0
    from gridgov.nlp.classify import classify_kind, load_labelled_messages, risk_flags, urgency_tier

    texts, labels = load_labelled_messages(MESSAGES)
    print(f"\n=== appeal category classifier: {len(texts)} messages, {len(set(labels))} categories ===")
    for label, n in Counter(labels).most_common():
        print(f"  {label:<10} {n:4d}")
    majority = Counter(labels).most_common(1)[0][1] / len(labels)

    t0 = time.perf_counter()
    h = holdout_scores()
    fit_s = time.perf_counter() - t0
    print(f"\nheld-out split (seed {SEED}, stratified): train {h['n_train']}, test {h['n_test']}")
    print(f"  {'top-1 accuracy (held out)':<34} {h['top1']:.3f}")
    print(f"  {'top-3 accuracy (held out)':<34} {h['top3']:.3f}")
    print(f"  {'majority-class baseline':<34} {majority:.3f}")
    print(f"  {'fit + score time':<34} {fit_s:.2f} s")

    top1, top3 = cross_validated()
    print("\n5-fold stratified cross-validation over all messages:")
    print(f"  {'top-1 accuracy':<34} {statistics.mean(top1):.3f} ± {statistics.stdev(top1):.3f}")
    print(f"  {'top-3 accuracy':<34} {statistics.mean(top3):.3f} ± {statistics.stdev(top3):.3f}")

    clf, sample = h["clf"], h["x_te"]
    t0 = time.perf_counter()
    for text in sample:
        clf.predict_top(text, k=3)
    per = (time.perf_counter() - t0) / len(sample) * 1000
    print(f"\n  {'predict_top latency':<34} {per:.2f} ms/message")
    t0 = time.perf_counter()
    for text in texts:
        classify_kind(text)
        risk_flags(text)
        urgency_tier(text)
    per = (time.perf_counter() - t0) / len(texts) * 1000
    print(f"  {'kind + risk + urgency rules':<34} {per:.2f} ms/message")
    kinds = Counter(classify_kind(t).label for t in texts)
    flagged = Counter(f.kind for t in texts for f in risk_flags(t))
    tiers = Counter(urgency_tier(t).tier for t in texts)
    print(f"  kinds on the corpus: {dict(kinds.most_common())}")
    print(f"  risk flags on the corpus: {dict(flagged.most_common())}")
    print(f"  urgency tiers on the corpus: {dict(tiers.most_common())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
