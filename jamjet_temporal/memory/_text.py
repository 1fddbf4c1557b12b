"""Text analysis shared by every memory store (pure: no I/O).

One analyzer for indexing and for queries, on every backend, so SQLite and PostgreSQL rank the
same memory the same way: lower-case words, English stop words dropped, Snowball (Porter 2)
stems. Scope keys turn a (org, user) pair into one opaque token, so that look-alike names can
never share memory.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from functools import cache

import snowballstemmer  # type: ignore[import-untyped]

__all__ = ["normalize", "scope_key", "terms"]

# The classic English stop list (Lucene's and Snowball's, with contractions). Words a question
# is made of ("what", "when", "did") carry no topic and would match every memory.
_STOP = frozenset(
    """
    a about above after again against all am an and any are aren't as at be because been
    before being below between both but by can can't cannot could couldn't did didn't do does
    doesn't doing don't down during each few for from further had hadn't has hasn't have
    haven't having he he'd he'll he's her here here's hers herself him himself his how how's i
    i'd i'll i'm i've if in into is isn't it it's its itself let's me more most mustn't my
    myself no nor not of off on once only or other ought our ours ourselves out over own same
    shan't she she'd she'll she's should shouldn't so some such than that that's the their
    theirs them themselves then there there's these they they'd they'll they're they've this
    those through to too under until up very was wasn't we we'd we'll we're we've were weren't
    what what's when when's where where's which while who who's whom why why's with won't would
    wouldn't you you'd you'll you're you've your yours yourself yourselves s t
    """.split()
)
_WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)*")
_stemmer = snowballstemmer.stemmer("english")


@cache
def _stem(word: str) -> str:
    stem: str = _stemmer.stemWord(word)
    return stem


def terms(text: str) -> list[str]:
    """The index terms of ``text``, in order (repeats kept: they are term frequencies).

    Args:
        text: Any text.

    Returns:
        Lower-cased, stop-word-free, stemmed words.
    """
    out: list[str] = []
    for match in _WORD.finditer(text.casefold()):
        word = match.group().replace("’", "'")
        if word.endswith("'s"):
            word = word[:-2]
        if word in _STOP or not word:
            continue
        out.append(_stem(word))
    return out


def normalize(text: str) -> str:
    """A comparison key: NFKC, case-folded, whitespace collapsed, end punctuation dropped.

    Two values with the same key are the same value (``"Amsterdam."`` and ``" amsterdam"``).
    """
    folded = unicodedata.normalize("NFKC", text).casefold()
    return " ".join(folded.split()).strip(" .!;,")


def scope_key(user: str, org: str | None) -> str:
    """The opaque key of one (org, user) memory scope.

    Exact: ``"sunil"``, ``"Sunil"``, ``"sunil "`` and ``"sunіl"`` (Cyrillic ``і``) are four
    scopes, and no (org, user) pair can collide with another by concatenation.
    """
    digest = hashlib.sha256(json.dumps([org, user], ensure_ascii=True).encode()).hexdigest()
    return "k" + digest[:40]
