#!/bin/sh
# One-step install of Office Appliance (Linux, macOS): finds Python 3.11+ and runs install.py.
# Usage: installer/install.sh [--home DIR] [--service] [--uninstall] ...  (see install.py --help)
set -eu
here=$(CDPATH= cd -- "$(dirname -- "$0")" && pwd)
for candidate in "${PYTHON:-}" python3.13 python3.12 python3.11 python3; do
    [ -n "$candidate" ] || continue
    if command -v "$candidate" >/dev/null 2>&1 &&
        "$candidate" -c 'import sys, venv; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
        exec "$candidate" "$here/install.py" "$@"
    fi
done
echo "install: error: Python 3.11 or newer (with the venv module) is needed;" \
     "on Debian/Ubuntu: sudo apt-get install python3 python3-venv" >&2
exit 1
