"""The `orderbridge` command with the test shop pair registered, for tests that start real processes.

python -m tests.support.ob_cli worker --config F  ==  orderbridge worker --config F (+ test_shop, test_wms)
"""

from __future__ import annotations

from orderbridge.cli.main import run
from orderbridge.connectors.registry import register_connector
from tests.support import shop

register_connector(shop.ShopSource)
register_connector(shop.WmsBackend)

if __name__ == "__main__":
    run()
