"""The instance home: resolution order and a layout created once, safely."""

from __future__ import annotations

import stat

import pytest

from appliance.config.home import SUBDIRS, init_home, open_instance, resolve_home
from appliance.errors import HomeError


def test_home_resolution_prefers_the_flag_then_the_environment_then_the_platform_folder(tmp_path):
    assert resolve_home(tmp_path / "a", {"APPLIANCE_HOME": str(tmp_path / "b")}) == tmp_path / "a"
    assert resolve_home(None, {"APPLIANCE_HOME": str(tmp_path / "b")}) == tmp_path / "b"
    assert "office-appliance" in str(resolve_home(None, {}))


def test_init_creates_the_layout_with_a_private_secret(tmp_path):
    home = tmp_path / "home"
    created = init_home(home)
    for name in SUBDIRS:
        assert (home / name).is_dir()
    assert (home / "appliance.toml").is_file()
    assert stat.S_IMODE((home / "secret.key").stat().st_mode) == 0o600
    assert stat.S_IMODE((home / "appliance.toml").stat().st_mode) == 0o600
    for folder in [home, *(home / name for name in SUBDIRS)]:
        assert stat.S_IMODE(folder.stat().st_mode) & 0o077 == 0, folder
    assert "secret.key" in created


def test_init_twice_changes_nothing(tmp_path):
    home = tmp_path / "home"
    init_home(home)
    secret = (home / "secret.key").read_bytes()
    (home / "appliance.toml").write_text("port = 9999\n")
    assert init_home(home) == []
    assert (home / "secret.key").read_bytes() == secret
    assert (home / "appliance.toml").read_text() == "port = 9999\n"


def test_opening_a_folder_that_is_not_a_home_says_to_run_init(tmp_path):
    with pytest.raises(HomeError, match="appliance init"):
        open_instance(tmp_path)
