"""Houzz Seller and Houzz Vendor: the two programs share one API and most of this code.

Seller orders go New -> In Production (Process) -> Charged (Charge) -> Shipped; the hub can do
Process and Charge. Vendor orders arrive already Charged. Houzz knows only order-level
shipping: one carrier and one tracking value per order.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from functools import partial
from typing import Any, ClassVar, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator

from orderbridge.connectors.base import (
    Capabilities,
    CheckResult,
    ConfirmMode,
    Credentials,
    DownloadItem,
    InventoryUpdate,
    SourceConnector,
    SourceSettings,
    StoredOrder,
    SurveyItem,
    UploadResult,
    Window,
    WorkflowStep,
)
from orderbridge.connectors.errors import AuthError, ConfigError, ConnectorError, DataError, NotFound
from orderbridge.connectors.houzz.client import HouzzClient
from orderbridge.connectors.houzz.mapping import (
    LABELS,
    RANK,
    Program,
    Rules,
    Status,
    cancellation,
    classify,
    normalize_status,
    order_id_of,
    survey_item,
)
from orderbridge.connectors.http import RateSpec
from orderbridge.connectors.stored_reads import ReadEntry, read_entry
from orderbridge.domain.models import Cancellation, Order, Shipment, utcnow
from orderbridge.pacing import Paced

WAIT_FOR = {"New and In Production": Status.NEW, "In Production": Status.IN_PRODUCTION, "Charged": Status.CHARGED}
DEFAULT_CARRIERS = {
    "UPS": "UPS", "United Parcel Service": "UPS", "FedEx": "FedEx", "Federal Express": "FedEx",
    "USPS": "USPS", "United States Postal Service": "USPS", "DHL": "DHL", "DHL Express": "DHL",
    "OnTrac": "OnTrac", "LTL": "LTL", "Freight": "Freight", "Other": "Other",
}
INVENTORY_CONCURRENCY = 4
STATUS_REREAD_SHARE = 4.0
SETTINGS_HELP_ORDER_STATUS = (
    "Which Houzz order status to wait for before loading orders. 'New and In Production' (default) loads "
    "orders as soon as they are placed; 'In Production' waits until you mark them Processed in Houzz; "
    "'Charged' waits until they are charged (then turn off both Mark Orders options). Orders already past "
    "the chosen status (for example Charged) are loaded too."
)


class HouzzCredentials(Credentials):
    app_id: str = Field(min_length=1, title="Application ID",
                        description="The App ID shown in Houzz Seller Central > Settings > API.")
    username: str = Field(min_length=1, title="Username",
                          description="Your Houzz seller user name, shown with the App ID.")
    token: str = Field(min_length=1, title="Application Token",
                       description="The Token shown in Seller Central > Settings > API (tick 'Update product "
                                   "inventory' and 'List and process orders', then Complete Registration).")


class HouzzSettings(SourceSettings):
    confirm_when: Literal["all_shipped", "first_shipment"] = Field(
        default="all_shipped",
        description="Houzz marks the whole order shipped at once. 'all_shipped': confirm when every line has "
                    "shipped; 'first_shipment': confirm with the first shipment.")
    tracking_numbers: Literal["first", "joined"] = Field(
        default="first",
        description="Houzz takes one tracking value per order. 'first': the first package's number (the others "
                    "stay in orderbridge); 'joined': every number, comma-separated.")
    tracking_max_length: int = Field(
        default=255, ge=20, le=4000, description="Longest tracking value sent when numbers are joined.")
    carrier_map: dict[str, str] = Field(
        default_factory=lambda: dict(DEFAULT_CARRIERS),
        description="Carrier names from your warehouse -> the carrier name sent to Houzz (matched ignoring case; "
                    "'UPS Ground' matches 'UPS'). Unmapped carriers are sent as they are.")
    houzz_timezone: str = Field(
        default="UTC", description="Time zone of Houzz order dates (IANA name, e.g. America/Los_Angeles).")
    lookback_days: int = Field(
        default=14, ge=1, le=90,
        description="Houzz filters orders by their creation date, so orders created up to this many days ago "
                    "are re-checked for status changes (e.g. charged later) and cancellations.")
    status_recheck_seconds: float = Field(
        default=60, ge=0,
        description="How often orders created before the last read are re-read by status, to find those that "
                    "became ready since (charged later, by hand or by Houzz's auto-authorisation); 0: every run.")
    cancel_recheck_minutes: int = Field(
        default=60, ge=0,
        description="How often every recent order is re-read to catch cancellations the cancelled-status "
                    "filter misses (0: every run).")
    read_format: Literal["json", "xml"] = Field(default="json", description="Response format used for reads.")

    @field_validator("houzz_timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}; use an IANA name such as America/Los_Angeles") from None
        return value

    @field_validator("carrier_map")
    @classmethod
    def _carriers(cls, value: dict[str, str]) -> dict[str, str]:
        empty = [k for k, v in value.items() if not v.strip()]
        if empty:
            raise ValueError(f"carriers {empty} map to an empty Houzz name")
        return value


class HouzzSellerSettings(HouzzSettings):
    order_status: Literal["New and In Production", "In Production", "Charged"] = Field(
        default="New and In Production", title="Order Status", description=SETTINGS_HELP_ORDER_STATUS)
    mark_processed: bool = Field(
        default=True, title="Mark Orders as Processed",
        description="Mark loaded orders as Processed (In Production) in Houzz. Turn off if you process them "
                    "yourself in Seller Central.")
    mark_charged: bool = Field(
        default=True, title="Mark Orders as Charged",
        description="Charge the buyer's card in Houzz once loaded; orders are sent to your warehouse after "
                    "they are charged. Turn off if you charge them yourself.")


class HouzzVendorSettings(HouzzSettings):
    """Vendor orders are charged by Houzz: the connection loads Charged orders and runs no steps."""


class _HouzzSource(SourceConnector):
    program: ClassVar[Program]
    credentials_model = HouzzCredentials
    production_url = "https://api.houzz.com"
    sandbox_name = "houzz"

    def __init__(self, ctx: Any) -> None:
        super().__init__(ctx)
        creds = ctx.credentials
        self.client = HouzzClient(ctx.http, app_id=creds.app_id, username=creds.username, token=creds.token,
                                  read_format=self.settings.read_format)
        self.tz = ZoneInfo(self.settings.houzz_timezone)
        self._cancel_status = "Canceled"
        self._status_reread = Paced(STATUS_REREAD_SHARE)

    # ------------------------------------------------------------------------ budgeting
    @classmethod
    def rate_spec(cls, credentials: Any) -> RateSpec:
        # The sandbox enforces 60 calls a minute per Application ID; stay under it.
        return RateSpec(calls=55, period=60.0)

    @classmethod
    def account_key(cls, credentials: Any, base_url: str) -> str:
        # Houzz counts calls per Application ID, whichever program or user makes them.
        return f"houzz:{base_url}:{credentials.app_id}"

    # ------------------------------------------------------------------------- settings
    def wait_for(self) -> Status:
        return Status.CHARGED

    def rules(self) -> Rules:
        return Rules(program=self.program, wait_for=self.wait_for(), earliest=self.settings.earliest_order_date,
                     tz=self.tz)

    def polled_statuses(self) -> list[str]:
        """The getOrders filters that can hold orders this connection imports."""
        names = {Status.NEW: "New", Status.IN_PRODUCTION: "InProduction", Status.CHARGED: "Charged"}
        return [names[s] for s in (Status.NEW, Status.IN_PRODUCTION, Status.CHARGED)
                if RANK[s] >= RANK[self.wait_for()]]

    # ---------------------------------------------------------------------------- check
    async def check(self) -> CheckResult:
        now = utcnow()
        try:
            await self.client.read("getOrders", {"Status": "New", "From": now.strftime("%Y-%m-%d"),
                                                 "To": now.strftime("%Y-%m-%d"), "Start": 0, "NumberOfItems": 1})
        except AuthError as exc:
            return CheckResult(False, _auth_words(exc, "orders"))
        except ConnectorError as exc:
            return CheckResult(False, f"Houzz could not be checked: {exc.message}")
        if self.settings.inventory_enabled:
            try:
                await self.client.first_listing()
            except AuthError as exc:
                return CheckResult(False, _auth_words(exc, "inventory"))
            except ConnectorError as exc:
                return CheckResult(False, f"Houzz listings could not be read: {exc.message}")
        return CheckResult(True, f"connected to Houzz as {self.ctx.credentials.username} ({self.display_name})")

    # ------------------------------------------------------------------------- download
    async def download(self, window: Window) -> AsyncIterator[DownloadItem | ReadEntry]:
        rules = self.rules()
        mapped_with = repr(rules).encode()
        floor = window.until - timedelta(days=self.settings.lookback_days)
        start = window.since
        if start is None:
            # First read: the last lookback_days (so orders placed before the earliest order date
            # are reported as skipped), or further back to the earliest order date.
            earliest = self.settings.earliest_order_date
            start = min(floor, datetime.combine(earliest, datetime.min.time(), self.tz)) if earliest else floor
        seen: set[str] = set()
        # Everything created in the window, whatever its status: eligible orders and the skips.
        async for raw in self.client.iter_orders("All", start, window.until, self.tz):
            oid = order_id_of(raw)
            seen.add(oid)
            yield read_entry(oid, raw, partial(classify, raw, rules), mapped_with)
        # Houzz filters on the creation date: older orders that reached an importable status
        # since their window was read (charged by hand, or released by Houzz's auto-authorisation
        # 30 minutes after they were placed) are found by status. This re-reads every open order;
        # the ones the ledger holds as they are cost a digest, not a mapping.
        if window.since is not None and window.since > floor and self._status_reread_due(window):
            began = time.monotonic()
            for status in self.polled_statuses():
                async for raw in self.client.iter_orders(status, floor, window.since, self.tz):
                    oid = order_id_of(raw)
                    if oid not in seen:
                        seen.add(oid)
                        yield read_entry(oid, raw, partial(classify, raw, rules), mapped_with)
            self._status_reread.done(began)

    def _status_reread_due(self, window: Window) -> bool:
        """A scheduled poll re-reads by status every status_recheck_seconds, and at most once per
        STATUS_REREAD_SHARE times the last re-read's duration: with many open orders the re-read
        costs seconds, and polls then spend at most about 1/(1 + STATUS_REREAD_SHARE) of their
        time on it, whatever the volume."""
        return not window.skip_stored or self._status_reread.due(self.settings.status_recheck_seconds)

    async def fetch_order(self, external_id: str) -> DownloadItem | None:
        try:
            raw = await self._current(external_id)
        except NotFound:
            return None
        return classify(raw, self.rules())

    async def _current(self, external_id: str) -> dict[str, Any]:
        floor = utcnow() - timedelta(days=self.settings.lookback_days)
        return await self.client.get_order(external_id, tz=self.tz, search_from=floor)

    # ------------------------------------------------------------------------- shipments
    def confirm_mode(self) -> ConfirmMode:
        if self.settings.confirm_when == "first_shipment":
            return ConfirmMode.ORDER_AT_FIRST
        return ConfirmMode.ORDER_WHEN_COMPLETE

    def houzz_carrier(self, carrier: str) -> tuple[str, str]:
        """(name sent to Houzz, remark for the timeline)."""
        wanted = carrier.strip().lower()
        table = {k.strip().lower(): v for k, v in self.settings.carrier_map.items()}
        if wanted in table:
            return table[wanted], ""
        for key in sorted(table, key=len, reverse=True):
            if key and wanted.startswith(key):
                return table[key], ""
        if not wanted:
            return table.get("other", "Other"), "no carrier given"
        return carrier.strip(), f"carrier {carrier.strip()!r} is not in the carrier map; sent as it is"

    def tracking_value(self, numbers: list[str]) -> tuple[str, str]:
        """(TrackingNumber sent, how it was chosen)."""
        if self.settings.tracking_numbers == "first" or len(numbers) == 1:
            how = "the first tracking number (Houzz takes one per order)" if len(numbers) > 1 else \
                "its tracking number"
            return numbers[0], how
        kept: list[str] = []
        for n in numbers:
            if len(",".join([*kept, n])) > self.settings.tracking_max_length:
                break
            kept.append(n)
        kept = kept or [numbers[0][: self.settings.tracking_max_length]]
        how = "tracking numbers joined"
        if len(kept) < len(numbers):
            how += f" ({len(kept)} of {len(numbers)} fit in {self.settings.tracking_max_length} characters)"
        return ",".join(kept), how

    async def upload_shipments(self, order: StoredOrder, shipments: list[Shipment]) -> UploadResult:
        packages = [(p.tracking_number, p.carrier or s.carrier) for s in shipments for p in s.packages]
        packages += [(t, s.carrier) for s in shipments for t in s.tracking_numbers]
        numbers = list(dict.fromkeys(t.strip() for t, _ in packages if t.strip()))
        if not numbers:
            raise DataError("the shipment has no tracking number and Houzz requires one",
                            fix="add the tracking number in the warehouse system; the confirmation is then retried")
        first_carrier = next((c for t, c in packages if t.strip() and c), shipments[0].carrier if shipments else "")
        carrier, remark = self.houzz_carrier(first_carrier)
        tracking, how = self.tracking_value(numbers)
        remarks = [r for r in (remark, await self._ship(order, carrier, tracking)) if r]
        count = len(numbers)
        note = f"{count} package{'s' if count != 1 else ''}; sent {how} with carrier {carrier}: {tracking}"
        return UploadResult(note=note + (f" ({'; '.join(remarks)})" if remarks else ""))

    async def _ship(self, order: StoredOrder, carrier: str, tracking: str, *, recharged: bool = False) -> str:
        """Send the Ship action; return a remark when Houzz needed more than that."""
        try:
            await self.client.update_order(order.external_id, "Ship", ("ShippingMethod", carrier),
                                           ("TrackingNumber", tracking))
        except NotFound:
            raise DataError("Houzz no longer has this order", fix="check the order in Seller Central") from None
        except DataError as exc:
            if exc.code != "InvalidStateTransition" or recharged:
                raise DataError(f"Houzz refused the shipment confirmation: {exc.message}", code=exc.code,
                                fix="check the carrier and tracking number, then retry the confirmation") from None
            return await self._after_refused_ship(order, carrier, tracking, exc)
        return "authorisation had lapsed: charged again first" if recharged else ""

    async def _after_refused_ship(self, order: StoredOrder, carrier: str, tracking: str, exc: DataError) -> str:
        raw = await self._current(order.external_id)
        status = normalize_status(raw.get("Status"))
        if status == Status.SHIPPED:
            # An earlier attempt, or someone in Seller Central, shipped it: nothing left to confirm.
            return f"Houzz already showed the order shipped with tracking {raw.get('TrackingNumber') or 'unknown'}"
        if status == Status.CANCELED:
            raise DataError("the order was cancelled at Houzz, so the shipment cannot be confirmed",
                            fix="settle the shipped goods with the buyer in Seller Central")
        if status == Status.IN_PRODUCTION and self.program == Program.SELLER and self.settings.mark_charged:
            # The card authorisation lapsed (Houzz reverts unshipped Charged orders after 7 days).
            await self._charge(order.external_id)
            return await self._ship(order, carrier, tracking, recharged=True)
        label = LABELS.get(status, "unknown") if status else "unknown"
        raise DataError(f"Houzz ships only Charged orders and this one is {label}: {exc.message}",
                        fix="charge the order in Houzz Seller Central, then retry the confirmation")

    async def is_confirmed(self, order: StoredOrder, shipments: list[Shipment]) -> bool | None:
        try:
            raw = await self._current(order.external_id)
        except NotFound:
            return None
        return normalize_status(raw.get("Status")) == Status.SHIPPED

    # ------------------------------------------------------------------------- inventory
    async def push_inventory(self, updates: list[InventoryUpdate]) -> dict[str, str]:
        gate = asyncio.Semaphore(INVENTORY_CONCURRENCY)

        async def push(u: InventoryUpdate) -> None:
            async with gate:
                await self.client.update_inventory(u.sku, max(0, u.quantity))

        results = await asyncio.gather(*(push(u) for u in updates), return_exceptions=True)
        refused: dict[str, str] = {}
        for u, result in zip(updates, results, strict=True):
            if isinstance(result, DataError):
                refused[u.sku] = (f"Houzz has no listing with SKU {u.sku}" if result.code == "SkuNotFound"
                                  else f"Houzz refused the quantity for {u.sku}: {result.message}")
        failures = [r for r in results if isinstance(r, BaseException) and not isinstance(r, DataError)]
        if failures:
            # Auth trouble first (it pauses the connection); the pushes that went through are
            # simply repeated on the retry (they are idempotent).
            raise sorted(failures, key=lambda e: not isinstance(e, AuthError))[0]
        return refused

    # ---------------------------------------------------------------------- cancellations
    async def cancellations(self, window: Window) -> AsyncIterator[Cancellation]:
        since = window.until - timedelta(days=self.settings.lookback_days)
        if window.since is not None:
            since = min(since, window.since)
        seen: set[str] = set()
        async for raw in self._cancelled(since, window.until):
            c = cancellation(raw, self.tz)
            if c and c.external_id not in seen:
                seen.add(c.external_id)
                yield c
        now = utcnow()
        every = timedelta(minutes=self.settings.cancel_recheck_minutes)
        if window.full_read_at is None or now - window.full_read_at >= every:
            # The cancelled filter's spelling is not documented: re-read every recent order too
            # (when it was last done is the engine's to keep: the window brings it).
            async for raw in self.client.iter_orders("All", since, window.until, self.tz):
                c = cancellation(raw, self.tz)
                if c and c.external_id not in seen:
                    seen.add(c.external_id)
                    yield c
            if window.full_read_done is not None:
                window.full_read_done(now)

    async def _cancelled(self, since: datetime, until: datetime) -> AsyncIterator[dict[str, Any]]:
        for _ in range(2):
            try:
                async for raw in self.client.iter_orders(self._cancel_status, since, until, self.tz):
                    yield raw
                return
            except DataError as exc:
                if exc.code != "InvalidParameter":
                    raise
                self._cancel_status = "Cancelled" if self._cancel_status == "Canceled" else "Canceled"

    # ---------------------------------------------------------------------------- survey
    async def survey(self, window: Window, external_id: str | None = None) -> list[SurveyItem]:
        rules = self.rules()
        if external_id:
            try:
                return [survey_item(await self._current(external_id), rules)]
            except NotFound:
                return []
        return [survey_item(raw, rules) async for raw in
                self.client.iter_orders("All", window.since, window.until, self.tz)]

    async def _charge(self, external_id: str) -> str:
        try:
            data = await self.client.update_order(external_id, "Charge")
        except DataError as exc:
            if exc.code == "ChargeFailed":
                raise DataError(f"Houzz could not charge the buyer: {exc.message}", code="ChargeFailed",
                                fix="Houzz asks the buyer for another card; retry once Houzz shows the order "
                                    "Charged, or charge it in Seller Central") from None
            raise
        if normalize_status(data.get("Status")) == Status.FAILED_TO_CHARGE:
            raise DataError("Houzz could not charge the buyer (Failed to Charge)", code="ChargeFailed",
                            fix="Houzz asks the buyer for another card; retry once Houzz shows the order Charged")
        return "charged at Houzz"


def _auth_words(exc: AuthError, scope: str) -> str:
    """Which credential is wrong, or which permission is missing, in the merchant's words."""
    text = exc.message.lower()
    if exc.code == "PermissionDenied":
        what = "List and process orders" if scope == "orders" else "Update product inventory"
        return (f"These Houzz API credentials lack the '{what}' permission: in Seller Central > Settings > API "
                f"tick it and click Complete Registration (or email sellerapi@houzz.com for API access)")
    # Houzz's messages name the field at fault; the most specific word is looked for first.
    if "token" in text:
        return "Houzz refused the Application Token: copy the Token again from Seller Central > Settings > API"
    if "user name" in text or "username" in text:
        return ("Houzz does not recognise the Username for this Application ID: copy the Username shown next to "
                "the App ID in Seller Central > Settings > API")
    if "application" in text or "app name" in text or "app id" in text:
        return "Houzz does not recognise the Application ID: copy the App ID again from Seller Central > Settings > API"
    return f"Houzz refused the Application ID, Username or Application Token ({exc.message})"


class HouzzSellerConnector(_HouzzSource):
    type_name = "houzz_seller"
    display_name = "Houzz Seller"
    program = Program.SELLER
    settings_model = HouzzSellerSettings
    capabilities = Capabilities(download=True, workflow=True, shipment_upload=True, multiple_tracking=False,
                                item_level_shipments=False, inventory_push=True, cancel_detection=True,
                                diagnose=True)

    def wait_for(self) -> Status:
        return WAIT_FOR[self.settings.order_status]

    @classmethod
    def settings_problems(cls, settings: Any) -> list[str]:
        problems = []
        wait = settings.order_status
        if wait == "Charged" and (settings.mark_processed or settings.mark_charged):
            problems.append("Order Status is 'Charged', so orders are already processed and charged when they "
                            "load: turn off 'Mark Orders as Processed' and 'Mark Orders as Charged'.")
        elif wait == "In Production" and settings.mark_processed:
            problems.append("Order Status is 'In Production', so orders are already processed when they load: "
                            "turn off 'Mark Orders as Processed'.")
        if wait == "New and In Production" and settings.mark_charged and not settings.mark_processed:
            problems.append("Houzz charges only processed orders: with 'Mark Orders as Processed' off, New orders "
                            "cannot be charged until you process them in Seller Central. Turn it on, or set "
                            "Order Status to 'In Production'.")
        if wait != "Charged" and not settings.mark_charged:
            problems.append("'Mark Orders as Charged' is off and orders load before they are charged: they go to "
                            "your warehouse uncharged, and Houzz refuses the shipment confirmation until you "
                            "charge them in Seller Central.")
        return problems

    def workflow_steps(self, order: Order) -> list[WorkflowStep]:
        status = normalize_status(order.extra.get("houzz_status") or order.source_status)
        steps = []
        if self.settings.mark_processed and status == Status.NEW:
            # Processing only acknowledges the order: the warehouse need not wait for it.
            steps.append(WorkflowStep("process", "Mark as Processed at Houzz", blocks_delivery=False))
        if self.settings.mark_charged and status in (Status.NEW, Status.IN_PRODUCTION):
            steps.append(WorkflowStep("charge", "Mark as Charged at Houzz", blocks_delivery=True))
        return steps

    async def run_workflow_step(self, step: str, order: StoredOrder, *, retry: bool = False) -> str:
        if step not in ("process", "charge"):
            raise ConfigError(f"Houzz has no workflow step {step!r}", fix="this is a bug: report it")
        if retry:
            # An earlier attempt may have reached Houzz: look before writing again, so a card is
            # never authorised twice whatever Houzz makes of a repeated Charge.
            done = self._already_done(step, await self._status_of(order.external_id))
            if done:
                return done
        # A first attempt writes straight away: Houzz refuses a Process or Charge the order's
        # status does not allow, and the status is read only to explain such a refusal.
        try:
            if step == "process":
                data = await self.client.update_order(order.external_id, "Process")
                now = normalize_status(data.get("Status"))
                return ("marked Processed at Houzz" if now in (None, Status.IN_PRODUCTION)
                        else f"already processed at Houzz ({LABELS[now]})")
            return await self._charge(order.external_id)
        except NotFound:
            raise DataError("Houzz no longer has this order", fix="check the order in Seller Central") from None
        except DataError as exc:
            if exc.code != "InvalidStateTransition":
                if step == "charge":
                    raise
                raise DataError(f"Houzz refused to mark the order Processed: {exc.message}", code=exc.code,
                                fix="check the order in Seller Central") from None
            status = await self._status_of(order.external_id)
            done = self._already_done(step, status)
            if done:
                return done
            verb = "mark the order Processed" if step == "process" else "charge the order"
            raise DataError(f"Houzz refused to {verb} ({LABELS[status]}): {exc.message}", code=exc.code,
                            fix="check the order in Seller Central") from None

    async def _status_of(self, external_id: str) -> Status:
        """The order's status at Houzz; a DataError when it can no longer take a workflow step."""
        try:
            raw = await self._current(external_id)
        except NotFound:
            raise DataError("Houzz no longer has this order", fix="check the order in Seller Central") from None
        status = normalize_status(raw.get("Status"))
        if status == Status.CANCELED:
            raise DataError("the order was cancelled at Houzz", fix="nothing to do: it will not be sent")
        if status is None:
            raise DataError(f"Houzz shows the unknown status {str(raw.get('Status'))[:40]!r}",
                            fix="check the order in Seller Central")
        return status

    @staticmethod
    def _already_done(step: str, status: Status) -> str:
        """A note when the order is past the step already, '' when the step is still to do."""
        if step == "process":
            return f"already processed at Houzz ({LABELS[status]})" if status != Status.NEW else ""
        if status in (Status.CHARGED, Status.SHIPPED):
            return f"already charged at Houzz ({LABELS[status]})"
        if status == Status.NEW:
            raise DataError("Houzz charges only processed orders and this one is still New",
                            fix="mark it Processed in Seller Central, or turn on 'Mark Orders as Processed'")
        return ""


class HouzzVendorConnector(_HouzzSource):
    type_name = "houzz_vendor"
    display_name = "Houzz Vendor"
    program = Program.VENDOR
    settings_model = HouzzVendorSettings
    capabilities = Capabilities(download=True, workflow=False, shipment_upload=True, multiple_tracking=False,
                                item_level_shipments=False, inventory_push=True, cancel_detection=True,
                                diagnose=True)
