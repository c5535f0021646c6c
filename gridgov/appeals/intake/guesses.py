"""What a category guess is, and the keyword floor under any model: the active leaf categories
with their keywords (cached per process), and the guesses their keywords give for a text.

Both the classify step (pipeline) and the trained model (classifier) stand on this module, so
neither needs the other to say what a Guess or a leaf is."""

from dataclasses import dataclass

from django.db import connection

from gridgov.appeals.models import Category


@dataclass(frozen=True)
class Guess:
    code: str
    name: str
    confidence: float
    source: str  # "keyword" | "model" | "operator"

    def as_dict(self) -> dict:
        return {"code": self.code, "name": self.name, "confidence": round(self.confidence, 3), "source": self.source}


# (key, leaves). The key is a digest of every active leaf's code, name and keywords, taken in the
# database: a count alone stays the same when an operator edits a keyword, and a save() signal
# misses queryset.update() and the other processes.
_leaf_cache: tuple[object, list[tuple[str, str, list[str]]]] = (None, [])


def _leaves_key() -> tuple[int, str]:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT count(*), md5(coalesce(string_agg(row(code, name, keywords)::text, ',' ORDER BY code), ''))"
            f" FROM {connection.ops.quote_name(Category._meta.db_table)} WHERE level = 3 AND is_active"
        )
        return cursor.fetchone()


def leaf_categories() -> list[tuple[str, str, list[str]]]:
    """(code, name, keywords) of every active leaf category, as the database has them now."""
    global _leaf_cache
    key = _leaves_key()
    if _leaf_cache[0] != key:
        leaves = list(Category.objects.filter(level=3, is_active=True).values_list("code", "name", "keywords"))
        _leaf_cache = (key, leaves)
    return _leaf_cache[1]


def keyword_guesses(text: str, k: int = 3, leaves: list | None = None) -> list[Guess]:
    """The floor under any model: categories whose keywords appear in the text, scored by the
    share of the text their matched keywords cover. `leaves`: leaf_categories(), when the caller
    has it."""
    scored = []
    for code, name, keywords in leaves if leaves is not None else leaf_categories():
        words = [w for w in (keywords or []) if w and w in text]
        if name in text:
            words.append(name)
        if words:
            covered = sum(len(w) for w in set(words))
            scored.append((min(0.95, 0.35 + 0.1 * len(set(words)) + covered / max(len(text), 1)), code, name))
    scored.sort(key=lambda t: (-t[0], t[1]))
    return [Guess(code, name, conf, "keyword") for conf, code, name in scored[:k]]
