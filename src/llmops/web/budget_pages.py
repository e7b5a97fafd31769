"""The Budgets page (``/budgets``): the signed-in project's budgets with scope, period, limit, spent, reserved,
soft/hard and a bar of spent (and reserved) against the limit; create and delete as same-origin form posts
(admin keys only, as on ``/api/budgets``). Handlers parse, call :class:`llmops.gateway.budgets.BudgetService`,
render; errors come back on the page (``?error=``). Wired by ``app.py`` after ``mount_web``."""

from __future__ import annotations

from typing import Any, Protocol, cast, get_args
from urllib.parse import quote

from fastapi import APIRouter, Depends, Request
from fastapi.responses import RedirectResponse, Response

from llmops.core.errors import ConfigError, InvalidInputError, LlmopsError, NotFoundError, PermissionDeniedError
from llmops.gateway.budgets import BudgetService, BudgetSpec, Mode, Period, Scope
from llmops.projects import Principal
from llmops.web.pages import WebUI, same_origin

_SCOPES, _PERIODS, _MODES = get_args(Scope), get_args(Period), get_args(Mode)


class BudgetServices(Protocol):
    @property
    def limits(self) -> Any: ...  # gateway.ratelimits.GatewayLimits | None


def _view(b: dict[str, Any]) -> dict[str, Any]:
    """A listed budget with the bar's widths (percent of the limit, clipped to 100)."""
    limit = b["limit_usd"]

    def share(x: float) -> float:
        return round(min(100.0, 100.0 * x / limit), 1) if limit > 0 else (100.0 if x > 0 else 0.0)

    spent = share(b["spent_usd"])
    return {**b, "spent_pct": spent, "reserved_pct": min(share(b["reserved_usd"]), round(100.0 - spent, 1))}


def spec_from_form(form: Any) -> BudgetSpec:
    """The create form as a :class:`BudgetSpec` (unknown choices and a bad amount are ``InvalidInputError``)."""

    def choice(name: str, allowed: tuple[str, ...], default: str) -> Any:
        value = str(form.get(name) or default)
        if value not in allowed:
            raise InvalidInputError(f"{name} must be one of {', '.join(allowed)}", param=name)
        return value

    name = str(form.get("name") or "").strip()
    if not name or len(name) > 200:
        raise InvalidInputError("name must be 1-200 characters", param="name")
    try:
        limit = float(str(form.get("limit_usd") or ""))
    except ValueError:
        raise InvalidInputError("limit_usd must be a number of USD", param="limit_usd") from None
    if not 0 <= limit <= 1e9:
        raise InvalidInputError("limit_usd must be between 0 and 1e9", param="limit_usd")
    return BudgetSpec(
        name=name,
        scope=choice("scope", _SCOPES, "project"),
        subject=str(form.get("subject") or "").strip() or None,
        period=choice("period", _PERIODS, "month"),
        limit_usd=limit,
        mode=choice("mode", _MODES, "hard"),
        exempt_admin=form.get("exempt_admin") in ("on", "true", "1"),
    )


def budget_router(ui: WebUI) -> APIRouter:
    router = APIRouter(include_in_schema=False)
    services = cast(BudgetServices, ui.services)

    def budgets() -> BudgetService | None:
        return services.limits.budgets if services.limits is not None else None

    @router.get("/budgets")
    async def budgets_page(request: Request, who: Principal = Depends(ui.require_login)) -> Response:  # noqa: B008
        svc = budgets()
        rows = [_view(b) for b in await svc.list_budgets(who.project_id)] if svc is not None else []
        return await ui.page(
            request, who, "budgets.html", nav="budgets", rows=rows, enabled=svc is not None,
            error=request.query_params.get("error"), scopes=_SCOPES, periods=_PERIODS, modes=_MODES,
        )  # fmt: skip

    async def change(request: Request, who: Principal, action: Any) -> Response:
        if not same_origin(request):
            return Response("cross-site form refused", status_code=403)
        svc = budgets()
        try:
            if svc is None:
                raise ConfigError("budgets are disabled on this server (LLMOPS_LIMITS_ENABLED)")
            if not who.is_admin:
                raise PermissionDeniedError("creating and deleting budgets needs an admin key")
            await action(svc)
        except NotFoundError:  # another project's budget: the 404 page, as every page does (no enumeration)
            return await ui.page(request, who, "not_found.html", status_code=404)
        except LlmopsError as exc:
            return RedirectResponse(f"/budgets?error={quote(exc.message)}", status_code=303)
        return RedirectResponse("/budgets", status_code=303)

    @router.post("/budgets")
    async def create(request: Request, who: Principal = Depends(ui.require_login)) -> Response:  # noqa: B008
        form = await request.form()

        async def act(svc: BudgetService) -> None:
            await svc.create_budget(who.project_id, spec_from_form(form))

        return await change(request, who, act)

    @router.post("/budgets/{budget_id}/delete")
    async def delete(budget_id: str, request: Request, who: Principal = Depends(ui.require_login)) -> Response:  # noqa: B008
        async def act(svc: BudgetService) -> None:
            await svc.delete_budget(who.project_id, budget_id)

        return await change(request, who, act)

    return router
