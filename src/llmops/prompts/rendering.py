"""Sandboxed Jinja2 templates: compile once (checked), render many times.

Two layers stop server-side template injection (SSTI):

1. **At compile time** (push, create) a template is refused when it reads an attribute or item whose name
   starts with ``_`` or is ``format``/``format_map``/``mro``, uses the ``attr`` filter, ``self``,
   ``extends``/``include``/``import``, or any variable it does not declare (so ``request``, ``config``,
   ``lipsum``, ``cycler``... are errors: none of them exists here).
2. **At render time** everything runs in an :class:`~jinja2.sandbox.ImmutableSandboxedEnvironment` with
   :class:`~jinja2.StrictUndefined`: unsafe attribute access (including ``str.format`` indirection) raises
   ``SecurityError``; functions never render (no object reprs); ``*``/``**`` that would build huge values,
   and output beyond ``max_chars``, are refused.

Every failure is an :class:`InvalidInputError` naming the template field (``param``); nothing is executed
and nothing of the server's state is rendered.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from jinja2 import StrictUndefined, Template, TemplateError, Undefined, UndefinedError, meta, nodes
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError

from llmops.core.errors import InvalidInputError, LlmopsError, PayloadTooLargeError
from llmops.prompts.models import PromptContent, Variable
from llmops.prompts.spec import check_value, coerce_value, parse_content

DEFAULT_MAX_RENDER_CHARS = 1_000_000
MAX_BUILT_SIZE = 100_000  # longest string/list a template may build with `*`
DENIED_ATTRIBUTES = frozenset({"format", "format_map", "mro", "gi_frame", "gi_code", "cr_frame", "f_globals"})


_RENDERABLE = (str, int, float, bool, type(None), list, tuple, dict)


def _finalize(value: Any) -> Any:
    """Only plain values render: never a function, module or object repr."""
    if isinstance(value, Undefined):
        value._fail_with_undefined_error()
    if not isinstance(value, _RENDERABLE):
        raise SecurityError(f"a value of type {type(value).__name__!r} cannot be rendered")
    return value


class _Sandbox(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset({"*", "**"})

    def is_safe_attribute(self, obj: Any, attr: str, value: Any) -> bool:
        return attr not in DENIED_ATTRIBUTES and super().is_safe_attribute(obj, attr, value)

    def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
        if operator == "**":
            if isinstance(right, int | float) and abs(right) > 64:
                raise SecurityError("exponent too large")
            return left**right
        sized = [x for x in (left, right) if isinstance(x, str | list | tuple)]
        count = right if sized and sized[0] is left else left
        if sized and isinstance(count, int) and len(sized[0]) * count > MAX_BUILT_SIZE:
            raise SecurityError(f"a value longer than {MAX_BUILT_SIZE} would be built")
        return left * right


def _environment() -> _Sandbox:
    env = _Sandbox(
        undefined=StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
        finalize=_finalize,
        cache_size=0,
        auto_reload=False,
    )
    env.globals = {"range": env.globals["range"], "dict": env.globals["dict"]}
    return env


ENV = _environment()
_GLOBALS = dict(ENV.globals)


def _refuse(why: str, param: str) -> InvalidInputError:
    return InvalidInputError(f"template refused: {why}", param=param, code="unsafe_template")


def _static_check(ast: nodes.Template, param: str) -> None:
    """Refuse constructs that only serve to reach Python internals, before anything runs."""
    for node in ast.find_all((nodes.Getattr, nodes.Getitem, nodes.Filter, nodes.Name)):
        if isinstance(node, nodes.Getattr) and (node.attr.startswith("_") or node.attr in DENIED_ATTRIBUTES):
            raise _refuse(f"attribute {node.attr!r} is not allowed (line {node.lineno})", param)
        if isinstance(node, nodes.Getitem) and isinstance(node.arg, nodes.Const):
            key = node.arg.value
            if isinstance(key, str) and (key.startswith("_") or key in DENIED_ATTRIBUTES):
                raise _refuse(f"item {key!r} is not allowed (line {node.lineno})", param)
        if isinstance(node, nodes.Filter) and node.name == "attr":
            raise _refuse(f"the attr filter is not allowed (line {node.lineno})", param)
        if isinstance(node, nodes.Name) and node.name == "self":
            raise _refuse(f"'self' is not allowed (line {node.lineno})", param)
    for imp in ast.find_all((nodes.Extends, nodes.Include, nodes.Import, nodes.FromImport)):
        raise _refuse(f"extends/include/import are not supported (line {imp.lineno})", param)


def compile_template(source: str, declared: set[str] | frozenset[str], *, param: str = "template") -> Template:
    """Parse, check and compile one template; every name it reads must be declared."""
    try:
        ast = ENV.parse(source)
        _static_check(ast, param)
        used = meta.find_undeclared_variables(ast)  # also fails on an unknown filter or test
        unknown = sorted(used - set(declared) - set(ENV.globals))
        if unknown:
            raise InvalidInputError(
                f"the template uses undeclared variable {unknown[0]!r}; declare it under `variables`",
                param=f"variables.{unknown[0]}",
                code="undeclared_variable",
            )
        return ENV.from_string(ast)
    except TemplateError as exc:
        line = getattr(exc, "lineno", None)
        where = f" on line {line}" if line else ""
        raise InvalidInputError(
            f"template syntax error{where}: {exc.message}", param=param, code="template_syntax_error"
        ) from exc


def render_template(template: Template, values: dict[str, Any], *, param: str, max_chars: int) -> str:
    parts: list[str] = []
    size = 0
    try:
        # a flat context (shared=True) skips Jinja's per-render merge of the globals ChainMap
        for chunk in template.root_render_func(template.new_context({**_GLOBALS, **values}, shared=True)):
            size += len(chunk)
            if size > max_chars:
                raise PayloadTooLargeError(
                    f"the rendered prompt exceeds {max_chars} characters", param=param, code="render_too_large"
                )
            parts.append(chunk)
    except LlmopsError:
        raise
    except SecurityError as exc:
        raise _refuse(str(exc), param) from exc
    except UndefinedError as exc:
        raise InvalidInputError(f"template failed: {exc}", param=param, code="undefined_variable") from exc
    except Exception as exc:  # sandbox boundary: a user's template may fail in any way; it is their input error
        raise InvalidInputError(
            f"template failed: {type(exc).__name__}: {exc}", param=param, code="template_error"
        ) from exc
    return "".join(parts)


class CompiledPrompt:
    """One prompt version, compiled: ``render(**vars)`` (text) or ``messages(**vars)`` (chat or text).

    ``stale`` is set when served from a cache past its TTL (the server could not be asked); ``is_fallback``
    when the caller's own ``fallback=`` was used because nothing could be fetched.
    """

    def __init__(
        self,
        content: PromptContent,
        *,
        name: str,
        version: int | None,
        label: str | None = None,
        max_chars: int = DEFAULT_MAX_RENDER_CHARS,
    ) -> None:
        declared = frozenset(v.name for v in content.variables)
        self._templates = [(param, compile_template(src, declared, param=param)) for param, src in content.templates()]
        self._roles = [m.role for m in content.messages]
        self._by_name = {v.name: v for v in content.variables}
        self._max_chars = max_chars
        self.content = content
        self.name = name
        self.version = version
        self.label = label
        self.stale = False
        self.is_fallback = False

    @property
    def type(self) -> str:
        return self.content.type

    @property
    def model(self) -> str | None:
        return self.content.model

    @property
    def params(self) -> dict[str, Any]:
        return dict(self.content.params)

    @property
    def variables(self) -> tuple[Variable, ...]:
        return self.content.variables

    def __repr__(self) -> str:
        flags = "".join(f" {f}" for f in ("stale", "is_fallback") if getattr(self, f))
        return f"<CompiledPrompt {self.name!r} v{self.version} {self.type}{flags}>"

    def flagged(self, *, stale: bool = False, is_fallback: bool = False, label: str | None = None) -> CompiledPrompt:
        """A shallow copy carrying the given flags (the compiled templates are shared)."""
        other = copy.copy(self)
        other.stale, other.is_fallback = stale, is_fallback
        other.label = label if label is not None else self.label
        return other

    def bind(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """Check ``values`` against the declared variables and fill in defaults."""
        for key in values:
            if key not in self._by_name:
                raise InvalidInputError(
                    f"prompt {self.name!r} declares no variable {key!r}",
                    param=f"variables.{key}",
                    code="undeclared_variable",
                )
        bound: dict[str, Any] = {}
        for var in self.content.variables:
            if var.name in values:
                check_value(var, values[var.name])
                bound[var.name] = values[var.name]
            elif var.required:
                raise InvalidInputError(
                    f"prompt {self.name!r} needs variable {var.name!r} ({var.type})",
                    param=f"variables.{var.name}",
                    code="missing_variable",
                )
            else:
                bound[var.name] = var.default
        return bound

    def coerce(self, texts: Mapping[str, str]) -> dict[str, Any]:
        """String values (command line, forms) turned into the declared types."""
        out: dict[str, Any] = {}
        for key, text in texts.items():
            var: Variable | None = self._by_name.get(key)
            out[key] = coerce_value(var, text) if var is not None else text
        return out

    def render(self, **variables: Any) -> str:
        """The text of a text prompt."""
        if self.content.type != "text":
            raise InvalidInputError(f"prompt {self.name!r} is a chat prompt: use .messages()", param="type")
        param, template = self._templates[0]
        return render_template(template, self.bind(variables), param=param, max_chars=self._max_chars)

    def messages(self, **variables: Any) -> list[dict[str, str]]:
        """Chat messages: a chat prompt's, or one user message holding a text prompt."""
        if self.content.type == "text":
            return [{"role": "user", "content": self.render(**variables)}]
        bound = self.bind(variables)
        return [
            {"role": role, "content": render_template(t, bound, param=param, max_chars=self._max_chars)}
            for role, (param, t) in zip(self._roles, self._templates, strict=True)
        ]


def fallback_prompt(name: str, fallback: str | list[dict[str, str]]) -> CompiledPrompt:
    """A prompt compiled from a caller's fallback (a template, or chat messages); every variable it uses is
    declared with type ``any``."""
    data: dict[str, Any] = {"template": fallback} if isinstance(fallback, str) else {"messages": list(fallback)}
    content = parse_content(data)
    used: set[str] = set()
    for param, source in content.templates():
        try:
            used |= meta.find_undeclared_variables(ENV.parse(source))
        except TemplateError as exc:
            raise InvalidInputError(f"fallback template error: {exc.message}", param=param) from exc
    declared = tuple(Variable(n, "any") for n in sorted(used - set(ENV.globals)))
    return CompiledPrompt(replace(content, variables=declared), name=name, version=None)
