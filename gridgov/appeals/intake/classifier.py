"""The trained leaf-category model behind intake: loading it, asking it, and retraining it on
the categories operators confirmed.

* `model_guesses(text, k)`: the model's top-k leaf categories as `guesses.Guess` (source
  "model"), or [] when no model file is there (or it cannot be used). `pipeline.classify_step`
  calls it by default and merges the keyword floor (Category.keywords) over it.
* `classifier_retrain(...)`: trains a new model (gridgov.nlp.classify.Classifier: TF-IDF on
  character n-grams, calibrated linear SVM) on confirmed history, reports held-out accuracy,
  writes the file atomically and records "classifier.retrain" in the audit chain. The
  `retrain_classifier` command and the nightly Celery task call it.

The model file (settings.CLASSIFIER_MODEL_PATH) is a joblib pickle, and unpickling runs
whatever the file says. So only files this system wrote are loaded: `model_write` puts an
HMAC-SHA256 of the pickled bytes, keyed by SECRET_KEY, in the file's header, and `model_read`
refuses a file whose HMAC does not match before a byte of it is unpickled. A model copied from
elsewhere, or written under another SECRET_KEY (after a key rotation: retrain), is not used;
intake then runs on the keyword rules alone and the log says why.

Each process keeps the loaded model and reloads it when the file changes (mtime, size, inode):
`retrain_classifier` replaces the file by rename, so web and worker processes pick the new model
up on their next appeal without a restart.
"""

import hmac
import io
import logging
import math
import os
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.db.models import Q
from django.utils import timezone
from django.utils.crypto import salted_hmac

from gridgov.appeals.intake.guesses import Guess, leaf_categories
from gridgov.appeals.models import Appeal
from gridgov.audit.services import audit_record
from gridgov.nlp.classify import Classifier

logger = logging.getLogger(__name__)

MAGIC = b"GRIDGOV-APPEAL-CLASSIFIER/1\n"
_DIGEST_HEX = 64  # HMAC-SHA256
_HEADER = len(MAGIC) + _DIGEST_HEX + 1
_HMAC_SALT = "gridgov.appeals.intake.classifier.model-file"

# Whose category assignments are training data: classification["confirmed_by"]. "operator" is
# set by appeal_register when the operator chose the category, by appeal_categorise
# (confirmed or corrected, with classification["confirmed"]), and by the demo history generator
# (fixtures/demohistory.py: its categories are the generated truth, marked as the operator's).
# The classifier's own guesses (confirmed_by "") never train the next model, so it cannot learn
# its own mistakes.
TRAINING_CONFIRMED_BY = frozenset({"operator"})


class ModelFileError(ValueError):
    """The file is not a classifier this system wrote (bad header or HMAC, or a foreign payload)."""


class RetrainError(ValueError):
    """Not enough confirmed history to train or to evaluate a model."""


@dataclass
class LoadedModel:
    classifier: Classifier
    catalogue: dict  # {leaf code: name} as at training: a code whose name changed is not offered
    meta: dict = field(default_factory=dict)
    path: str = ""


# --- the file --------------------------------------------------------------------------------


def _mac():
    return salted_hmac(_HMAC_SALT, b"", algorithm="sha256")


def model_write(classifier, *, catalogue, meta, path=None):
    """Write the model next to `path` and rename it into place, so a reader sees the old file or
    the new one, never half of one. Returns (path, hmac hex digest)."""
    # joblib (and the scikit-learn a model file unpickles) loads only when a model is used.
    import joblib

    path = Path(path or settings.CLASSIFIER_MODEL_PATH)
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    joblib.dump(
        {"format": 1, "classifier": classifier.to_payload(), "catalogue": dict(catalogue), "meta": dict(meta)}, buf
    )
    body = buf.getvalue()
    mac = _mac()
    mac.update(body)
    digest = mac.hexdigest()
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(MAGIC + digest.encode() + b"\n")
            fh.write(body)
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o640)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path, digest


def model_read(path=None):
    """Verify the file's HMAC, then unpickle it. Raises ModelFileError for anything this system
    did not write."""
    # joblib (and the scikit-learn a model file unpickles) loads only when a model is used.
    import joblib

    path = Path(path or settings.CLASSIFIER_MODEL_PATH)
    with open(path, "rb") as fh:
        # One read of one open file: the bytes checked are the bytes unpickled, even if the
        # file is replaced meanwhile.
        header, body = fh.read(_HEADER), fh.read()
    if not header.startswith(MAGIC) or len(header) != _HEADER or header[-1:] != b"\n":
        raise ModelFileError(f"{path}: not a GridGov appeal classifier file")
    mac = _mac()
    mac.update(body)
    if not hmac.compare_digest(mac.hexdigest().encode(), header[len(MAGIC) : -1]):
        raise ModelFileError(
            f"{path}: signature does not match (written elsewhere or under another "
            f"SECRET_KEY): not loaded; run retrain_classifier"
        )
    payload = joblib.load(io.BytesIO(body))
    if not isinstance(payload, dict) or payload.get("format") != 1:
        raise ModelFileError(f"{path}: unknown classifier file format")
    try:
        clf = Classifier.from_payload(payload["classifier"], where=str(path))
    except ValueError as exc:
        raise ModelFileError(str(exc)) from exc
    return LoadedModel(clf, dict(payload["catalogue"]), dict(payload.get("meta") or {}), str(path))


# --- the per-process cache -------------------------------------------------------------------

_lock = threading.Lock()
_cache: dict[str, Any] = {"key": None, "model": None}


def loaded_model():
    """The model at settings.CLASSIFIER_MODEL_PATH, loaded once per process and again when the
    file changes; None when there is no usable file."""
    path = Path(settings.CLASSIFIER_MODEL_PATH)
    try:
        st = path.stat()
    except OSError:
        _cache.update(key=None, model=None)
        return None
    key = (str(path), st.st_mtime_ns, st.st_size, st.st_ino)
    if _cache["key"] == key:
        return _cache["model"]
    with _lock:
        if _cache["key"] != key:
            # Logged once per file version; intake falls back to the keyword rules.
            try:
                model = model_read(path)
            except ModelFileError as exc:
                logger.warning("%s; classifying by keywords only", exc)
                model = None
            except Exception:  # a model that cannot be unpickled (library upgrade) must not stop intake
                logger.exception("appeal classifier %s not loaded; classifying by keywords only", path)
                model = None
            _cache.update(key=key, model=model)
    return _cache["model"]


def model_guesses(text: str, k: int = 3) -> list[Guess]:
    """The trained model's k best leaf categories for `text`, best first, as guesses.Guess with
    source "model"; [] with no model. Only leaves that are active now and still carry the name
    they had at training are offered, and none below settings.CLASSIFIER_MIN_CONFIDENCE."""
    return model_guesses_many([text], k)[0]


def model_guesses_many(texts: Sequence[str], k: int = 3) -> list[list[Guess]]:
    """model_guesses for many texts with one call of the model (bulk intake)."""
    model = loaded_model()
    out: list[list[Any]] = [[] for _ in texts]
    todo = [i for i, text in enumerate(texts) if (text or "").strip()]
    if model is None or model.classifier.pipeline is None or not todo:
        return out
    leaves = {code: name for code, name, _kw in leaf_categories()}
    labels = [str(c) for c in model.classifier.pipeline.classes_]
    proba = model.classifier.proba([texts[i] for i in todo])
    floor = settings.CLASSIFIER_MIN_CONFIDENCE
    for i, row in zip(todo, proba):
        guesses = out[i]
        for code, p in sorted(zip(labels, row.tolist()), key=lambda kv: (-kv[1], kv[0])):
            if len(guesses) >= k or p < floor:
                break
            if leaves.get(code) is not None and leaves[code] == model.catalogue.get(code):
                guesses.append(Guess(code, leaves[code], p, "model"))
    return out


# --- training --------------------------------------------------------------------------------


def training_rows(max_rows=None):
    """(text, leaf code, leaf name) of confirmed history, newest first: appeals whose category an
    operator chose, confirmed or corrected (see TRAINING_CONFIRMED_BY), on active leaves. The
    same text with the same category counts once."""
    qs = (
        Appeal.objects.filter(category__level=3, category__is_active=True)
        .filter(
            Q(classification__confirmed_by__in=sorted(TRAINING_CONFIRMED_BY)) | Q(classification__has_key="confirmed")
        )
        .exclude(text="")
        .order_by("-received_at", "-pk")
        .values_list("text", "category__code", "category__name")
    )
    seen, rows = set(), []
    for text, code, name in qs.iterator(chunk_size=5000):
        key = (" ".join(text.split()), code)
        if key in seen:
            continue
        seen.add(key)
        rows.append((text, code, name))
        if max_rows and len(rows) >= max_rows:
            break
    return rows


def _top_k(classifier, texts, labels, ks=(1, 3)):
    proba = classifier.proba(texts)
    classes = np.array(classifier.labels)
    order = np.argsort(-proba, axis=1)
    truth = np.array(labels)[:, None]
    return {k: float((classes[order[:, :k]] == truth).any(axis=1).mean()) for k in ks}


def classifier_retrain(
    *,
    min_per_class: int = 10,
    holdout: float = 0.2,
    path: str | os.PathLike | None = None,
    max_rows: int | None = 200_000,
    min_top1: float = 0.0,
    seed: int = 0,
    actor: object = "system",
) -> dict:
    """Train on confirmed history and replace the model file. With `holdout` > 0 a stratified
    share of the rows is held out and scored first (top-1 and top-3 accuracy); the model written
    is then trained on every row. Categories with fewer than `min_per_class` rows are left out
    (the keyword floor still covers them). A model scoring below `min_top1` is not written.
    Returns a summary dict (also the audit record's data)."""
    # scikit-learn is heavy to import: only the (nightly) retrain needs its splitter.
    from sklearn.model_selection import train_test_split

    if not 0 <= holdout < 1:
        raise RetrainError("holdout must be in [0, 1)")
    if holdout and min_per_class < 2:
        raise RetrainError("a stratified hold-out needs --min-per-class of at least 2")
    started = time.monotonic()
    rows = training_rows(max_rows)
    counts = Counter(code for _t, code, _n in rows)
    kept = {code for code, n in counts.items() if n >= max(min_per_class, 1)}
    dropped = {code: n for code, n in sorted(counts.items()) if code not in kept}
    rows = [r for r in rows if r[1] in kept]
    if len(kept) < 2:
        raise RetrainError(
            f"need at least two categories with {min_per_class}+ confirmed appeals, "
            f"found {len(kept)} ({len(rows)} appeals)"
        )
    texts = [t for t, _c, _n in rows]
    labels = [c for _t, c, _n in rows]
    summary: dict[str, Any] = {
        "rows": len(rows),
        "classes": len(kept),
        "min_per_class": min_per_class,
        "dropped_classes": dropped,
        "holdout": holdout,
        "train": len(rows),
        "held_out": 0,
        "top1": None,
        "top3": None,
    }
    if holdout:
        # At least one held-out appeal per class, or stratification cannot place them.
        n_test = max(math.ceil(holdout * len(rows)), len(kept))
        if len(rows) - n_test < len(kept):
            raise RetrainError(f"{len(rows)} appeals are too few to hold out {holdout:.0%} over {len(kept)} classes")
        x_tr, x_te, y_tr, y_te = train_test_split(texts, labels, test_size=n_test, stratify=labels, random_state=seed)
        scores = _top_k(Classifier(random_state=seed, min_df=_min_df(len(x_tr))).fit(x_tr, y_tr), x_te, y_te)
        summary.update(train=len(x_tr), held_out=len(x_te), top1=round(scores[1], 4), top3=round(scores[3], 4))
    if summary["top1"] is not None and summary["top1"] < min_top1:
        summary.update(
            written=False,
            reason=f"top-1 {summary['top1']:.3f} below {min_top1:.3f}",
            seconds=round(time.monotonic() - started, 1),
        )
        audit_record(
            actor=actor,
            action="classifier.retrain",
            object_type="appeals.classifier",
            object_id=Path(path or settings.CLASSIFIER_MODEL_PATH).name,
            data=summary,
        )
        return summary
    final = Classifier(random_state=seed, min_df=_min_df(len(texts))).fit(texts, labels)
    catalogue = {code: name for _t, code, name in rows}
    meta = {"trained_at": timezone.now().isoformat(), **{k: summary[k] for k in ("rows", "classes", "top1", "top3")}}
    out, digest = model_write(final, catalogue=catalogue, meta=meta, path=path)
    summary.update(
        written=True,
        path=str(out),
        digest=digest[:16],
        bytes=out.stat().st_size,
        seconds=round(time.monotonic() - started, 1),
    )
    audit_record(
        actor=actor, action="classifier.retrain", object_type="appeals.classifier", object_id=out.name, data=summary
    )
    return summary


def _min_df(n_rows):
    # An n-gram seen once in tens of thousands of appeals only adds weight to the file.
    return 2 if n_rows >= 5000 else 1
