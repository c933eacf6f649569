"""The tests' one polling helper: returns the first truthy value, or fails at its deadline saying why."""

from __future__ import annotations

import time

import pytest

from tests.waiting import eventually


def test_it_returns_the_first_truthy_value_of_the_condition():
    values = iter([None, 0, [], "ready", "later"])
    assert eventually(lambda: next(values), interval=0) == "ready"


def test_at_its_deadline_it_fails_with_the_message_and_the_last_value():
    started = time.monotonic()
    with pytest.raises(AssertionError, match=r"the job did not finish \(waited 0.2 s; last value: \[\]\)"):
        eventually(lambda: [], timeout=0.2, interval=0.05, message="the job did not finish")
    assert 0.2 <= time.monotonic() - started < 5


def test_the_message_may_be_built_only_when_it_fails():
    calls = []
    assert eventually(lambda: True, message=lambda: calls.append("built") or "never") is True
    with pytest.raises(AssertionError, match="3 of 4 arrived"):
        eventually(lambda: False, timeout=0, message=lambda: "3 of 4 arrived")
    assert calls == []


def test_ignored_exceptions_count_as_not_yet_and_others_propagate_at_once():
    tries = []

    def flaky() -> str:
        tries.append(1)
        if len(tries) < 3:
            raise ConnectionError("not listening yet")
        return "up"

    assert eventually(flaky, interval=0, ignoring=(ConnectionError,)) == "up"

    def down() -> None:
        raise ConnectionError("down")

    with pytest.raises(AssertionError, match=r"last value: ConnectionError\('down'\)"):
        eventually(down, timeout=0.1, interval=0.01, ignoring=(ConnectionError,))
    with pytest.raises(KeyError):
        eventually(lambda: {}["missing"], timeout=5, ignoring=(ConnectionError,))


def test_with_no_time_left_it_still_tries_once():
    assert eventually(lambda: "at once", timeout=0) == "at once"
