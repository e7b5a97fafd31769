"""Sandboxed rendering: known SSTI payloads are refused at push time and, should one reach the renderer, at
render time, without executing anything or leaking server state; variables are declared, typed and checked."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from llmops.core.errors import InvalidInputError, PayloadTooLargeError
from llmops.prompts import CompiledPrompt
from llmops.prompts.rendering import ENV, fallback_prompt, render_template
from llmops.prompts.spec import parse_prompt

SSTI_PAYLOADS = [
    "{{ ''.__class__.__mro__ }}",
    "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{{ cycler.__init__.__globals__ }}",
    "{{ cycler.__init__.__globals__.os.popen('id').read() }}",
    "{{ joiner.__init__.__globals__ }}",
    "{{ namespace.__init__.__globals__ }}",
    "{{ lipsum.__globals__['os'] }}",
    "{{ lipsum.__globals__['os'].popen('id').read() }}",
    "{{ self._TemplateReference__context }}",
    "{{ self.__init__.__globals__ }}",
    "{{ ''.format.__globals__ }}",
    "{% for c in [].__class__.__base__.__subclasses__() %}{{ c }}{% endfor %}",
    "{{ ''|attr('__class__') }}",
    "{{ who|attr('__class__')|attr('__mro__') }}",
    "{{ request }}",
    "{{ request.application.__globals__ }}",
    "{{ config }}",
    "{{ config.items() }}",
    "{{ '{0.__class__}'.format(who) }}",
    "{{ '{0.__class__.__mro__}'.format(who) }}",
    "{{ who.format_map }}",
    "{{ who['__class__'] }}",
    "{{ range.__globals__ }}",
    "{{ dict.__base__.__subclasses__() }}",
    "{{ who.upper }}",
    "{% include '/etc/passwd' %}",
    "{% extends '/etc/passwd' %}",
    "{% import 'os' as os %}",
    "{{ 'x' * 100000000 }}",
    "{{ 9 ** 9999999 }}",
]
LEAK_MARKERS = ("<class", "<function", "<module", "__builtins__", "root:", "uid=", "os.popen", "object at 0x")


@pytest.mark.parametrize("payload", SSTI_PAYLOADS)
def test_ssti_payloads_are_refused_when_pushed(payload: str) -> None:
    """Compiling a prompt with the payload fails with a 4xx naming a field; nothing runs."""
    _, content = parse_prompt({"template": payload, "variables": {"who": "string"}})
    with pytest.raises(InvalidInputError) as err:
        CompiledPrompt(content, name="evil", version=1).render(who="x")
    assert err.value.status_code in (400, 413) and err.value.param
    assert not any(m in err.value.message for m in LEAK_MARKERS)


@pytest.mark.parametrize("payload", SSTI_PAYLOADS)
def test_ssti_payloads_are_refused_by_the_sandbox_itself(payload: str) -> None:
    """Even without the push-time checks (a template compiled directly), rendering refuses or renders nothing
    of the server's internals."""
    try:
        template = ENV.from_string(payload)
    except Exception:  # refused by Jinja itself (e.g. no loader for include)
        return
    try:
        out = render_template(template, {"who": "x"}, param="template", max_chars=10_000)
    except InvalidInputError as err:
        assert not any(m in err.message for m in LEAK_MARKERS)
        return
    assert not any(m in out for m in LEAK_MARKERS), out


def _prompt(template: str, variables: dict[str, object] | None = None) -> CompiledPrompt:
    _, content = parse_prompt({"template": template, "variables": variables or {}})
    return CompiledPrompt(content, name="p", version=1)


def test_undeclared_variables_are_refused_at_compile_time() -> None:
    """A template reading a variable it does not declare is refused, naming the variable."""
    with pytest.raises(InvalidInputError) as err:
        _prompt("Hi {{ name }} from {{ city }}", {"name": "string"})
    assert err.value.param == "variables.city" and err.value.code == "undeclared_variable"


def test_syntax_errors_name_the_line() -> None:
    """A syntax error names the template field and its line."""
    with pytest.raises(InvalidInputError) as err:
        _prompt("line one\n{% if x %}unclosed", {"x": "boolean"})
    assert err.value.param == "template" and err.value.code == "template_syntax_error"
    assert "line 2" in err.value.message


def test_variables_are_checked_and_defaults_filled() -> None:
    """Missing, unknown and wrongly typed variables are 400s naming `variables.<name>`; defaults apply."""
    p = _prompt(
        "{{ who }} x{{ n }} {{ 'yes' if loud else 'no' }} {{ items|join(',') }}",
        {
            "who": "string",
            "n": {"type": "integer", "default": 2},
            "loud": {"type": "boolean", "default": False},
            "items": {"type": "list", "default": []},
        },
    )
    assert p.render(who="ann") == "ann x2 no "
    assert p.render(who="bo", n=3, loud=True, items=["a", "b"]) == "bo x3 yes a,b"
    cases = [
        ({}, "variables.who", "missing_variable"),
        ({"who": "a", "zzz": 1}, "variables.zzz", "undeclared_variable"),
    ]
    cases.append(({"who": "a", "n": "3"}, "variables.n", "invalid_variable"))
    cases.append(({"who": "a", "loud": 1}, "variables.loud", "invalid_variable"))
    for values, param, code in cases:
        with pytest.raises(InvalidInputError) as err:
            p.render(**values)
        assert (err.value.param, err.value.code) == (param, code)
    assert p.coerce({"who": "z", "n": "7", "loud": "yes", "items": '["q"]'}) == {
        "who": "z",
        "n": 7,
        "loud": True,
        "items": ["q"],
    }


def test_chat_prompts_render_messages_in_order() -> None:
    """Chat prompts render one message per role section, in order; .render() is refused for them."""
    _, content = parse_prompt(
        {
            "messages": [{"role": "system", "content": "Be {{ tone }}."}, {"role": "user", "content": "{{ q }}"}],
            "variables": {"tone": {"type": "string", "default": "brief"}, "q": "string"},
        }
    )
    p = CompiledPrompt(content, name="chat", version=4)
    assert p.messages(q="why?") == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "why?"}]
    with pytest.raises(InvalidInputError):
        p.render(q="x")


def test_size_limits() -> None:
    """An oversized template is a 413 naming the template; so is a render that would grow past the limit."""
    with pytest.raises(PayloadTooLargeError) as err:
        parse_prompt({"template": "x" * 100_001})
    assert err.value.param == "template" and err.value.status_code == 413
    _, content = parse_prompt(
        {"template": "{% for i in range(n) %}{{ s }}{% endfor %}", "variables": {"n": "integer", "s": "string"}}
    )
    p = CompiledPrompt(content, name="big", version=1, max_chars=1000)
    with pytest.raises(PayloadTooLargeError):
        p.render(n=2000, s="xx")


def test_templates_must_be_valid_text() -> None:
    """A lone surrogate (possible in JSON) is a 400 naming the field, not a server error."""
    with pytest.raises(InvalidInputError) as err:
        parse_prompt({"template": "bad \ud800"})
    assert err.value.param == "template"


def test_fallback_declares_what_it_uses() -> None:
    """A fallback template's variables are declared implicitly (type any)."""
    p = fallback_prompt("fb", "Hi {{ who }}")
    assert p.render(who="you") == "Hi you" and p.version is None


@settings(max_examples=200, deadline=None)
@given(
    value=st.text(max_size=200),
    literal=st.text(alphabet=st.characters(blacklist_characters="{}%#\r", blacklist_categories=["Cs"]), max_size=80),
)
def test_any_value_renders_verbatim(value: str, literal: str) -> None:
    """Property: text around `{{ v }}` is kept and any string value is substituted exactly (no escaping, no
    evaluation of template syntax inside values). Line ends in templates are normalised to \\n, hence no \\r."""
    p = _prompt(literal + "{{ v }}" + literal, {"v": "string"})
    assert p.render(v=value) == literal + value + literal
