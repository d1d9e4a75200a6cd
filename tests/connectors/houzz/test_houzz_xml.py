"""client.py's request bodies: any text a field holds reaches Houzz as the same text."""

from __future__ import annotations

from xml.etree import ElementTree as ET

from hypothesis import given
from hypothesis import strategies as st

from orderbridge.connectors.houzz.client import xml_document

# Characters XML 1.0 can carry (a document cannot hold most control characters at all).
XML_TEXT = st.text(st.characters(blacklist_categories=["Cs", "Cc"]) | st.sampled_from("\t\n"), max_size=40)


@given(st.lists(st.tuples(st.sampled_from(["OrderId", "Action", "ShippingMethod", "TrackingNumber", "SKU"]),
                          XML_TEXT), max_size=5))
def test_fields_read_back_as_written(fields: list[tuple[str, str]]) -> None:
    root = ET.fromstring(xml_document("UpdateOrderRequest", fields))
    assert root.tag == "UpdateOrderRequest"
    assert [(el.tag, el.text or "") for el in root] == fields


def test_markup_in_a_value_is_text() -> None:
    body = xml_document("UpdateOrderRequest", [("ShippingMethod", "UPS & <Freight> \"A\" 'B' Zoë")])
    assert body == ("<UpdateOrderRequest><ShippingMethod>UPS &amp; &lt;Freight&gt; \"A\" 'B' Zoë"
                    "</ShippingMethod></UpdateOrderRequest>").encode()
