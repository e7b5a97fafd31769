"""Pages for evaluation: datasets and experiments (``/evals``), a dataset version (``/evals/datasets/{name}``),
a run (``/evals/runs/{run_id}``) and a comparison (``/evals/compare?runs=a,b``) with inline SVG charts: the
score distribution of each run per scorer and the paired delta per scorer with its confidence interval.

Same rules as ``pages.py``: read-only, other projects' datasets and runs render the 404 page, content stays
escaped (the charts are built from numbers and escaped labels only).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, cast
from urllib.parse import parse_qsl, quote

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response
from markupsafe import Markup, escape

from llmops.core.errors import ConflictError, InvalidInputError, NotFoundError
from llmops.evals.datasets import DatasetService
from llmops.evals.experiments import ExperimentService, NewExperiment
from llmops.evals.http import FromTracesBody, trace_items
from llmops.projects import Principal
from llmops.web.pages import WebUI

BINS = 10


class EvalServices(Protocol):
    @property
    def datasets(self) -> DatasetService: ...

    @property
    def experiments(self) -> ExperimentService: ...


def histogram(values: Sequence[float], bins: int = BINS) -> list[int]:
    """Counts of ``values`` (clipped to [0, 1]) in ``bins`` equal bins."""
    counts = [0] * bins
    for v in values:
        counts[min(bins - 1, max(0, int(float(v) * bins)))] += 1
    return counts


def distribution_svg(series: Mapping[str, Sequence[float]], *, width: int = 360, height: int = 120) -> Markup:
    """Side-by-side histograms (one colour per run) of a scorer's per-item values in [0, 1]."""
    hists = {name: histogram(vals) for name, vals in series.items()}
    top = max((c for h in hists.values() for c in h), default=0) or 1
    n = max(1, len(hists))
    slot = (width - 20) / BINS
    bar_w = max(1.0, slot / n - 1)
    parts = []
    for k, (name, h) in enumerate(hists.items()):
        for b, c in enumerate(h):
            bh = round((height - 24) * c / top, 1)
            x = round(10 + b * slot + k * (bar_w + 1), 1)
            parts.append(
                f'<rect class="run-{k}" x="{x}" y="{height - 16 - bh}" width="{bar_w:.1f}" height="{bh}">'
                f"<title>{escape(name)}: {c} item(s) in [{b / BINS:.1f}, {(b + 1) / BINS:.1f})</title></rect>"
            )
    parts.append(f'<text class="chart-label" x="10" y="{height - 2}">0</text>')
    parts.append(f'<text class="chart-label" x="{width - 20}" y="{height - 2}">1</text>')
    return Markup(  # noqa: S704 - numbers and escaped labels only
        f'<svg class="eval-chart dist" role="img" aria-label="Score distribution per run" width="{width}" '
        f'height="{height}" viewBox="0 0 {width} {height}">{"".join(parts)}</svg>'
    )


def delta_svg(comparisons: Sequence[Mapping[str, Any]], *, width: int = 420, row_h: int = 22) -> Markup:
    """One row per (scorer, candidate): the mean delta as a dot, its CI as a bar, zero as a line; regressions red."""
    if not comparisons:
        return Markup("")
    span = max([abs(float(c[k])) for c in comparisons for k in ("ci_low", "ci_high", "delta")] + [0.05])
    left, right = 170, width - 10
    mid = (left + right) / 2

    def x(v: float) -> float:
        return round(mid + (right - mid) * float(v) / span, 1)

    parts = []
    for i, c in enumerate(comparisons):
        y = i * row_h + row_h / 2
        cls = "regression" if c["regression"] else "improvement" if c["significant"] else "flat"
        label = f"{c['scorer']} ({c['candidate']})"[:28]
        parts.append(
            f'<g class="delta {cls}"><text class="chart-label" x="0" y="{y + 4}">{escape(label)}</text>'
            f'<line x1="{x(c["ci_low"])}" x2="{x(c["ci_high"])}" y1="{y}" y2="{y}" class="ci"></line>'
            f'<circle cx="{x(c["delta"])}" cy="{y}" r="4"></circle>'
            f"<title>delta {float(c['delta']):+.3f}, CI [{float(c['ci_low']):+.3f}, {float(c['ci_high']):+.3f}], "
            f"p={float(c['p_value']):.4f}</title></g>"
        )
    height = len(comparisons) * row_h + 16
    parts.append(f'<line class="zero" x1="{mid}" x2="{mid}" y1="0" y2="{height - 14}"></line>')
    parts.append(f'<text class="chart-label" x="{mid - 4}" y="{height - 2}">0</text>')
    return Markup(  # noqa: S704 - numbers and escaped labels only
        f'<svg class="eval-chart deltas" role="img" aria-label="Score delta per scorer with 95% CI" '
        f'width="{width}" height="{height}" viewBox="0 0 {width} {height}">{"".join(parts)}</svg>'
    )


def _distributions(cmp: Mapping[str, Any]) -> dict[str, Markup]:
    runs = [r["run_id"] for r in cmp["runs"]]
    scorers = sorted({s for row in cmp["items"] for cell in row["runs"].values() if cell for s in cell["scores"]})
    out = {}
    for s in scorers:
        series: dict[str, list[float]] = {rid: [] for rid in runs}
        for row in cmp["items"]:
            for rid, cell in row["runs"].items():
                v = (cell or {}).get("scores", {}).get(s)
                if isinstance(v, int | float):
                    series[rid].append(float(v))
        out[s] = distribution_svg(series)
    return out


def eval_routes(router: APIRouter, ui: WebUI, same_origin: Callable[[Request], bool]) -> None:
    services = cast(EvalServices, ui.services)
    _form_routes(router, ui, same_origin)

    @router.get("/evals")
    async def index(request: Request, who: Principal = Depends(ui.require_login)) -> Response:
        datasets = await services.datasets.list_datasets(who.project_id)
        runs = await services.experiments.list_runs(who.project_id)
        error = request.query_params.get("error")
        return await ui.page(request, who, "eval_index.html", nav="evals", datasets=datasets, runs=runs, error=error)

    @router.get("/evals/datasets/{dataset}")
    async def dataset(dataset: str, request: Request, who: Principal = Depends(ui.require_login)) -> Response:
        raw = request.query_params.get("version")
        try:
            version = int(raw) if raw else None
            ds = await services.datasets.get(who.project_id, dataset, version)
            versions = await services.datasets.versions(who.project_id, dataset)
        except (NotFoundError, ValueError):
            return await ui.page(request, who, "not_found.html", status_code=404)
        error = request.query_params.get("error")
        return await ui.page(
            request, who, "eval_dataset.html", nav="evals", ds=ds, items=ds.items[:500], versions=versions, error=error
        )

    @router.get("/evals/compare")
    async def compare(request: Request, who: Principal = Depends(ui.require_login)) -> Response:
        runs = [r for r in request.query_params.get("runs", "").split(",") if r]
        try:
            cmp = await services.experiments.compare(who.project_id, runs)
        except NotFoundError:
            return await ui.page(request, who, "not_found.html", status_code=404)
        except InvalidInputError as exc:
            listed = await services.experiments.list_runs(who.project_id)
            return await ui.page(request, who, "eval_index.html", nav="evals", datasets=[], runs=listed,
                                 error=exc.message)  # fmt: skip
        context = {"cmp": cmp, "deltas": delta_svg(cmp["comparisons"]), "dists": _distributions(cmp)}
        return await ui.page(request, who, "eval_compare.html", nav="evals", **context)

    @router.get("/evals/runs/{run_id:path}")
    async def run(run_id: str, request: Request, who: Principal = Depends(ui.require_login)) -> Response:
        try:
            detail = await services.experiments.get_run_detail(who.project_id, run_id)
        except NotFoundError:
            return await ui.page(request, who, "not_found.html", status_code=404)
        return await ui.page(request, who, "eval_run.html", nav="evals", run=detail)


def _form_routes(router: APIRouter, ui: WebUI, same_origin: Callable[[Request], bool]) -> None:
    """Form posts (same-origin only): start an experiment, add items from traces. Errors come back as ``?error=``."""
    services = cast(EvalServices, ui.services)

    @router.post("/evals/experiments")
    async def start(request: Request, who: Principal = Depends(ui.require_login)) -> Response:
        """Fields: dataset, version (optional), target and scorers as JSON, concurrency, name."""
        if not same_origin(request):
            return Response("cross-site form refused", status_code=403)
        form = await request.form()
        try:
            version = str(form.get("version") or "").strip()
            new = NewExperiment(
                dataset=str(form.get("dataset") or ""),
                target=_json_field(form.get("target"), "target"),
                scorers=_json_field(form.get("scorers") or '["exact"]', "scorers"),
                name=str(form.get("name") or ""),
                version=int(version) if version else None,
                concurrency=int(str(form.get("concurrency") or 4)),
            )
            run = await services.experiments.create(who, new)
        except (InvalidInputError, NotFoundError, ConflictError, ValueError) as exc:
            return RedirectResponse(f"/evals?error={quote(getattr(exc, 'message', str(exc)))}#new-run", 303)
        return RedirectResponse(f"/evals/runs/{quote(run['run_id'], safe='')}", status_code=303)

    @router.post("/evals/datasets/{dataset}/from-traces")
    async def from_traces(dataset: str, request: Request, who: Principal = Depends(ui.require_login)) -> Response:
        """Field ``filter``: a /api/traces query string (``tag=prod&model=fast``); ``limit``."""
        if not same_origin(request):
            return Response("cross-site form refused", status_code=403)
        form = await request.form()
        back = f"/evals/datasets/{quote(dataset, safe='')}"
        try:
            await services.datasets.get(who.project_id, dataset)
        except NotFoundError:
            return await ui.page(request, who, "not_found.html", status_code=404)
        try:
            pairs = parse_qsl(str(form.get("filter") or "").lstrip("?"))
            limit = int(str(form.get("limit") or 100))
            grouped: dict[str, str | list[str]] = {}
            for k, v in pairs:
                grouped[k] = [*([grouped[k]] if isinstance(grouped.get(k), str) else grouped.get(k, [])), v]
            body = FromTracesBody(filter=grouped, limit=limit)
            items = await trace_items(cast(Any, ui.services).traces, who.project_id, body)
            await services.datasets.add_items(who.project_id, dataset, items)
        except (InvalidInputError, NotFoundError, ConflictError, ValueError) as exc:
            return RedirectResponse(f"{back}?error={quote(getattr(exc, 'message', str(exc)))}", 303)
        return RedirectResponse(back, status_code=303)


def _json_field(raw: Any, name: str) -> Any:
    try:
        return orjson.loads(str(raw or ""))
    except orjson.JSONDecodeError:
        raise InvalidInputError(f"{name} must be JSON", param=name) from None
