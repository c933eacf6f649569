"""Whether the desktop console can open a window here: the system libraries Qt's X11 plugin lacks.

PySide6 6.5+ loads its ``xcb`` platform plugin on an X11 desktop, and that
plugin needs ``libxcb-cursor0``, ``libxcb-icccm4``, ``libxcb-keysyms1`` and
other system libraries that many desktops lack; without them Qt aborts
(exit 134) with "Reinstalling the application may fix this problem". This
module finds what is missing the way the loader does (``ldd`` on the plugin
and ``libQt6XcbQpa.so.6``, never by package names), names the packages that
bring them for apt, dnf and pacman, and gives the command that installs them.
It never imports Qt: ``appliance console`` asks it before loading Qt, and
``appliance doctor`` and the installer ask it too.

Run as ``python -m appliance.cli.desktop_libs`` it prints the install command
(nothing when nothing is missing) and exits 1 when libraries are missing;
with ``--apt-packages`` it prints every Debian package the plugin needs.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

# soname -> package, by package manager (Debian/Ubuntu, Fedora, Arch).
PACKAGES: dict[str, dict[str, str]] = {
    "libxcb-cursor.so.0": {"apt": "libxcb-cursor0", "dnf": "xcb-util-cursor", "pacman": "xcb-util-cursor"},
    "libxcb-icccm.so.4": {"apt": "libxcb-icccm4", "dnf": "xcb-util-wm", "pacman": "xcb-util-wm"},
    "libxcb-keysyms.so.1": {"apt": "libxcb-keysyms1", "dnf": "xcb-util-keysyms", "pacman": "xcb-util-keysyms"},
    "libxcb-image.so.0": {"apt": "libxcb-image0", "dnf": "xcb-util-image", "pacman": "xcb-util-image"},
    "libxcb-render-util.so.0": {
        "apt": "libxcb-render-util0",
        "dnf": "xcb-util-renderutil",
        "pacman": "xcb-util-renderutil",
    },
    "libxcb-util.so.1": {"apt": "libxcb-util1", "dnf": "xcb-util", "pacman": "xcb-util"},
    "libxkbcommon-x11.so.0": {"apt": "libxkbcommon-x11-0", "dnf": "libxkbcommon-x11", "pacman": "libxkbcommon-x11"},
    "libxkbcommon.so.0": {"apt": "libxkbcommon0", "dnf": "libxkbcommon", "pacman": "libxkbcommon"},
    "libX11-xcb.so.1": {"apt": "libx11-xcb1", "dnf": "libX11-xcb", "pacman": "libx11"},
    "libX11.so.6": {"apt": "libx11-6", "dnf": "libX11", "pacman": "libx11"},
    "libSM.so.6": {"apt": "libsm6", "dnf": "libSM", "pacman": "libsm"},
    "libICE.so.6": {"apt": "libice6", "dnf": "libICE", "pacman": "libice"},
    "libEGL.so.1": {"apt": "libegl1", "dnf": "libglvnd-egl", "pacman": "libglvnd"},
    "libGL.so.1": {"apt": "libgl1", "dnf": "libglvnd-glx", "pacman": "libglvnd"},
    "libOpenGL.so.0": {"apt": "libopengl0", "dnf": "libglvnd-opengl", "pacman": "libglvnd"},
    "libfontconfig.so.1": {"apt": "libfontconfig1", "dnf": "fontconfig", "pacman": "fontconfig"},
    "libfreetype.so.6": {"apt": "libfreetype6", "dnf": "freetype", "pacman": "freetype2"},
    "libdbus-1.so.3": {"apt": "libdbus-1-3", "dnf": "dbus-libs", "pacman": "dbus"},
    "libglib-2.0.so.0": {"apt": "libglib2.0-0", "dnf": "glib2", "pacman": "glib2"},
    "libGLX.so.0": {"apt": "libglx0", "dnf": "libglvnd-glx", "pacman": "libglvnd"},
    "libGLdispatch.so.0": {"apt": "libglvnd0", "dnf": "libglvnd", "pacman": "libglvnd"},
    "libXau.so.6": {"apt": "libxau6", "dnf": "libXau", "pacman": "libxau"},
    "libXdmcp.so.6": {"apt": "libxdmcp6", "dnf": "libXdmcp", "pacman": "libxdmcp"},
    "libpng16.so.16": {"apt": "libpng16-16", "dnf": "libpng", "pacman": "libpng"},
}
for _name in ("xcb", "xcb-randr", "xcb-shape", "xcb-shm", "xcb-sync", "xcb-xfixes", "xcb-render", "xcb-xkb"):
    _number = "1" if _name in ("xcb", "xcb-sync", "xcb-xkb") else "0"
    PACKAGES[f"lib{_name}.so.{_number}"] = {"apt": f"lib{_name}{_number}", "dnf": "libxcb", "pacman": "libxcb"}

# The whole set the plugin needs on Debian, installed by the Makefile and the installer in one go.
APT_PACKAGES = sorted({p["apt"] for p in PACKAGES.values()})
_NOT_FOUND = re.compile(r"^\s*(\S+)\s+=>\s+not found\s*$")


def plugin_files() -> list[Path]:
    """The xcb platform plugin and its Qt library in the installed PySide6 (empty when PySide6 is absent)."""
    spec = importlib.util.find_spec("PySide6")
    if spec is None or not spec.submodule_search_locations:
        return []
    qt = Path(next(iter(spec.submodule_search_locations))) / "Qt"
    files = [qt / "plugins" / "platforms" / "libqxcb.so", qt / "lib" / "libQt6XcbQpa.so.6"]
    return [f for f in files if f.is_file()]


def missing_libraries(files: list[Path] | None = None) -> list[str]:
    """The sonames the loader cannot find for ``files`` (default: :func:`plugin_files`), by ``ldd``; empty
    where there is no ``ldd`` (not Linux) or nothing is missing."""
    ldd = shutil.which("ldd")
    if ldd is None:
        return []
    missing: set[str] = set()
    for path in plugin_files() if files is None else files:
        try:
            out = subprocess.run([ldd, str(path)], capture_output=True, text=True, timeout=20).stdout
        except (OSError, subprocess.SubprocessError):
            continue
        missing.update(m.group(1) for line in out.splitlines() if (m := _NOT_FOUND.match(line)))
    return sorted(missing)


def package_manager() -> str | None:
    """``apt``, ``dnf`` or ``pacman``: the first this machine has."""
    for name, binary in (("apt", "apt-get"), ("dnf", "dnf"), ("pacman", "pacman")):
        if shutil.which(binary):
            return name
    return None


def install_command(missing: list[str], manager: str | None = None) -> list[str] | None:
    """The command that installs the packages bringing ``missing`` (with ``sudo`` unless root), or ``None``
    when no package manager is known or a library has no known package."""
    manager = manager or package_manager()
    if manager is None or not missing:
        return None
    names = sorted({PACKAGES[lib][manager] for lib in missing if lib in PACKAGES})
    if not names:
        return None
    sudo = [] if hasattr(os, "geteuid") and os.geteuid() == 0 else ["sudo"]
    verbs = {
        "apt": ["apt-get", "install", "-y"],
        "dnf": ["dnf", "install", "-y"],
        "pacman": ["pacman", "-S", "--noconfirm"],
    }
    return [*sudo, *verbs[manager], *names]


def needs_xcb(environ: dict[str, str] | None = None) -> bool:
    """Whether Qt will use its X11 plugin here: Linux, a display, and no other platform chosen."""
    env = os.environ if environ is None else environ
    if not sys.platform.startswith("linux"):
        return False
    platform = env.get("QT_QPA_PLATFORM", "")
    if platform:
        return platform.split(":")[0].strip() == "xcb"
    return bool(env.get("DISPLAY")) and not env.get("WAYLAND_DISPLAY")


def desktop_problem(environ: dict[str, str] | None = None, files: list[Path] | None = None) -> str | None:
    """One line saying why the console cannot open a window here and how to fix it, or ``None``."""
    if not needs_xcb(environ):
        return None
    missing = missing_libraries(files)
    if not missing:
        return None
    command = install_command(missing)
    fix = f"install them with: {' '.join(command)}" if command else "install the packages that provide them"
    return (
        f"the desktop console cannot open a window: Qt's X11 plugin needs {', '.join(missing)}, "
        f"which this system lacks; {fix}"
    )


def main(argv: list[str] | None = None) -> int:
    if (argv if argv is not None else sys.argv[1:]) == ["--apt-packages"]:
        print(" ".join(APT_PACKAGES))  # everything the plugin needs on Debian, for a set-up script
        return 0
    missing = missing_libraries()
    command = install_command(missing)
    if command:
        print(" ".join(command))
    elif missing:
        print("missing: " + ", ".join(missing))
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main())
