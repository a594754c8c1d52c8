"""The page's message catalogs: every English message the report code passes to t() has a
Korean counterpart with the same fields, and the Korean derivation renders the same
numbers."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from rnngrad.errors import InvalidInputError
from rnngrad.show.i18n import catalog, fields, language, t

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "rnngrad"


def _translated_modules() -> list[Path]:
    """Every module that passes messages through ``t``: the report's, and the results'
    own figures."""
    return [
        path
        for path in sorted(PACKAGE.rglob("*.py"))
        if "from rnngrad.show.i18n import" in path.read_text() or path.name == "i18n.py"
    ]


def messages_in_code() -> list[str]:
    """The first argument of every call ``t(...)`` in the translated modules; each must be
    a string literal, or no catalog could hold it."""
    found = []
    for path in _translated_modules():
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Name)
                and node.func.id == "t"
            ):
                argument = node.args[0]  # type: ignore[attr-defined]
                assert isinstance(argument, ast.Constant) and isinstance(argument.value, str), (
                    f"{path.name}:{node.lineno}: t() needs a literal message"  # type: ignore[attr-defined]
                )
                found.append(argument.value)
    return found


def test_every_message_has_a_korean_counterpart_with_the_same_fields() -> None:
    messages = messages_in_code()
    assert len(messages) >= 100
    korean = catalog("ko")
    missing = [m for m in messages if m not in korean]
    assert not missing, missing
    for message in messages:
        assert fields(korean[message]) == fields(message), message
    translated = [m for m in messages if korean[m] != m]
    assert len(translated) >= 0.9 * len(set(messages))  # formulas alone may stay as they are
    unused = set(korean) - set(messages)
    assert not unused, f"catalog entries no code uses: {sorted(unused)[:3]}"


def test_the_language_switches_the_messages_not_the_numbers() -> None:
    from rnngrad.report.teaching import scalar_explanation
    from rnngrad.theory.scalar import scalar_chain_rule

    result = scalar_chain_rule()
    english = scalar_explanation(result)
    with language("ko"):
        korean = scalar_explanation(result)
    assert english != korean and "유닛" in korean
    equation = english[english.rindex(r"\[") :]
    assert korean.endswith(equation)  # the substituted numbers, identical
    assert t(
        "Here \\(T = {steps}\\), \\(a = {a}\\), \\(d = {d}\\), and \\(\\tanh'(z_t) = 1 - "
        "h_t^2\\) along the real trajectory:",
        steps=3,
        a="0.5",
        d="1",
    ).startswith("Here")
    with pytest.raises(InvalidInputError, match="unknown language"):
        with language("fr"):
            pass
