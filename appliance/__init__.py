"""Office Appliance core: instance home, settings, storage, services, server runner and CLI.

Nothing in this package imports Flask, Werkzeug or Qt (a test walks the imports).
"""

from __future__ import annotations

__version__ = "0.1.0"
