"""The one private-file writer: atomic, owner-only, and it leaves nothing behind when it fails."""

from __future__ import annotations

import stat

import pytest

from appliance.durable import create_private_file, private_dir, write_private_file


def test_write_private_file_replaces_the_file_owner_only(tmp_path):
    target = tmp_path / "secret.key"
    target.write_text("old")
    target.chmod(0o644)
    write_private_file(target, "new ✓")
    assert target.read_text(encoding="utf-8") == "new ✓"
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["secret.key"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    target = tmp_path / "appliance.toml"
    target.write_bytes(b"port = 8765\n")
    with pytest.raises(TypeError):
        write_private_file(target, 12345)  # type: ignore[arg-type]
    assert target.read_bytes() == b"port = 8765\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["appliance.toml"]


def test_private_folders_and_empty_files_are_owner_only(tmp_path):
    folder = private_dir(tmp_path / "a" / "b")
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    empty = folder / "x"
    create_private_file(empty)
    assert empty.read_bytes() == b"" and stat.S_IMODE(empty.stat().st_mode) == 0o600
