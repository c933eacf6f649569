"""The console's main window (the full console is built in its own issue)."""

from __future__ import annotations

from pathlib import Path

from appliance.home import open_instance
from appliance.server import read_server_info


def run_console(home: Path) -> int:
    from PySide6.QtWidgets import QApplication, QLabel, QMainWindow

    app = QApplication.instance() or QApplication([])
    window = QMainWindow()
    window.setWindowTitle("Office Appliance")
    info = read_server_info(open_instance(home))
    text = f"Server running at {info.get('url')}" if info else "Server stopped"
    window.setCentralWidget(QLabel(text))
    window.show()
    return app.exec()
