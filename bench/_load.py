"""What the load generators of the benches share: run one function per connection in threads and time them."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable


def run_threads(work: Callable[[int], None], count: int) -> float:
    """Run ``work(0)`` … ``work(count - 1)`` each in its own thread, all at once; the seconds until all ended."""
    threads = [threading.Thread(target=work, args=(i,)) for i in range(count)]
    began = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return time.monotonic() - began
