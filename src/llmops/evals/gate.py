"""``eval.yaml``: the CI gate spec, its validation and its in-process execution.

Spec keys: ``dataset`` (a JSONL/CSV path relative to the spec file, or ``{name, version}`` of a dataset in the
gate's database), ``target`` (any target of ``evals.targets``: ``{python: "module:function"}`` with the spec's
folder importable, ``{http: {url, output_path}}``, or ``{model: ALIAS}`` / ``{prompt: {name, version}}`` which
need a running server: ``base_url`` of :func:`run_gate`), ``scorers``
(list of registry specs, each with an optional gate ``threshold`` in [0, 1] on the scorer's mean),
``concurrency`` (int >= 1), ``timeout_s``. A bad spec raises :class:`InvalidInputError` with the offending path.
"""

from __future__ import annotations

import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.etree import ElementTree as ET

import yaml
from sqlalchemy import Engine

from llmops.core.errors import InvalidInputError
from llmops.core.http import HttpClient
from llmops.evals.compare import PairedResult, paired_test
from llmops.evals.datasets import DatasetService, DatasetVersion
from llmops.evals.evaluators.registry import create_evaluator
from llmops.evals.models import Evaluator
from llmops.evals.runner import Runner, RunSummary, Target
from llmops.evals.targets import RemoteTargets, build_target, validate_target

_KEYS = {"dataset", "target", "scorers", "concurrency", "timeout_s"}


@dataclass
class GateSpec:
    base_dir: Path
    dataset: dict[str, Any]
    target: dict[str, Any]
    scorers: list[tuple[Evaluator, float | None]]
    concurrency: int = 4
    timeout_s: float = 60.0


@dataclass
class ScorerVerdict:
    name: str
    mean: float | None
    threshold: float | None
    scored: int
    passed: bool
    comparison: PairedResult | None = None
    failures: list[str] = field(default_factory=list)


@dataclass
class GateReport:
    run_id: str
    summary: RunSummary
    verdicts: list[ScorerVerdict]

    @property
    def passed(self) -> bool:
        return all(v.passed for v in self.verdicts)


def load_spec(path: Path) -> GateSpec:
    try:
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as e:
        raise InvalidInputError(f"{path}: cannot read spec ({e})", param="spec") from None
    if not isinstance(raw, dict):
        raise InvalidInputError(f"{path}: the spec must be a mapping", param="spec")
    unknown = set(raw) - _KEYS
    if unknown:
        raise InvalidInputError(f"{path}: unknown key(s) {sorted(unknown)}; known: {sorted(_KEYS)}", param="spec")
    ds = raw.get("dataset")
    if isinstance(ds, str):
        dataset: dict[str, Any] = {"file": ds}
    elif isinstance(ds, dict) and isinstance(ds.get("name"), str):
        dataset = {"name": ds["name"], "version": ds.get("version")}
    else:
        raise InvalidInputError(f"{path}: 'dataset' must be a file path or {{name, version}}", param="dataset")
    try:
        target = validate_target(raw.get("target"))
    except InvalidInputError as e:
        raise InvalidInputError(f"{path}: {e.message}", param="target") from None
    scorers_raw = raw.get("scorers")
    if not isinstance(scorers_raw, list) or not scorers_raw:
        raise InvalidInputError(f"{path}: 'scorers' must be a non-empty list", param="scorers")
    scorers: list[tuple[Evaluator, float | None]] = []
    for n, s in enumerate(scorers_raw):
        where = f"{path}: scorers[{n}]"
        threshold = None
        if isinstance(s, dict):
            s = dict(s)
            threshold = s.pop("threshold", None)
            if threshold is not None and (
                isinstance(threshold, bool) or not isinstance(threshold, int | float) or not 0 <= threshold <= 1
            ):
                raise InvalidInputError(
                    f"{where}.threshold must be a number in [0, 1], got {threshold!r}", param="scorers"
                )
        try:
            ev = create_evaluator(s)
        except InvalidInputError as e:
            raise InvalidInputError(f"{where}: {e.message}", param="scorers") from None
        scorers.append((ev, None if threshold is None else float(threshold)))
    conc = raw.get("concurrency", 4)
    if isinstance(conc, bool) or not isinstance(conc, int) or conc < 1:
        raise InvalidInputError(f"{path}: 'concurrency' must be an integer >= 1, got {conc!r}", param="concurrency")
    timeout = raw.get("timeout_s", 60.0)
    if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
        raise InvalidInputError(f"{path}: 'timeout_s' must be a positive number", param="timeout_s")
    return GateSpec(path.parent, dataset, target, scorers, conc, float(timeout))


async def resolve_dataset(spec: GateSpec, datasets: DatasetService, project_id: str) -> DatasetVersion:
    if "file" in spec.dataset:
        f = spec.base_dir / spec.dataset["file"]
        try:
            text = f.read_text()
        except OSError as e:
            raise InvalidInputError(f"dataset file {f}: {e}", param="dataset") from None
        fmt = "csv" if f.suffix == ".csv" else "jsonl"
        return await datasets.sync_text(project_id, f"file:{f.name}", text, fmt=fmt)
    return await datasets.get(project_id, spec.dataset["name"], spec.dataset.get("version"))


def load_target(
    spec: GateSpec, *, base_url: str | None = None, api_key: str | None = None, http: HttpClient | None = None
) -> Target:
    """The spec's target; prompt and model targets call the server at ``base_url`` (openai client)."""
    chat = RemoteTargets(base_url, api_key or "") if base_url else None
    if "python" in spec.target and str(spec.base_dir) not in sys.path:
        sys.path.insert(0, str(spec.base_dir))
    try:
        return build_target(spec.target, chat=chat, http=http)
    except (ImportError, AttributeError) as e:
        raise InvalidInputError(f"target {spec.target.get('python')!r}: {e}", param="target") from None


async def run_gate(
    spec: GateSpec,
    engine: Engine,
    *,
    project_id: str = "default",
    run_id: str | None = None,
    baseline: str | None = None,
    on_item: Any = None,
    base_url: str | None = None,
    api_key: str | None = None,
) -> GateReport:
    datasets = DatasetService(engine)
    runner = Runner(engine)
    ds = await resolve_dataset(spec, datasets, project_id)
    http = HttpClient(max_connections=max(8, spec.concurrency))
    try:
        target = load_target(spec, base_url=base_url, api_key=api_key, http=http)
        run_id = run_id or uuid.uuid4().hex[:12]
        summary = await runner.run(
            project_id,
            run_id,
            ds,
            target,
            [s for s, _ in spec.scorers],
            concurrency=spec.concurrency,
            timeout_s=spec.timeout_s,
            on_item=on_item,
        )
    finally:
        await http.aclose()
    results = runner.results(project_id, run_id)
    base_results = runner.results(project_id, baseline) if baseline else None
    if baseline and not base_results:
        raise InvalidInputError(f"baseline run {baseline!r} has no results", param="baseline")
    verdicts = []
    for ev, threshold in spec.scorers:
        vals = {}
        fails = []
        for r in results:
            s = r["scores"].get(ev.name)
            if r.get("error"):
                fails.append(f"{r['item_id']}: {r['error']}")
            elif s and s.get("value") is not None:
                vals[r["item_id"]] = float(s["value"])
                if s.get("passed") is False or (threshold is not None and s["value"] < threshold):
                    fails.append(f"{r['item_id']}: {s.get('reason') or s['value']}")
        mean = sum(vals.values()) / len(vals) if vals else None
        ok = mean is not None and (threshold is None or mean >= threshold)
        cmp = None
        if base_results is not None:
            base_vals = {
                r["item_id"]: float(r["scores"][ev.name]["value"])
                for r in base_results
                if r["scores"].get(ev.name, {}).get("value") is not None
            }
            cmp = paired_test(base_vals, vals)
            ok = ok and not cmp.regression
        verdicts.append(ScorerVerdict(ev.name, mean, threshold, len(vals), ok, cmp, fails))
    return GateReport(run_id, summary, verdicts)


def junit_xml(report: GateReport) -> str:
    """One ``<testcase>`` per scorer (aggregate verdict); failing items are listed in the failure text."""
    suite = ET.Element(
        "testsuite",
        name="llmops-eval",
        tests=str(len(report.verdicts)),
        failures=str(sum(not v.passed for v in report.verdicts)),
    )
    for v in report.verdicts:
        case = ET.SubElement(suite, "testcase", classname=f"eval.{report.run_id}", name=v.name)
        if not v.passed:
            msg = f"mean={v.mean} threshold={v.threshold}"
            if v.comparison is not None and v.comparison.regression:
                c = v.comparison
                msg += f"; significant regression delta={c.delta:.3f}"
                msg += f" CI=[{c.ci_low:.3f},{c.ci_high:.3f}] p={c.p_value:.4f}"
            fail = ET.SubElement(case, "failure", message=msg)
            fail.text = "\n".join(v.failures[:200])
    return ET.tostring(suite, encoding="unicode")


def prompt_run_id(name: str, version: int, dataset: str) -> str:
    """The run id under which an experiment of prompt ``name`` version ``version`` on ``dataset`` is stored;
    the promotion gate looks runs up by it."""
    return f"prompt:{name}@{version}/{dataset}"


class PromotionGate:
    """:class:`llmops.prompts.service.LabelGate`: moving a gated label to a version needs a finished run of that
    version on the label's dataset, without item errors, and with no significant regression on any scorer
    against the run of the version it replaces. ``rules`` maps label -> dataset name."""

    def __init__(self, engine: Engine, rules: dict[str, str]) -> None:
        self._runner = Runner(engine)
        self._rules = rules

    async def check(self, project_id: str, name: str, label: str, from_version: int | None, to_version: int) -> None:
        from llmops.core.errors import ConflictError

        dataset = self._rules.get(label)
        if dataset is None:
            return
        reasons = []
        cand = await _results(self._runner, project_id, prompt_run_id(name, to_version, dataset))
        if not cand:
            reasons.append(f"no experiment of version {to_version} on dataset {dataset!r}")
        else:
            errs = [r["item_id"] for r in cand if r.get("error")]
            if errs:
                reasons.append(f"version {to_version} failed on {len(errs)} item(s): {', '.join(errs[:5])}")
        if cand and from_version is not None and from_version != to_version:
            base = await _results(self._runner, project_id, prompt_run_id(name, from_version, dataset))
            if not base:
                reasons.append(f"no experiment of the current version {from_version} on dataset {dataset!r}")
            scorers = sorted({k for r in cand for k in r.get("scores", {})})
            for s in scorers:
                c = paired_test(_vals(base, s), _vals(cand, s))
                if c.regression:
                    reasons.append(
                        f"{s}: significant regression vs version {from_version} "
                        f"(delta {c.delta:+.3f}, CI [{c.ci_low:+.3f}, {c.ci_high:+.3f}], p={c.p_value:.4f})"
                    )
        if reasons:
            raise ConflictError(
                f"label {label!r} of prompt {name!r} cannot move to version {to_version}: " + "; ".join(reasons),
                param="label",
                code="promotion_gate_failed",
            )


async def _results(runner: Runner, project_id: str, run_id: str) -> list[dict[str, Any]]:
    import asyncio

    return await asyncio.to_thread(runner.results, project_id, run_id)


def _vals(results: list[dict[str, Any]], scorer: str) -> dict[str, float]:
    from llmops.evals.runner import item_scores

    return item_scores(results, scorer)
