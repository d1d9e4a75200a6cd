"""Serve N test shop/WMS emulators in one process: python -m tests.support.shop_fleet N.

Prints one JSON line with their URLs once all answer, then serves until stdin closes or SIGTERM.
"""

from __future__ import annotations

import json
import signal
import sys
import threading

from orderbridge.connectors.sandbox_kit import ServedApp
from tests.support import shop


def main() -> None:
    count = int(sys.argv[1])
    servers = [ServedApp(shop.create_app()).start() for _ in range(count)]
    print(json.dumps([s.url for s in servers]), flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    threading.Thread(target=lambda: (sys.stdin.read(), done.set()), daemon=True).start()
    done.wait()
    for s in servers:
        s.stop()


if __name__ == "__main__":
    main()
