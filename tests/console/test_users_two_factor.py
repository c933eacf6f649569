"""The console's Users tab shows who has two-factor and who is locked out, and resets and unlocks them:
through the server's admin API while it runs, through the core while it is stopped."""

from __future__ import annotations

from pathlib import Path

import pyotp
import pytest

from appliance.config.home import Paths
from console.supervisor import STOPPED

KEY = b"console-test-key" * 2


def _prepare(home: Path) -> dict[str, int]:
    """Two users: Tess with two-factor on, Luke locked out by failed sign-ins (the real way)."""
    from appliance.accounts import totp
    from appliance.accounts.sign_in import sign_in
    from appliance.accounts.throttle import ThrottleRules
    from appliance.accounts.user_changes import create_user
    from appliance.errors import NotAuthenticated
    from console.offline import offline_database

    with offline_database(Paths(home)):
        tess = create_user("tess@example.com", "Tess", "editor", "tess-long-password-1", actor="test")
        luke = create_user("luke@example.com", "Luke", "viewer", "luke-long-password-2", actor="test")
        setup = totp.start_setup(tess.id, KEY)
        totp.confirm_setup(tess.id, pyotp.TOTP(setup.secret).now(), KEY)
        rules = ThrottleRules()
        for _ in range(rules.account_failures):
            with pytest.raises(NotAuthenticated):
                sign_in(luke.email, "wrong-password-x", address="10.0.0.3", rules=rules)
    return {"tess": tess.id, "luke": luke.id}


def _cell(tab, email: str, column: int) -> str:
    row = next(r for r in range(tab.table.rowCount()) if tab.table.item(r, 0).text() == email)
    return tab.table.item(row, column).text()


def _state(home: Path, user_id: int) -> tuple[bool, bool, list[str]]:
    from appliance.accounts.throttle import locked_accounts
    from appliance.accounts.totp import totp_enabled
    from appliance.accounts.users import get_user
    from appliance.audit import list_events
    from console.offline import offline_database

    with offline_database(Paths(home)):
        user = get_user(user_id)
        actors = [e.actor for e in list_events() if e.action in ("totp.reset", "user.unlocked")]
        return totp_enabled(user_id), bool(locked_accounts([user.email])), actors


def _exercise(qtbot, tab, home: Path, ids: dict[str, int]) -> list[str]:
    with qtbot.waitSignal(tab.loaded, timeout=15_000):
        tab.refresh()
    assert _cell(tab, "tess@example.com", 6) == "on" and _cell(tab, "luke@example.com", 6) == "off"
    assert _cell(tab, "luke@example.com", 7) == "locked out" and _cell(tab, "tess@example.com", 7) == ""
    with qtbot.waitSignal(tab.done, timeout=15_000) as reset:
        tab.reset_two_factor(ids["tess"])
    assert "Two-factor sign-in of tess@example.com is off" in reset.args[0]
    with qtbot.waitSignal(tab.done, timeout=15_000) as unlocked:
        tab.unlock(ids["luke"])
    assert "luke@example.com is unlocked" in unlocked.args[0]
    tab.refresh()
    # A load the actions started may still arrive after this one's signal with older rows: wait for the table.
    qtbot.waitUntil(
        lambda: _cell(tab, "tess@example.com", 6) == "off" and _cell(tab, "luke@example.com", 7) == "", timeout=15_000
    )
    on = _state(home, ids["tess"])[0]
    _, locked, actors = _state(home, ids["luke"])
    assert not on and not locked
    return actors


def test_the_users_tab_resets_two_factor_and_unlocks_while_the_server_is_stopped(qtbot, make_window, console_home):
    ids = _prepare(console_home)
    window = make_window(console_home)
    window.start_watching(start_server=False)
    assert window.supervisor.state == STOPPED
    assert _exercise(qtbot, window.users, console_home, ids) == ["console", "console"]


def test_the_users_tab_resets_two_factor_and_unlocks_through_the_running_server(qtbot, make_window, console_home):
    ids = _prepare(console_home)
    window = make_window(console_home)
    with qtbot.waitSignal(window.status_received, timeout=30_000):
        window.start_watching()
    assert sorted(_exercise(qtbot, window.users, console_home, ids)) == ["control", "control"]
