"""The page's message catalogs: every English message the report code passes to t() has a
Korean counterpart with the same fields, and the Korean derivation renders the same
numbers."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

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


def _korean_catalog() -> dict[str, Any]:
    import json

    text = (PACKAGE / "show" / "locale" / "ko.json").read_text("utf-8")
    catalog_file: dict[str, Any] = json.loads(text)
    return catalog_file


def test_the_korean_catalog_keeps_its_glossary() -> None:
    """Every translation of a message that names a glossary term uses the glossary's
    Korean (폭주 for exploding, as the article's reference says; 고유값; 과도 성장;
    유효 범위 ...), none uses a spelling the glossary avoids (폭발, 고윳값, 지평, 인수 ...),
    and the terms a machine-learning reader knows in English carry it in brackets once."""
    import re

    data = _korean_catalog()
    glossary, avoid, messages = data["glossary"], data["avoid"], data["messages"]
    assert glossary["exploding"] == "폭주" and "폭발" in avoid
    for english, korean in messages.items():
        for word in avoid:
            assert word not in korean, f"{word!r} ({avoid[word]}) in: {korean}"
        words = re.sub(r"\{\w+\}", "", english)  # a field's name is not a word of the text
        for term, translation in glossary.items():
            if re.search(re.escape(term), words, flags=re.IGNORECASE):
                assert translation in korean, f"{term!r} -> {translation!r} missing: {korean}"
    everything = "\n".join(messages.values())
    for term in ("vanishing", "exploding", "eigenvalue", "singular value", "transient growth",
                 "horizon", "saturation"):  # fmt: skip
        assert f"{glossary[term]}({term})" in everything, term


def test_the_korean_sentences_a_reader_corrected() -> None:
    """Regression: the wording a native reader corrected stays corrected."""
    with language("ko"):
        assert t("layer {n}", n=0) == "0번 층"
        factors = t(
            "With a = {a}, the chain factors dh_(k+1)/dh_k are {factors}, each below |a| = "
            "{abs_a}, so dy/dh_1 = {gradient} against the bound {bound}.",
            a="0.5", factors="0.2502, 0.4986", abs_a="0.5", gradient="0.1247", bound="0.2500",
        )  # fmt: skip
        expected = "연쇄 항 dh_(k+1)/dh_k는 각각 0.2502, 0.4986이며 모두 |a| = 0.5보다 작습니다"
        assert expected in factors
        assert t("{rate} nats per step", rate="0.672") == "0.672 nat/단계"
        assert t("The remedies lab") == "처방 비교 실험"
        assert t("transient growth ||W^k||_2").startswith("과도 성장")
