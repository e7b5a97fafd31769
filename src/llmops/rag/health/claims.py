"""Atomic claims and their features: numbers with units, dates, entities, scope qualifiers, polarity and an
"attribute" key (what the claim is about), all from plain text with regular expressions — no model.

A claim is a sentence, or a clause of it (split on ";" and on " and " when the right side is a clause of
its own, the subject of the left side carried over when the right side starts with a verb). Features are
deliberately coarse and general: the comparator in ``contradictions.py`` uses them as evidence, never alone.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z0-9\"(])|\n+")
_BULLET = re.compile(r"^\s*(?:[-*+]|\d+[.)]|#+)\s+")
_WORD = re.compile(r"[A-Za-z][A-Za-z'\-]*|\d[\d,]*(?:\.\d+)?")
_MONTHS = "january february march april may june july august september october november december".split()
_MONTH_RE = "|".join(m.capitalize() for m in _MONTHS)
_DATE = re.compile(
    rf"\b(\d{{4}})-(\d{{2}})-(\d{{2}})\b|\b({_MONTH_RE})\s+(\d{{1,2}})(?:st|nd|rd|th)?(?:,?\s+(\d{{4}}))?\b"
)
_NUMBER = re.compile(
    r"(?P<cur>[$€£])?(?<![\w.\-])(?P<num>\d{1,3}(?:,\d{3})+|\d+(?:\.\d+)?)(?![\w\-])(?P<pct>\s?%)?"
    r"(?:\s*(?P<unit>[A-Za-z]+)(?:\s+(?P<unit2>[A-Za-z]+))?)?"
)
_WORD_NUMBERS = {
    "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
    "ten": 10, "eleven": 11, "twelve": 12, "once": 1, "twice": 2,
}  # fmt: skip
_WORD_NUMBER_RE = re.compile(r"\b(" + "|".join(_WORD_NUMBERS) + r")\s+([a-z]+)\b", re.IGNORECASE)

_DURATION_DAYS = {
    "second": 1 / 86400, "minute": 1 / 1440, "hour": 1 / 24, "day": 1.0, "week": 7.0, "month": 30.0,
    "year": 365.0, "sec": 1 / 86400, "min": 1 / 1440, "hr": 1 / 24, "yr": 365.0,
}  # fmt: skip
_SIZE_BYTES = {"kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12, "pb": 1e15, "byte": 1.0}
_CURRENCY = {
    "$": "usd",
    "€": "eur",
    "£": "gbp",
    "usd": "usd",
    "eur": "eur",
    "gbp": "gbp",
    "dollar": "usd",
    "euro": "eur",
}

STOPWORDS = frozenset(
    """a an the of to in on at for by with from as and or but if then than that this these those it its
    is are was were be been being can could may might must will would should shall do does did has have had
    per each every any all some our your their his her we you they he she i up upto also only just more less
    least most into over under about after before within between during which who whom what when where how
    there here such not no never cannot can't don't doesn't isn't aren't won't without none nor""".split()
)
NEGATIONS = frozenset("not no never cannot can't don't doesn't isn't aren't won't wasn't weren't nor none".split())
# word -> (concept, sign): "optional" and "mandatory" talk about the same concept with opposite signs
ANTONYMS: dict[str, tuple[str, int]] = {
    "optional": ("required", -1), "mandatory": ("required", 1), "required": ("required", 1),
    "compulsory": ("required", 1), "allowed": ("allowed", 1), "permitted": ("allowed", 1),
    "prohibited": ("allowed", -1), "forbidden": ("allowed", -1), "banned": ("allowed", -1),
    "enabled": ("enabled", 1), "disabled": ("enabled", -1), "included": ("included", 1),
    "excluded": ("included", -1), "supported": ("supported", 1), "unsupported": ("supported", -1),
    "available": ("available", 1), "unavailable": ("available", -1), "reimbursable": ("reimbursable", 1),
    "nonrefundable": ("refundable", -1), "refundable": ("refundable", 1), "always": ("always", 1),
}  # fmt: skip
_VERBS = frozenset(
    """is are was were be can cannot may must will should has have does do receive receives allow allows
    cost costs include includes require requires accrue accrues respond responds take takes get gets
    expire expires keep keeps run runs offer offers provide provides support supports need needs""".split()
)
_SCOPE_NOUNS = (
    "plan|plans|customer|customers|user|users|account|accounts|employee|employees|member|members|contractor|"
    "contractors|tier|tiers|region|regions|order|orders|team|teams|workspace|workspaces|client|clients|"
    "subscription|subscriptions|country|countries|office|offices|staff|partner|partners"
)
_SCOPE = re.compile(
    rf"\b(?:[Ff]or|[Oo]n|[Ii]n|[Tt]o|[Ww]ith)\s+(?:the\s+|all\s+|an?\s+)?((?:[A-Za-z][\w\-]*\s+){{1,2}}?)(?:{_SCOPE_NOUNS})\b"
    r"|\bin\s+([A-Z][a-z]+(?:\s+[A-Z][a-z]+)*)",
)
_LOCATION_STOP = frozenset(m.capitalize() for m in _MONTHS)


def lemma(word: str) -> str:
    """A crude lemmatiser: lower case, plural and common verb endings removed."""
    w = word.lower().strip("'")
    if len(w) > 4 and w.endswith("ies"):
        return w[:-3] + "y"
    if len(w) > 4 and w.endswith("sses"):
        return w[:-2]
    if len(w) > 3 and w.endswith("s") and not w.endswith(("ss", "us", "is")):
        return w[:-1]
    return w


@dataclass(frozen=True)
class Quantity:
    dimension: str  # "duration", "size", "money:usd", "percent", "count:<unit>", "id:<name>", "date", ...
    value: float
    text: str


@dataclass(frozen=True)
class Claim:
    claim_id: int
    document_id: str
    chunk_id: str
    text: str
    quantities: tuple[Quantity, ...]
    entities: frozenset[str]
    scope: frozenset[str]
    attribute: frozenset[str]  # content lemmas (no numbers, units, negations, antonyms)
    negated: bool
    concepts: tuple[tuple[str, int], ...] = field(default=())

    @property
    def dimensions(self) -> dict[str, frozenset[float]]:
        out: dict[str, set[float]] = {}
        for q in self.quantities:
            out.setdefault(q.dimension, set()).add(round(q.value, 6))
        return {k: frozenset(v) for k, v in out.items()}


_FRONT_MATTER = re.compile(r"\A\s*---[ \t]*\n.*?\n---[ \t]*(?:\n|\Z)", re.DOTALL)
# "key: value" metadata lines (front matter pushed as text): a lower-case identifier key, not prose like "Note: …"
_METADATA = re.compile(
    r"^(?:[a-z]+_[a-z_]+|title|owner|author|date|tags|category|status|version|updated|created|source|slug|lang)"
    r"\s*:\s*\S",
)


def split_sentences(text: str) -> list[str]:
    out: list[str] = []
    text = _FRONT_MATTER.sub("", text)  # a YAML front matter block is metadata, not claims
    for line in _SENTENCE.split(text):
        if line.lstrip().startswith("#"):  # a Markdown heading is a title, not a claim
            continue
        if _METADATA.match(line.strip()) or line.strip() == "---":
            continue
        line = _BULLET.sub("", line).strip()
        if not line:
            continue
        out.append(line)
    return out


def split_clauses(sentence: str) -> list[str]:
    """Split on ";" and on " and " / ", but " when the right side is a clause (it has a verb)."""
    parts: list[str] = []
    for piece in sentence.split(";"):
        pieces = re.split(r",?\s+(?:and|but)\s+", piece)
        current = pieces[0]
        for right in pieces[1:]:
            words = [w.lower() for w in _WORD.findall(right)]
            if any(w in _VERBS for w in words[:6]) and len(words) >= 3:
                parts.append(current)
                if words[0] in _VERBS:  # subject carry-over: "X is a and is b" -> "X is b"
                    left_words = current.split()
                    subject = []
                    for w in left_words:
                        if w.lower() in _VERBS:
                            break
                        subject.append(w)
                    right = " ".join(subject) + " " + right
                current = right
            else:
                current = current + " and " + right
        parts.append(current)
    return [p.strip(" ,.") for p in parts if len(_WORD.findall(p)) >= 3]


def _unit_quantity(value: float, unit: str, unit2: str, prev: str) -> Quantity | None:
    u = lemma(unit) if unit else ""
    if u == "business" and unit2:
        u2 = lemma(unit2)
        if u2 in _DURATION_DAYS:
            return Quantity("business_duration", value * _DURATION_DAYS[u2], "")
    if u in _DURATION_DAYS:
        return Quantity("duration", value * _DURATION_DAYS[u], "")
    if u in _SIZE_BYTES:
        return Quantity("size", value * _SIZE_BYTES[u], "")
    if u in _CURRENCY:
        return Quantity(f"money:{_CURRENCY[u]}", value, "")
    if u in ("am", "pm"):
        return Quantity("clock", value % 12 + (12 if u == "pm" else 0), "")
    if u and u not in STOPWORDS:
        return Quantity(f"count:{u}", value, "")
    if prev and any(ch.isupper() for ch in prev):  # "iOS 17", "Android 10": a version of a named thing
        return Quantity(f"id:{prev.lower()}", value, "")
    return Quantity("count", value, "")


def quantities(text: str) -> tuple[Quantity, ...]:
    out: list[Quantity] = []
    masked = text
    for m in _DATE.finditer(text):
        if m.group(1):
            value = int(m.group(1)) * 10000 + int(m.group(2)) * 100 + int(m.group(3))
        else:
            value = int(m.group(6) or 0) * 10000 + (_MONTHS.index(m.group(4).lower()) + 1) * 100 + int(m.group(5))
        out.append(Quantity("date", float(value), m.group(0)))
        masked = masked[: m.start()] + " " * (m.end() - m.start()) + masked[m.end() :]
    for m in _NUMBER.finditer(masked):
        number = float(m.group("num").replace(",", ""))
        before = masked[: m.start()].split()
        prev = before[-1] if before else ""
        if m.group("cur"):
            q = Quantity(f"money:{_CURRENCY[m.group('cur')]}", number, "")
        elif m.group("pct"):
            q = Quantity("percent", number, "")
        else:
            found = _unit_quantity(number, m.group("unit") or "", m.group("unit2") or "", prev)
            if found is None:
                continue
            q = found
        unit = m.group("unit") or ""
        if q.dimension.startswith(("id:", "count")) and q.dimension != "count" and not unit:
            unit = ""
        shown = (m.group("cur") or "") + m.group("num") + (m.group("pct") or "")
        if unit and not q.dimension.startswith(("id:", "money", "percent")) and q.dimension != "count":
            shown += " " + unit + (" " + (m.group("unit2") or "") if q.dimension == "business_duration" else "")
        out.append(Quantity(q.dimension, q.value, shown.strip()))
    for m in _WORD_NUMBER_RE.finditer(masked):
        found = _unit_quantity(float(_WORD_NUMBERS[m.group(1).lower()]), m.group(2), "", "")
        if found is not None and not found.dimension.startswith("count"):
            out.append(Quantity(found.dimension, found.value, m.group(0)))
    return tuple(out)


def entities(text: str) -> frozenset[str]:
    """Capitalised words not opening the claim, and acronyms (months excluded)."""
    words = _WORD.findall(text)
    out: set[str] = set()
    for i, w in enumerate(words):
        if w in _LOCATION_STOP or w.lower() in STOPWORDS and not w.isupper():
            continue
        if w.lower() in _SIZE_BYTES or w.lower() in _CURRENCY or w.lower() in ("am", "pm"):
            continue
        if (w.isupper() and len(w) >= 2 and not w[0].isdigit()) or (i > 0 and w[:1].isupper()):
            out.add(w.lower())
    return frozenset(out)


def scope(text: str) -> frozenset[str]:
    out: set[str] = set()
    for m in _SCOPE.finditer(text):
        qualifier = m.group(1) or m.group(2) or ""
        for w in _WORD.findall(qualifier):
            lw = lemma(w)
            if lw not in STOPWORDS and not w[0].isdigit() and w not in _LOCATION_STOP:
                out.add(lw)
    return frozenset(out)


def features(claim_id: int, document_id: str, chunk_id: str, text: str) -> Claim:
    words = _WORD.findall(text)
    lowered = [w.lower() for w in words]
    negations = sum(1 for w in lowered if w in NEGATIONS)
    concepts = tuple(ANTONYMS[w] for w in lowered if w in ANTONYMS)
    qs = quantities(text)
    unit_words = {lemma(q.text.split()[-1]) for q in qs if q.text and q.text.split()[-1][:1].isalpha()}
    attribute = frozenset(
        lemma(w)
        for w in words
        if not w[0].isdigit()
        and w.lower() not in STOPWORDS
        and w.lower() not in ANTONYMS
        and lemma(w) not in unit_words
        and lemma(w) not in _DURATION_DAYS
        and len(w) > 1
    )
    return Claim(
        claim_id=claim_id,
        document_id=document_id,
        chunk_id=chunk_id,
        text=text,
        quantities=qs,
        entities=entities(text),
        scope=scope(text),
        attribute=attribute,
        negated=negations % 2 == 1,
        concepts=concepts,
    )


def extract_claims(document_id: str, chunk_id: str, text: str, *, start_id: int = 0) -> list[Claim]:
    out: list[Claim] = []
    for sentence in split_sentences(text):
        for clause in split_clauses(sentence):
            out.append(features(start_id + len(out), document_id, chunk_id, clause))
    return out
