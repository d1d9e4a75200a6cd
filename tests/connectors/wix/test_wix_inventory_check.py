"""Stock pushes on both catalog versions, and the credential check's verdicts."""

from __future__ import annotations

from typing import Any

import pytest
from wix_support import WixAdmin, connector, run

from orderbridge.connectors.base import InventoryUpdate
from orderbridge.connectors.errors import ConfigError
from orderbridge.connectors.wix.connector import WixConnector


def _push(url: str, site: dict[str, Any], updates: dict[str, int], **settings: Any) -> dict[str, str]:
    async def go(c: WixConnector) -> dict[str, str]:
        return await c.push_inventory([InventoryUpdate(sku=k, quantity=v) for k, v in updates.items()])
    return dict(run(connector(url, site, settings), go))


@pytest.mark.parametrize("catalog", ["V1_CATALOG", "V3_CATALOG"])
def test_push_sets_absolute_quantities(wix_url: str, admin: WixAdmin, catalog: str) -> None:
    site = admin.site(catalogVersion=catalog)
    refused = _push(wix_url, site, {"MUG-1": 7, "TEE-L": 0, "TEE-M": 4, "GHOST": 3})
    assert set(refused) == {"GHOST"} and "not found" in refused["GHOST"]
    stock = admin.inventory(site)
    assert (stock["MUG-1"]["quantity"], stock["TEE-M"]["quantity"], stock["TEE-L"]["quantity"]) == (7, 4, 0)
    assert stock["TEE-L"]["inStock"] is False
    history = admin.get(f"/sites/{site['siteId']}/inventory/history")
    version = "v2/inventoryItems" if catalog == "V1_CATALOG" else "v3/inventory-items"
    assert {h["sku"] for h in history if version in h["via"]} == {"MUG-1", "TEE-M", "TEE-L"}
    if catalog == "V1_CATALOG":  # one PATCH per product, all its variants at once
        products = {i["productId"] for i in stock.values()}
        patched = [c["path"].rsplit("/", 1)[1] for c in admin.calls("/stores/v2/inventoryItems/product/")
                   if c["method"] == "PATCH"]
        assert sorted(p for p in patched if p in products) == sorted(products)


def test_catalog_setting_and_new_skus(wix_url: str, admin: WixAdmin) -> None:
    site = admin.site(catalogVersion="V3_CATALOG")
    with pytest.raises(ConfigError, match="catalog"):
        _push(wix_url, site, {"MUG-1": 1}, catalog_version="v1")  # a V3 site answers V1 calls with 428

    async def go(c: WixConnector) -> tuple[Any, Any]:
        first = await c.push_inventory([InventoryUpdate("NEW-1", 5)])
        admin.post(f"/sites/{site['siteId']}/products", {"sku": "NEW-1", "quantity": 0})
        c.inventory.loaded_at -= 3600  # past the cache's age: the missing SKU triggers a re-read
        return first, await c.push_inventory([InventoryUpdate("NEW-1", 5)])
    before, after = run(connector(wix_url, site), go)
    assert "NEW-1" in before and after == {}
    assert admin.inventory(site)["NEW-1"]["quantity"] == 5


def test_v3_stale_revision_is_reread(wix_url: str, admin: WixAdmin) -> None:
    site = admin.site(catalogVersion="V3_CATALOG")
    item = admin.inventory(site)["MUG-1"]
    stale = {"id": item["inventoryItemId"], "revision": str(int(item["revision"]) - 1)}

    async def go(c: WixConnector) -> None:
        await c.inventory._patch_v3(stale, 9)
    run(connector(wix_url, site), go)
    assert admin.inventory(site)["MUG-1"]["quantity"] == 9
    conflicts = [c for c in admin.calls(f"/stores/v3/inventory-items/{item['inventoryItemId']}")
                 if c["status"] == 409]
    assert len(conflicts) == 1


def test_stores_not_installed(wix_url: str, admin: WixAdmin) -> None:
    site = admin.site(products=[], catalogVersion="STORES_NOT_INSTALLED")
    with pytest.raises(ConfigError, match="not installed"):
        _push(wix_url, site, {"MUG-1": 1})


def _check(url: str, site: dict[str, Any], settings: dict[str, Any] | None = None, **cred: Any) -> Any:
    async def go(c: WixConnector) -> Any:
        return await c.check()
    return run(connector(url, site, settings, **cred), go)


def test_check_says_what_is_wrong(wix_url: str, admin: WixAdmin) -> None:
    site = admin.site()
    assert _check(wix_url, site).ok
    bad_key = _check(wix_url, {**site, "apiKey": "IST.wrong"})
    assert not bad_key.ok and "API key" in bad_key.message
    unknown = _check(wix_url, {**site, "siteId": "no-such-site"})
    assert not unknown.ok and "site ID" in unknown.message
    other = admin.site()
    foreign = _check(wix_url, {**site, "siteId": other["siteId"]})
    assert not foreign.ok and "does not own" in foreign.message

    cases = {("orders.manage", "products.read", "inventory.manage"): "read orders",
             ("orders.read", "products.read", "inventory.manage"): "create fulfillments",
             ("orders.read", "orders.manage", "products.read"): "update stock"}
    for permissions, words in cases.items():
        limited = admin.site(permissions=list(permissions))
        result = _check(wix_url, limited)
        assert not result.ok and words in result.message, (permissions, result.message)
    no_stock = admin.site(permissions=["orders.read", "orders.manage"])
    assert _check(wix_url, no_stock, {"inventory_enabled": False}).ok  # stock pushes are off: not needed


def test_check_rejects_a_broken_webhook_key(wix_url: str, admin: WixAdmin) -> None:
    result = _check(wix_url, admin.site(), webhook_public_key="not a key")
    assert not result.ok and "public key" in result.message
