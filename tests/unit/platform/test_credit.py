"""Licence and attribution, written once in the schema library and used by the gateway and every export."""

from __future__ import annotations

from casebook_events import credit


def test_attribution_reads_as_the_contract_says() -> None:
    assert credit.attribution("Alice Smith", "c_1") == "Case courtesy of Alice Smith, Casebook, case c_1"
    assert credit.attribution("  Dr B ", "c_2") == "Case courtesy of Dr B, Casebook, case c_2"


def test_an_author_without_a_name_is_still_credited() -> None:
    assert credit.attribution("", "c_1") == "Case courtesy of a Casebook contributor, Casebook, case c_1"


def test_the_standard_licence_carries_its_deed_and_another_licence_stays_as_given() -> None:
    assert credit.licence_line(credit.LICENCE) == f"CC BY-NC-SA 4.0 ({credit.LICENCE_URL})"
    assert credit.licence_line("") == credit.licence_line(credit.LICENCE)
    assert credit.licence_line("CC BY 4.0") == "CC BY 4.0"
