"""The OpenAPI 3.0 description of /v1, generated from the route table (orderbridge.api.routing)."""

from __future__ import annotations

from typing import Any

from orderbridge import __version__
from orderbridge.api.envelope import FAILURE, INVALID, RATE_LIMIT
from orderbridge.api.queries import LIST_FILTERS
from orderbridge.api.records import INPUT_FIELDS, OUTPUT_FIELDS, SHIPMENT_FIELDS, SHIPMENT_ITEM_FIELDS
from orderbridge.api.routing import Endpoint
from orderbridge.api.settings import ApiSettings

STR = {"type": "string", "nullable": True}
YN = {"type": "string", "enum": ["Y", "N", "y", "n"]}
NUMBERISH = {"oneOf": [{"type": "number"}, {"type": "string"}], "nullable": True}


def _ref(name: str) -> dict[str, Any]:
    return {"$ref": f"#/components/schemas/{name}"}


def _obj(props: dict[str, Any], required: list[str] | None = None, *, extra: bool = True) -> dict[str, Any]:
    out: dict[str, Any] = {"type": "object", "properties": props, "additionalProperties": extra}
    if required:
        out["required"] = required
    return out


def _array(items: dict[str, Any], **kw: Any) -> dict[str, Any]:
    return {"type": "array", "items": items, **kw}


def _schemas(settings: ApiSettings) -> dict[str, Any]:
    shipment_item = _obj(dict.fromkeys(SHIPMENT_ITEM_FIELDS, STR))
    shipment = _obj({**dict.fromkeys(SHIPMENT_FIELDS, STR), "items": _array(_ref("ShipmentItem"))})
    item_props = {k: STR for k in ("line_no", "item", "lot_number", "quantity", "price", "discount", "addl_discount",
                                   "extended_amount", "tax", "shipping_surcharge", "line_item_id", "line_comment",
                                   "Description", "alt_sku", "filtered_sku", "line_location")}
    order_item = _obj({**item_props, "extra_fields": {"type": "object", "nullable": True},
                       "aliases": _array({"type": "string"})})
    order = _obj({**dict.fromkeys(INPUT_FIELDS, STR), **dict.fromkeys(OUTPUT_FIELDS, STR),
                  "order_status": {"type": "string", "enum": ["new", "at_wms", "partial", "shipped", "confirmed",
                                                              "error", "canceled"]},
                  "extra_fields": {"type": "object", "nullable": True}, "items": _array(_ref("OrderItem")),
                  "shipments": _array(_ref("Shipment"))}, ["cust_ref", "order_status", "items", "shipments"])
    input_item = _obj({"item": {"type": "string"}, "quantity": {"oneOf": [{"type": "integer"}, {"type": "string"}]},
                       "price": NUMBERISH, "description": STR, "discount": NUMBERISH, "addl_discount": NUMBERISH,
                       "tax": NUMBERISH, "line_item_id": STR, "extra_fields": {"type": "object"}},
                      ["item", "quantity"])
    input_props: dict[str, Any] = dict.fromkeys(INPUT_FIELDS, NUMBERISH)
    input_props.update(cust_ref={"type": "string", "maxLength": 200}, cust_po_no={"type": "string", "maxLength": 200},
                       items=_array(_ref("OrderItemInput"), minItems=1), extra_fields={"type": "object"})
    inventory = {
        kind: _obj({"sku": {"type": "string"}, "qty_available": {"type": kind}, "qty_on_hand": {"type": kind},
                    "wms_datetime": STR,
                    "aliases": {"oneOf": [{"type": "object", "additionalProperties": {"type": "string"}},
                                          {"type": "array", "maxItems": 0}]},
                    "warehouses": {"oneOf": [{"type": "object", "additionalProperties": _obj({
                        "warehouse": {"type": "string"}, "qty_available": {"type": kind},
                        "qty_on_hand": {"type": kind}, "wms_datetime": STR})}, {"type": "array", "maxItems": 0}]}},
                   ["sku", "qty_available", "qty_on_hand"])
        for kind in ("integer", "string")}
    return {
        "Error": _obj({"success_code": {"type": "boolean", "enum": [False]},
                       "error_code": {"type": "string", "enum": [INVALID, FAILURE, RATE_LIMIT]},
                       "message": {"type": "string"}, "status_message": {"type": "string"},
                       "error_response": {}}, ["success_code", "error_code", "message"]),
        "ShipmentItem": shipment_item, "Shipment": shipment, "OrderItem": order_item, "Order": order,
        "OrderList": _array(_ref("Order"), maxItems=100),
        "OrderStatus": _obj({k: STR for k in ("cust_ref", "cust_po_no", "delivered_to_wms_date", "order_status",
                                              "updated_date_time", "ship_country")}
                            | {"shipments": _array(_ref("Shipment"))}, ["cust_ref", "order_status", "shipments"]),
        "OrderItemInput": input_item,
        "OrderInput": _obj(input_props, ["cust_ref", "items"]),
        "OrderInputBody": {"oneOf": [_ref("OrderInput"),
                                     _array(_ref("OrderInput"), minItems=1, maxItems=settings.max_batch_orders)]},
        "BatchEntry": _obj({"cust_ref": STR, "cust_po_no": STR, "message": {"type": "string"},
                            "index_pos": {"type": "integer"}}),
        "BatchResult": _obj({"success": _array(_ref("BatchEntry")), "failed": _array(_ref("BatchEntry"))},
                            ["success", "failed"]),
        "CancelResult": _obj({"success": {"type": "boolean"}, "message": {"type": "string"}}, ["success", "message"]),
        "ConfirmBody": _obj({"order_status": {"type": "string", "enum": ["confirmed"]},
                             "shipments": _array(_obj({"tracking_no": {"type": "string"}}))}, ["order_status"]),
        "LegacyCancelBody": _obj({"cust_ref": {"type": "string"}}, ["cust_ref"]),
        "InventoryList": _array(inventory["integer"]),
        "InventorySingle": inventory["string"],
        "Product": _obj({"sku": {"type": "string"}, "name": STR, "description": STR,
                         "retail_price": {"type": "number", "nullable": True}, "wholesale_price": NUMBERISH,
                         "weight_lbs": NUMBERISH, "wms_product_main_id": STR, "last_updated_datetime": STR,
                         "aliases": _array(_obj({"code_type": {"type": "string"}, "code": {"type": "string"}}))},
                        ["sku", "aliases"]),
        "ShipMethodList": _array(_obj({"carrier": {"type": "string"}, "code": {"type": "string"},
                                       "description": {"type": "string"}}, ["carrier", "code", "description"])),
        "MerchantList": _array(_obj({"merchant_pk": {"type": "string"}, "name": {"type": "string"}},
                                    ["merchant_pk", "name"])),
        "WarehouseShipment": _obj({"carrier": {"type": "string"}, "method": {"type": "string"},
                                   "tracking_no": {"type": "string"}, "tracking_no_secondary": {"type": "string"},
                                   "date": {"type": "string"},
                                   "items": _array(_obj({"item": {"type": "string"},
                                                         "quantity": {"oneOf": [{"type": "integer"},
                                                                                {"type": "string"}]}},
                                                        ["item", "quantity"]))}),
        "WarehouseUpdateBody": _obj({"order_status": {"type": "string", "enum": ["at_wms", "shipped"]},
                                     "shipments": _array(_ref("WarehouseShipment"))}, ["order_status"]),
        "WarehouseUpdateResult": _obj({"cust_ref": {"type": "string"}, "order_status": {"type": "string"},
                                       "shipments_added": {"type": "integer"},
                                       "shipments_already_known": {"type": "integer"}}, ["cust_ref", "order_status"]),
        "StockRow": _obj({"sku": {"type": "string", "minLength": 1, "maxLength": 200},
                          "qty_available": {"oneOf": [{"type": "integer"}, {"type": "string"}]},
                          "qty_on_hand": {"oneOf": [{"type": "integer"}, {"type": "string"}]},
                          "warehouse": {"type": "string"}}, ["sku", "qty_available"]),
        "InventoryPushBody": {"oneOf": [_array(_ref("StockRow"), minItems=1),
                                        _obj({"inventory": _array(_ref("StockRow"), minItems=1)}, ["inventory"])]},
        "InventoryPushResult": _obj({"updated": {"type": "integer"}}, ["updated"]),
        "CreateResult": _obj({"success_code": {"type": "boolean", "enum": [True]}, "cust_ref": {"type": "string"},
                              "order_number": {"type": "string"}, "message": {"type": "string"},
                              "response": _ref("BatchResult")}, ["success_code"]),
    }


def _query_params(settings: ApiSettings, ep: Endpoint) -> dict[str, dict[str, Any]]:
    max_limit = 250 if ep.path == "/merchant/inventory" else 100
    return {
        "limit": {"type": "integer", "minimum": 1, "maximum": max_limit, "default": 20},
        "page": {"type": "integer", "minimum": 1, "default": 1},
        "from_date": {"type": "string", "description": "ISO 8601 with zone, or YYYY-MM-DD"},
        "to_date": {"type": "string", "description": "ISO 8601 with zone, or YYYY-MM-DD (inclusive)"},
        "order_source": {"type": "string", "description": "name of the source connection"},
        **{k: YN for k in ("include_filtered_items", "include_order_extras", "include_line_extras",
                           "include_aliases")},
    }


def _success(ep: Endpoint) -> dict[str, Any]:
    if ep.response == "CreateResult":
        return _ref("CreateResult")
    props: dict[str, Any] = {"success_code": {"type": "boolean", "enum": [True]}}
    if ep.response:
        props["response"] = _ref(ep.response)
    return _obj(props, ["success_code", *(["response"] if ep.response else [])])


def _operation(settings: ApiSettings, ep: Endpoint) -> dict[str, Any]:
    params: list[dict[str, Any]] = []
    for name in ep.path_params:
        schema = {"type": "string", "enum": list(LIST_FILTERS)} if name == "status" else {"type": "string",
                                                                                        "minLength": 1}
        params.append({"name": name, "in": "path", "required": True, "schema": schema})
    query = _query_params(settings, ep)
    params += [{"name": q, "in": "query", "required": False, "schema": query[q]} for q in ep.query]
    if not ep.path.startswith("/cart/"):
        params.append({"name": "X-Merchant-Pk", "in": "header", "required": False,
                       "schema": {"type": "string", "pattern": "^[0-9]+$"},
                       "description": "warehouse keys: the merchant to act for (wms/merchant/list)"})
    headers = {"X-CartRover-Process-ID": {"schema": {"type": "string"}, "description": "request id"}}
    if ep.rate_limited:
        headers["X-CartRover-Api-Minute-Hits-Remaining"] = {"schema": {"type": "string"},
                                                            "description": "calls left in the leaky bucket"}
    op: dict[str, Any] = {
        "operationId": ep.operation_id, "summary": ep.summary, "tags": [ep.tag], "parameters": params,
        "responses": {
            "200": {"description": "CartRover envelope: success, or an application error (also HTTP 200)",
                    "headers": headers,
                    "content": {"application/json": {"schema": {"oneOf": [_success(ep), _ref("Error")]}}}},
            "500": {"description": "server fault", "headers": headers,
                    "content": {"application/json": {"schema": _ref("Error")}}},
        },
    }
    if ep.description:
        op["description"] = ep.description
    if ep.extension:
        op["x-orderbridge-extension"] = True
    if ep.body:
        form = _ref("OrderInput") if ep.body == "OrderInputBody" else _ref(ep.body)
        op["requestBody"] = {"required": True, "content": {
            "application/json": {"schema": _ref(ep.body)},
            "application/x-www-form-urlencoded": {"schema": form}}}
        if ep.body != "OrderInputBody":
            del op["requestBody"]["content"]["application/x-www-form-urlencoded"]
    return op


def openapi_document(endpoints: list[Endpoint], settings: ApiSettings) -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {
        "/openapi.json": {"get": {"operationId": "get_openapi", "summary": "This description", "security": [],
                                  "tags": ["Meta"], "responses": {"200": {"description": "OpenAPI document",
                                                                          "content": {"application/json": {
                                                                              "schema": {"type": "object"}}}}}}}}
    for ep in endpoints:
        paths.setdefault(ep.path, {})[ep.method.lower()] = _operation(settings, ep)
    return {
        "openapi": "3.0.3",
        "info": {"title": "orderbridge CartRover-compatible API", "version": __version__,
                 "description": "CartRover's /v1 API as served by orderbridge (see docs/api.md). Application "
                                f"errors are HTTP 200 with success_code false. Rate limit: a leaky bucket of "
                                f"{settings.bucket_size} calls per key, one leaking every {settings.leak_seconds} s."},
        "servers": [{"url": "/v1"}],
        "security": [{"basicAuth": []}, {"apiUser": [], "apiKey": []}],
        "paths": paths,
        "components": {
            "schemas": _schemas(settings),
            "securitySchemes": {
                "basicAuth": {"type": "http", "scheme": "basic", "description": "api_user:api_key"},
                "apiUser": {"type": "apiKey", "in": "query", "name": "api_user"},
                "apiKey": {"type": "apiKey", "in": "query", "name": "api_key"},
            },
        },
    }
