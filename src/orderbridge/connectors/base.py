"""The contract between the engine and every connector.

A connector is a class registered under the ``orderbridge.connectors`` entry-point group. It
declares its role (source or backend), its settings and credentials (pydantic models: the
dashboard builds its forms from their JSON schema), what it can do (``Capabilities``), and
implements the async methods of its role. The engine only ever talks to these methods; wire
formats stay in the connector's ``client.py`` and field translation in its ``mapping.py``.

Every method may raise the errors of ``orderbridge.connectors.errors``; anything else is treated
as a bug in the connector and handled like a transient error (retried, then parked with an alert).
"""

from __future__ import annotations

import enum
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from orderbridge.connectors.errors import ConfigError
from orderbridge.connectors.http import ApiClient, RateSpec
from orderbridge.domain.models import Cancellation, Order, Shipment, StockLevel

if TYPE_CHECKING:
    from orderbridge.connectors.stored_reads import ReadEntry


class Role(enum.StrEnum):
    SOURCE = "source"
    BACKEND = "backend"


class ConfirmMode(enum.StrEnum):
    """When the engine asks a source to confirm shipments."""

    PER_SHIPMENT = "per_shipment"  # each backend shipment confirmed on its own (item-level APIs)
    ORDER_WHEN_COMPLETE = "order_when_complete"  # once, when every line has shipped
    ORDER_AT_FIRST = "order_at_first"  # once, at the first shipment


@dataclass(frozen=True)
class Capabilities:
    # sources
    download: bool = False
    workflow: bool = False
    shipment_upload: bool = False
    multiple_tracking: bool = False  # accepts several tracking numbers in one confirmation
    item_level_shipments: bool = False  # can confirm a shipment holding only some lines
    inventory_push: bool = False
    cancel_detection: bool = False
    webhooks: bool = False
    diagnose: bool = False
    # backends
    deliver: bool = False
    lookup_by_reference: bool = False
    idempotency_key: bool = False
    shipment_pickup: bool = False
    inventory_pickup: bool = False
    cancel: bool = False


class Settings(BaseModel):
    """Base for a connector's settings. Field descriptions are the help text users see."""

    model_config = ConfigDict(extra="forbid")


class SourceSettings(Settings):
    earliest_order_date: date | None = Field(
        default=None,
        description="Orders placed before this date are never imported (initial integration).",
    )
    inventory_enabled: bool = Field(default=True, description="Push stock levels to this source.")
    inventory_floor: int = Field(
        default=0, ge=0, description="When available stock falls below this level, push 0."
    )
    inventory_buffer: int = Field(
        default=0, ge=0, description="Hold back this many units from what is pushed."
    )


class BackendSettings(Settings):
    pass


class Credentials(BaseModel):
    """Base for a connector's credentials. Every field is a secret: encrypted, never shown."""

    model_config = ConfigDict(extra="forbid")


@dataclass
class ConnectionContext:
    """What a connector instance knows of its connection."""

    connection_id: int
    name: str
    merchant: str
    settings: Any  # an instance of the connector's settings_model
    credentials: Any  # an instance of the connector's credentials_model
    base_url: str  # the production URL, or the sandbox's when in test mode
    test_mode: bool
    http: ApiClient
    ledger: Any = None  # the hub's database engine, for connectors whose external system is the hub's API


# ---------------------------------------------------------------- what sources hand the engine


@dataclass
class DownloadedOrder:
    """An order a source wants imported. ``order`` is None when mapping failed (see ``error``)."""

    external_id: str
    raw: Mapping[str, Any]
    order: Order | None = None
    error: str = ""  # a merchant-readable reason the order could not be mapped
    fix: str = ""
    source_status: str = ""
    raw_digest: bytes | None = None  # of the raw entry as read (a ReadEntry's), stored with the order


@dataclass
class SkippedOrder:
    """An order the source has that the connection's filters exclude, with the reason."""

    external_id: str
    reason: str
    raw: Mapping[str, Any] = field(default_factory=dict)
    source_status: str = ""
    order_date: datetime | None = None
    final: bool = False  # True when it can never become eligible (e.g. already shipped)


DownloadItem = DownloadedOrder | SkippedOrder


@dataclass(frozen=True)
class Window:
    """A UTC time range to read; ``since`` None means 'from the beginning' (bounded by settings)."""

    since: datetime | None
    until: datetime
    # Scheduled polls pass over entries the ledger already holds unchanged (see
    # connectors/stored_reads.py); a re-pull asked for by a person reads everything again.
    skip_stored: bool = False
    # For a backend's shipments: the engine's look-up of which of these ids the ledger has
    # recorded (a recorded shipment never changes there, so a scheduled poll need not map it again).
    recorded: Callable[[list[str]], Awaitable[set[str]]] | None = None
    # A source's slower safety-net read of everything recent (e.g. Houzz's re-check of every recent
    # order for cancellations): when the last one was made, as the ledger keeps it across restarts
    # (a hub started by cron each few minutes would otherwise make it at every start), and where
    # the connector says it made one now.
    full_read_at: datetime | None = None
    full_read_done: Callable[[datetime], None] | None = None

    async def recorded_among(self, external_ids: list[str]) -> set[str]:
        """The ids among these a connector may pass over: recorded, and the window lets it skip them."""
        if not self.skip_stored or self.recorded is None or not external_ids:
            return set()
        return await self.recorded(external_ids)


@dataclass(frozen=True)
class WorkflowStep:
    name: str  # e.g. "process", "charge"
    label: str  # e.g. "Mark as Processed at Houzz"
    blocks_delivery: bool = True


def order_from_ledger(data: Order | str | Mapping[str, Any]) -> Order:
    """The canonical order as the ledger holds it: its JSON text (validated straight from the text),
    the decoded JSON, or the model already."""
    if isinstance(data, Order):
        return data
    return Order.model_validate_json(data) if isinstance(data, str) else Order.model_validate(data)


class StoredOrder:
    """What the engine passes back to a connector about an order it holds.

    The order and the source's payload may come as the ledger's JSON text, decoded on first use:
    most steps (a Process, a Charge, a Ship) need only the ids, and decoding both for each of an
    order's steps was a noticeable share of the hub's CPU.
    """

    def __init__(self, order_id: int, external_id: str, cust_po_no: str, cust_ref: str,
                 order: Order | str | Mapping[str, Any], raw: Mapping[str, Any] | str | None,
                 backend_order_id: str = "") -> None:
        self.order_id = order_id
        self.external_id = external_id
        self.cust_po_no = cust_po_no
        self.cust_ref = cust_ref
        self.backend_order_id = backend_order_id
        self._order = order
        self._raw = raw

    @property
    def order(self) -> Order:
        if not isinstance(self._order, Order):
            self._order = order_from_ledger(self._order)
        return self._order

    @property
    def raw(self) -> Mapping[str, Any]:
        if isinstance(self._raw, str):
            self._raw = json.loads(self._raw)
        return self._raw if isinstance(self._raw, Mapping) else {}

    def __repr__(self) -> str:
        return f"StoredOrder(order_id={self.order_id}, external_id={self.external_id!r})"


@dataclass
class UploadResult:
    note: str = ""  # written to the order's timeline, e.g. "3 packages: tracking numbers joined"


@dataclass
class InventoryUpdate:
    sku: str
    quantity: int


@dataclass
class SurveyItem:
    """One order as the source sees it, for 'where is my order?'."""

    external_id: str
    source_status: str
    order_date: datetime | None
    not_eligible_reason: str = ""  # why this connection's filters exclude it, if they do


@dataclass
class WebhookEvent:
    event_id: str
    kind: str  # "order" or "cancel"
    external_ids: list[str]


@dataclass
class DeliveryRequest:
    """The order as it should be created in a backend: SKUs and ship method already mapped.

    ``options`` is the route's backend options: an instance of the backend's
    ``route_options_model`` (per-source settings such as Holded's document type), or None.
    ``source_connection`` names the source, for backends that keep per-store data apart.
    """

    order: Order
    cust_ref: str
    cust_po_no: str
    carrier: str = ""
    service: str = ""
    options: Any = None
    source_connection: str = ""


@dataclass
class CancelResult:
    canceled: bool
    too_late: bool = False  # already shipped or finalised: cannot be undone at the backend
    note: str = ""


@dataclass
class CheckResult:
    ok: bool
    message: str


# ------------------------------------------------------------------------------ connectors


class Connector:
    type_name: ClassVar[str]
    display_name: ClassVar[str]
    role: ClassVar[Role]
    settings_model: ClassVar[type[Settings]] = Settings
    credentials_model: ClassVar[type[Credentials]] = Credentials
    capabilities: ClassVar[Capabilities] = Capabilities()
    production_url: ClassVar[str] = ""
    sandbox_name: ClassVar[str] = ""  # the `orderbridge sandbox NAME` emulating this API

    def __init__(self, ctx: ConnectionContext) -> None:
        self.ctx = ctx

    @property
    def settings(self) -> Any:
        return self.ctx.settings

    @classmethod
    def rate_spec(cls, credentials: Any) -> RateSpec:
        """The call budget of one external account (shared by every job of that account)."""
        return RateSpec(calls=5, period=1.0)

    @classmethod
    def default_base_url(cls, settings: Any, test_mode: bool) -> str:
        """The API address when the connection names no base_url (e.g. the vendor's own sandbox
        host in test mode); an explicit base_url always wins."""
        return cls.production_url

    @classmethod
    def account_key(cls, credentials: Any, base_url: str) -> str:
        """Identifies the external account that a rate budget is shared across."""
        return f"{cls.type_name}:{base_url}"

    @classmethod
    def settings_problems(cls, settings: Any) -> list[str]:
        """Contradictions in a valid settings object, in words; reported when saved."""
        return []

    async def check(self) -> CheckResult:
        """Check credentials and access; say what is wrong in words a merchant understands."""
        raise self.unsupported("a credential check")

    def rotated_credentials(self) -> dict[str, Any] | None:
        """New credentials when the API rotated them (e.g. a refresh token); the engine stores them."""
        return None

    def unsupported(self, what: str) -> ConfigError:
        """The error for a capability this connector does not declare."""
        return ConfigError(
            f"{self.display_name} connections cannot do {what}",
            fix="check the connector's capabilities; this is a bug if the engine asked for it",
        )

    async def aclose(self) -> None:
        await self.ctx.http.aclose()


class SourceConnector(Connector):
    role = Role.SOURCE
    settings_model: ClassVar[type[Settings]] = SourceSettings

    def download(self, window: Window) -> AsyncIterator[DownloadItem | ReadEntry]:
        """Orders created or changed within the window, eligible ones and skipped ones.

        A connector that re-reads many unchanged orders may hand them over unmapped, as
        ``stored_reads.read_entry(id, raw, classify)``: the engine maps only those the ledger does
        not hold exactly as read."""
        raise self.unsupported('download')

    async def fetch_order(self, external_id: str) -> DownloadItem | None:
        """One order, for webhooks, re-pulls and diagnosis; None when the source has no such order."""
        raise self.unsupported('fetch_order')

    def workflow_steps(self, order: Order) -> list[WorkflowStep]:
        return []

    async def run_workflow_step(self, step: str, order: StoredOrder, *, retry: bool = False) -> str:
        """Perform one workflow step; return a note for the timeline. Idempotent. ``retry``: an
        earlier attempt failed or was interrupted, so it may have reached the source."""
        raise self.unsupported('run_workflow_step')

    def confirm_mode(self) -> ConfirmMode:
        if self.capabilities.item_level_shipments:
            return ConfirmMode.PER_SHIPMENT
        return ConfirmMode.ORDER_WHEN_COMPLETE

    async def upload_shipments(self, order: StoredOrder, shipments: list[Shipment]) -> UploadResult:
        """Confirm these shipments to the source (one, or all of the order's in order modes)."""
        raise self.unsupported('upload_shipments')

    async def is_confirmed(self, order: StoredOrder, shipments: list[Shipment]) -> bool | None:
        """After a crash mid-upload: does the source already show this confirmation? None: unknown."""
        return None

    async def push_inventory(self, updates: list[InventoryUpdate]) -> dict[str, str]:
        """Push stock levels; return {sku: error message} for the ones refused."""
        raise self.unsupported('push_inventory')

    def cancellations(self, window: Window) -> AsyncIterator[Cancellation]:
        raise self.unsupported('cancellations')

    async def survey(self, window: Window, external_id: str | None = None) -> list[SurveyItem]:
        """Every order the source has in the window, whatever its status (for diagnosis)."""
        raise self.unsupported('survey')

    async def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> WebhookEvent:
        """Verify and decode a webhook delivery; raise AuthError when the signature is wrong."""
        raise self.unsupported('parse_webhook')


class BackendConnector(Connector):
    role = Role.BACKEND
    settings_model: ClassVar[type[Settings]] = BackendSettings
    # Per-route options (set on each source -> this backend route), e.g. a document type.
    route_options_model: ClassVar[type[Settings]] = Settings

    def requires_payment(self, request: DeliveryRequest) -> bool:
        """True when this order may only be created once the source reports it paid.

        The engine then holds the delivery (timeline: "waiting for payment") until a later
        download shows the order paid.
        """
        return False

    async def find_order(self, request: DeliveryRequest) -> str | None:
        """Look the order up by our reference; its backend id, or None when it is not there."""
        raise self.unsupported('find_order')

    async def create_order(self, request: DeliveryRequest, idempotency_key: str) -> str:
        """Create the order; return the backend's order id."""
        raise self.unsupported('create_order')

    def take_delivery_note(self, cust_ref: str) -> str:
        """Warnings about the last delivery of this reference (e.g. a line imported without a
        product), written to the order's timeline; empty when there is nothing to say."""
        return ""

    def shipments(self, window: Window) -> AsyncIterator[Shipment]:
        """Shipments made within the window. A connector may pass over those
        ``window.recorded_among`` names (the ledger's, when ``window.skip_stored`` is set)."""
        raise self.unsupported('shipments')

    async def stock_levels(self) -> list[StockLevel]:
        raise self.unsupported('stock_levels')

    async def cancel_order(self, backend_order_id: str, request: DeliveryRequest) -> CancelResult:
        raise self.unsupported('cancel_order')
