"""Semantic cache: serve a near-duplicate question from an earlier answer, unless the guard says the meaning differs.

An entry is found when (1) everything but the last user message matches exactly (``context_hash``: system prompt,
earlier turns, tools, sampling parameters, response format, route, project), (2) the last user message's embedding
(the local MiniLM embedder) is the nearest one by cosine and at or above the route's threshold, and (3) the guard
passes: negation, numbers, dates, named entities (capitalised tokens), direction words (from/to/than …) and a list
of opposite words must agree; optionally the local NLI model must find no contradiction either way.

The default threshold is the one that keeps wrong hits at or under 1% on the labelled set shipped in
``gateway/data/semantic_cache_pairs.jsonl`` (``llmops cache eval`` prints the trade-off per threshold; the test
suite asserts the default). Entries persist in the database; each process keeps an in-memory usearch index per
(project, route, context), rebuilt from the database on first use.
"""

from __future__ import annotations

import asyncio
import hashlib
import re
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any, Protocol

import numpy as np
import onnxruntime  # noqa: F401 - MUST load before usearch: the reverse import order segfaults (usearch 2.26 wheels)
import orjson
from usearch.index import Index

from llmops.gateway.config import CacheConfig

DIMENSIONS = 384
DEFAULT_THRESHOLD = 0.9
EXACT_BELOW = 2048  # small indexes: brute force is exact and as fast
RECENT_VECTORS = 2048  # questions embedded lately: a miss's store (and a repeated question) reuse the vector
Embed = Callable[[list[str]], np.ndarray]
Contradiction = Callable[[Sequence[tuple[str, str]]], list[float]]

# --- the guard -------------------------------------------------------------------------------------------------
_TOKEN = re.compile(r"[A-Za-z][A-Za-z']*|\d+(?:[.,:/]\d+)*")
_SENTENCE = re.compile(r"(?:^|[.!?:;\"(]\s*)([A-Za-z][A-Za-z']*)")
_NEGATIONS = frozenset(
    "not no never none nobody nothing neither nor without cannot nowhere hardly barely isnt dont doesnt didnt "
    "cant wont shouldnt wouldnt couldnt arent wasnt werent hasnt havent hadnt mustnt neednt".split()
)
_NUMBER_WORDS = {
    w: str(i)
    for i, w in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
        "seventeen eighteen nineteen twenty".split()
    )
} | {
    "thirty": "30", "forty": "40", "fifty": "50", "sixty": "60", "seventy": "70", "eighty": "80", "ninety": "90",
    "hundred": "100", "thousand": "1000", "million": "1000000", "billion": "1000000000", "dozen": "12",
    "half": "0.5", "double": "x2", "twice": "x2", "triple": "x3", "once": "x1", "single": "1", "pair": "2",
}  # fmt: skip
_DATE_WORDS = frozenset(
    "january february march april may june july august september october november december jan feb mar apr jun "
    "jul aug sep sept oct nov dec monday tuesday wednesday thursday friday saturday sunday today tomorrow "
    "yesterday tonight weekend weekday morning evening night noon midnight afternoon next last previous past "
    "upcoming ago spring summer autumn fall winter quarterly second minute hour day week month year decade "
    "century".split()
)
_UNIT_FORMS = {"daily": "day", "weekly": "week", "monthly": "month", "yearly": "year", "annually": "year"} | {
    "annual": "year", "hourly": "hour", "seconds": "second", "minutes": "minute", "hours": "hour", "days": "day",
    "weeks": "week", "months": "month", "years": "year", "decades": "decade", "centuries": "century",
}  # fmt: skip
_OPPOSITES = [
    tuple(p.split("/"))
    for p in (
        "increase/decrease increase/reduce raise/lower rise/fall up/down more/less more/fewer most/least "
        "max/min maximum/minimum largest/smallest biggest/smallest highest/lowest higher/lower best/worst "
        "better/worse cheapest/expensive cheap/expensive fast/slow faster/slower fastest/slowest hot/cold "
        "warm/cold before/after early/late earlier/later buy/sell buying/selling import/export add/remove "
        "enable/disable start/stop open/close win/lose above/below inside/outside over/under true/false "
        "north/south east/west upload/download encrypt/decrypt encode/decode compress/decompress push/pull "
        "input/output in/out on/off allow/block allow/deny accept/reject include/exclude safe/dangerous "
        "legal/illegal healthy/unhealthy possible/impossible positive/negative left/right first/last "
        "beginning/end start/end long/short longer/shorter heavy/light plus/minus male/female men/women "
        "boy/girl husband/wife father/mother son/daughter brother/sister king/queen day/night summer/winter "
        "sunrise/sunset win/loss profit/loss gain/loss asleep/awake wet/dry hard/soft dead/alive "
        "young/old younger/older new/old newer/older add/subtract multiply/divide ascending/descending "
        "lowercase/uppercase horizontal/vertical private/public internal/external client/server "
        "sender/receiver send/receive import/export lend/borrow teach/learn give/take arrive/depart "
        "arrival/departure entry/exit inbound/outbound love/hate like/dislike agree/disagree always/sometimes "
        "all/some everyone/someone must/may required/optional mandatory/optional gain/lose gaining/losing "
        "gains/losses warmer/colder warmer/cooler warm/cool heat/cool heating/cooling most/fewest local/remote "
        "buyer/seller landlord/tenant employer/employee manager/employee teacher/student parent/child "
        "debit/credit debtor/creditor asset/liability income/expense deposit/withdraw deposit/withdrawal "
        "inhale/exhale up/down upstream/downstream uphill/downhill ceiling/floor top/bottom front/back "
        "overweight/underweight overestimate/underestimate over/under"
    ).split()
]
_DIRECTION_WORDS = frozenset("from to into than versus vs against toward towards onto".split())
_STOP = frozenset(
    "a an the of in on at for with and or is are was were be been being do does did how what which who whom whose "
    "why when where can could should would will shall may might must i you we they he she it my your our their "
    "me us them this that these those there here to from as by about into than then so if please tell explain "
    "give show her his its him".split()
)
_STARTERS = _STOP | frozenset(
    "is are am was were do does did can could should would will how what which who why when where please tell "
    "explain give show list name describe find help compare write translate convert calculate define summarize "
    "summarise any some".split()
)


@dataclass(frozen=True)
class Features:
    negations: int
    numbers: frozenset[str]
    dates: frozenset[str]
    entities: frozenset[str]
    directed: tuple[str, ...] | None  # content words from just before the first from/to/than/into on
    content: tuple[str, ...]
    words: frozenset[str]


def _norm(token: str) -> str:
    t = token.lower()
    return t[:-2] if t.endswith("'s") else t.replace("'", "")


def features(text: str) -> Features:
    tokens = _TOKEN.findall(text)
    starts = {m.start(1) for m in _SENTENCE.finditer(text)}
    positions = [m.start() for m in _TOKEN.finditer(text)]
    lowered = [_norm(t) for t in tokens]
    negations = sum(1 for t, raw in zip(lowered, tokens, strict=True) if t in _NEGATIONS or raw.lower().endswith("n't"))
    numbers = {t.replace(",", "") for t in lowered if t[:1].isdigit()} | {
        _NUMBER_WORDS[t] for t in lowered if t in _NUMBER_WORDS
    }
    entities = set()
    for raw, low, pos in zip(tokens, lowered, positions, strict=True):
        if raw == "I" or not any(c.isupper() for c in raw):
            continue
        if pos in starts and low in _STARTERS:
            continue
        entities.add(low)
    dates = {_UNIT_FORMS.get(t, t) for t in lowered} & _DATE_WORDS
    content = [(i, _singular(t)) for i, t in enumerate(lowered) if t not in _STOP and t not in _NEGATIONS]
    first = next((i for i, t in enumerate(lowered) if t in _DIRECTION_WORDS), None)
    window: tuple[str, ...] | None = None
    if first is not None:  # from the last content word before the first direction word to the end
        start = max((i for i, _ in content if i < first), default=first)
        window = tuple(w for i, w in content if i >= start)
    return Features(
        negations,
        frozenset(numbers),
        frozenset(dates),
        frozenset(entities),
        window,
        tuple(w for _, w in content),
        frozenset(lowered),
    )


def _singular(token: str) -> str:
    return token[:-1] if len(token) > 3 and token.endswith("s") and not token.endswith("ss") else token


def _order_differs(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    """The words both questions use, in a different order (who does what to whom: "A to B" vs "B to A")."""
    shared = set(a) & set(b)
    seq_a = [w for w in dict.fromkeys(a) if w in shared]
    seq_b = [w for w in dict.fromkeys(b) if w in shared]
    return len(shared) >= 2 and seq_a != seq_b


Signature = tuple[int, frozenset[str], frozenset[str], frozenset[str]]


def signature(text: str) -> Signature:
    """What the guard's first four checks compare: two questions whose signatures differ never pass the guard."""
    f = features(text)
    return f.negations, f.numbers, f.dates, f.entities


def guard(a: str, b: str) -> str | None:
    """Why two near-duplicate questions may mean different things (None: nothing found)."""
    fa, fb = features(a), features(b)
    if fa.negations != fb.negations:
        return "negation"
    if fa.numbers != fb.numbers:
        return "number"
    if fa.dates != fb.dates:
        return "date"
    if fa.entities != fb.entities:
        return "entity"
    if sorted(fa.content) == sorted(fb.content) and _order_differs(fa.content, fb.content):
        return "order"
    if fa.directed is not None and fb.directed is not None and _order_differs(fa.directed, fb.directed):
        return "direction"
    for x, y in _OPPOSITES:
        if (x in fa.words and y in fb.words and y not in fa.words) or (
            y in fa.words and x in fb.words and x not in fa.words
        ):
            return f"opposite:{x}/{y}"
    return None


# --- request parts -----------------------------------------------------------------------------------------------
def split_request(body: dict[str, Any]) -> tuple[str, str] | None:
    """(context hash, question): the last message must be a plain-text user message, else None (not eligible)."""
    messages = body.get("messages") or []
    if not messages or not isinstance(messages[-1], dict) or messages[-1].get("role") != "user":
        return None
    content = messages[-1].get("content")
    if isinstance(content, list):
        if not all(isinstance(p, dict) and p.get("type") == "text" for p in content):
            return None
        content = " ".join(str(p.get("text", "")) for p in content)
    if not isinstance(content, str) or not content.strip():
        return None
    skip = {"stream", "stream_options", "user", "metadata", "store", "messages"}
    context = {
        "request": {k: v for k, v in body.items() if k not in skip},
        "history": messages[:-1],
        "last": {k: v for k, v in messages[-1].items() if k != "content"},
    }
    return hashlib.sha256(orjson.dumps(context, option=orjson.OPT_SORT_KEYS)).hexdigest(), content.strip()


# --- the index ---------------------------------------------------------------------------------------------------
class SemanticStore(Protocol):
    def load(self, project_id: str, alias: str, now_ns: int) -> list[dict[str, Any]]: ...

    def add(self, entry: dict[str, Any]) -> None: ...

    def purge(self, project_id: str) -> int: ...

    def count(self, project_id: str, now_ns: int) -> dict[str, int]: ...


@dataclass
class _Entry:
    question: str
    body: dict[str, Any]
    cost_usd: float | None
    expires_ns: int


@dataclass
class ContextIndex:
    """Entries of one (project, route, context): usearch HNSW over unit vectors, exact search while small.
    ef_search 128: recall@1 0.97 at 3.7 ms p50 on 100k entries (ef 64: 0.87 at 1.8 ms; benchmarks/cache.py)."""

    index: Index = field(
        default_factory=lambda: Index(
            ndim=DIMENSIONS, metric="cos", dtype="f32", connectivity=16, expansion_add=128, expansion_search=128
        )
    )
    entries: dict[int, _Entry] = field(default_factory=dict)
    signatures: set[Signature] = field(default_factory=set)  # of every entry (expired ones too: a superset)

    def add(self, vector: np.ndarray, entry: _Entry) -> None:
        key = len(self.entries) + 1
        while key in self.entries:
            key += 1
        self.entries[key] = entry
        self.signatures.add(signature(entry.question))
        self.index.add(key, np.ascontiguousarray(vector, dtype=np.float32))

    def add_many(self, vectors: np.ndarray, entries: list[_Entry]) -> None:
        start = len(self.entries) + 1
        keys = np.arange(start, start + len(entries), dtype=np.uint64)
        self.entries.update(zip(keys.tolist(), entries, strict=True))
        self.signatures.update(signature(e.question) for e in entries)
        self.index.add(keys, np.ascontiguousarray(vectors, dtype=np.float32))

    def may_pass_guard(self, question: str) -> bool:
        """False when no entry has the question's negations, numbers, dates and names: the guard would refuse
        every candidate, so the lookup can stop before embedding (exact: it changes no answer)."""
        return signature(question) in self.signatures

    def nearest(self, vector: np.ndarray, k: int, now_ns: int) -> list[tuple[_Entry, float]]:
        n = len(self.entries)
        if n == 0:
            return []
        found = self.index.search(np.ascontiguousarray(vector, dtype=np.float32), min(k, n), exact=n < EXACT_BELOW)
        out = []
        for key, dist in zip(found.keys.tolist(), found.distances.tolist(), strict=True):
            entry = self.entries.get(key)
            if entry is not None and entry.expires_ns > now_ns:
                out.append((entry, 1.0 - float(dist)))
        return out


class SemanticCache:
    """Lookup and insert for the gateway (``ResponseCache`` calls it after an exact miss)."""

    def __init__(
        self,
        store: SemanticStore,
        embed: Embed,
        *,
        contradiction: Contradiction | None = None,
        default_threshold: float = DEFAULT_THRESHOLD,
        nli_max: float = 0.5,
    ) -> None:
        self._store = store
        self._embed = embed
        self._contradiction = contradiction
        self._default = default_threshold
        self._nli_max = nli_max
        self._routes: dict[tuple[str, str], dict[str, ContextIndex]] = {}
        self._lock = threading.Lock()
        self._recent: OrderedDict[str, np.ndarray] = OrderedDict()  # question -> unit vector (LRU)
        self._recent_lock = threading.Lock()
        self._eval: list[dict[str, Any]] | None = None
        self._eval_lock = asyncio.Lock()

    def use_contradiction(self, contradiction: Contradiction) -> None:
        """Enable the NLI check for routes with ``semantic.nli`` (the composition root passes the shared model)."""
        self._contradiction = contradiction

    def threshold_for(self, config: CacheConfig) -> float:
        return config.semantic.threshold or self._default

    def _route(self, project_id: str, alias: str, now_ns: int) -> dict[str, ContextIndex]:
        with self._lock:
            route = self._routes.get((project_id, alias))
            if route is None:
                route = self._routes[(project_id, alias)] = {}
                rows = self._store.load(project_id, alias, now_ns)
                for row in rows:
                    entry = _Entry(row["question"], row["body"], row["cost_usd"], row["expires_ns"])
                    route.setdefault(row["context_hash"], ContextIndex()).add(row["embedding"], entry)
            return route

    def vector(self, question: str) -> np.ndarray:
        """The question's embedding, computed once: a lookup that misses embeds it, the store of the answer
        that follows reuses it (and so does the same question asked again in another context)."""
        with self._recent_lock:
            hit = self._recent.get(question)
            if hit is not None:
                self._recent.move_to_end(question)
                return hit
        vector = np.ascontiguousarray(self._embed([question])[0], dtype=np.float32)
        with self._recent_lock:
            self._recent[question] = vector
            while len(self._recent) > RECENT_VECTORS:
                self._recent.popitem(last=False)
        return vector

    def _find_sync(
        self, project_id: str, alias: str, parts: tuple[str, str], config: CacheConfig, now_ns: int
    ) -> tuple[dict[str, Any], float | None, float] | None:
        context, question = parts
        index = self._route(project_id, alias, now_ns).get(context)
        if index is None or not index.entries:  # nothing to compare with: no embedding either
            return None
        if config.semantic.guard and not index.may_pass_guard(question):  # a certain miss: no embedding either
            return None
        vector = self.vector(question)
        threshold = self.threshold_for(config)
        with self._lock:
            candidates = [c for c in index.nearest(vector, 4, now_ns) if c[1] >= threshold]
        for entry, similarity in candidates:
            if config.semantic.guard and guard(question, entry.question) is not None:
                continue
            if config.semantic.nli and self._contradicts(question, entry.question):
                continue
            return entry.body, entry.cost_usd, similarity
        return None

    def _contradicts(self, a: str, b: str) -> bool:
        if self._contradiction is None:
            return False
        return max(self._contradiction([(a, b), (b, a)])) > self._nli_max

    async def find(
        self, project_id: str, alias: str, body: dict[str, Any], config: CacheConfig, now_ns: int
    ) -> tuple[dict[str, Any], float | None, float] | None:
        parts = split_request(body)
        if parts is None:
            return None
        return await asyncio.to_thread(self._find_sync, project_id, alias, parts, config, now_ns)

    def _put_sync(
        self,
        project_id: str,
        alias: str,
        parts: tuple[str, str],
        reply: dict[str, Any],
        cost: float | None,
        now: int,
        exp: int,
    ) -> None:
        context, question = parts
        vector = self.vector(question)  # usually embedded by the lookup that missed just before
        route = self._route(project_id, alias, now)  # loaded before the insert, so the new row is added once
        self._store.add(
            {
                "entry_id": uuid.uuid4().hex,
                "project_id": project_id,
                "alias": alias,
                "context_hash": context,
                "question": question,
                "embedding": vector,
                "body": reply,
                "cost_usd": cost,
                "created_ns": now,
                "expires_ns": exp,
            }
        )
        with self._lock:
            route.setdefault(context, ContextIndex()).add(vector, _Entry(question, reply, cost, exp))

    async def put(
        self,
        project_id: str,
        alias: str,
        body: dict[str, Any],
        reply: dict[str, Any],
        cost_usd: float | None,
        *,
        ttl_s: int,
        now_ns: int,
    ) -> None:
        parts = split_request(body)
        if parts is not None:
            exp = now_ns + ttl_s * 1_000_000_000
            await asyncio.to_thread(self._put_sync, project_id, alias, parts, reply, cost_usd, now_ns, exp)

    async def purge(self, project_id: str) -> int:
        with self._lock:
            for route in [r for r in self._routes if r[0] == project_id]:
                del self._routes[route]
        return await asyncio.to_thread(self._store.purge, project_id)

    async def count(self, project_id: str, now_ns: int) -> dict[str, int]:
        """Live entries per route, from the database (every process's entries)."""
        return await asyncio.to_thread(self._store.count, project_id, now_ns)

    async def measured_wrong_hit_rate(self, threshold: float | None, *, guard: bool) -> float | None:
        """Wrong hits / hits on the shipped labelled set at ``threshold`` (computed once per process)."""
        if threshold is None:
            return None
        async with self._eval_lock:
            if self._eval is None:
                self._eval = await asyncio.to_thread(score_pairs, load_pairs(), self._embed)
        row = evaluate_scored(self._eval, [threshold], use_guard=guard)[0]
        return float(row["wrong_hit_rate"])


# --- evaluation on the labelled set ------------------------------------------------------------------------------
def load_pairs() -> list[dict[str, Any]]:
    text = resources.files("llmops.gateway").joinpath("data/semantic_cache_pairs.jsonl").read_text()
    return [orjson.loads(line) for line in text.splitlines() if line.strip()]


def score_pairs(pairs: list[dict[str, Any]], embed: Embed) -> list[dict[str, Any]]:
    """Each pair with its cosine similarity and the guard's verdict."""
    va, vb = embed([p["a"] for p in pairs]), embed([p["b"] for p in pairs])
    sims = (np.asarray(va) * np.asarray(vb)).sum(axis=1)
    return [
        {**p, "similarity": float(s), "guard": guard(p["a"], p["b"])} for p, s in zip(pairs, sims.tolist(), strict=True)
    ]


def evaluate_scored(
    scored: list[dict[str, Any]], thresholds: Sequence[float], *, use_guard: bool
) -> list[dict[str, Any]]:
    """Per threshold: hit rate (paraphrases served), wrong hits (meaning changes served), wrong-hit rate
    (wrong hits / all hits) and false-hit rate (wrong hits / meaning-change pairs)."""
    same = [p for p in scored if p["same"]]
    different = [p for p in scored if not p["same"]]
    rows = []
    for t in thresholds:

        def hit(p: dict[str, Any], t: float = t) -> bool:
            return bool(p["similarity"] >= t and not (use_guard and p["guard"]))

        good, wrong = sum(map(hit, same)), sum(map(hit, different))
        rows.append(
            {
                "threshold": t,
                "guard": use_guard,
                "hit_rate": round(good / len(same), 4) if same else 0.0,
                "wrong_hits": wrong,
                "wrong_hit_rate": round(wrong / (good + wrong), 4) if good + wrong else 0.0,
                "false_hit_rate": round(wrong / len(different), 4) if different else 0.0,
                "pairs": len(scored),
            }
        )
    return rows
