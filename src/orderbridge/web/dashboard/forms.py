"""Connection forms built from each connector's pydantic settings and credentials models.

The JSON schema gives every field its kind (choice, switch, number, date, text, or JSON for maps
and lists), its title, its help text and its default; the submitted form is turned back into
the plain values the models validate. Only values that differ from the default are kept.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from starlette.datastructures import FormData

from orderbridge.config import DEFAULT_SCHEDULE
from orderbridge.connectors.base import Connector
from orderbridge.connectors.errors import ConfigError


@dataclass
class Field:
    name: str  # the form field's name: "settings.x", "credentials.y", "schedule.z"
    key: str
    label: str
    help: str = ""
    kind: str = "text"  # select, checkbox, number, date, text, json, secret
    options: list[str] = field(default_factory=list)
    default: Any = None
    value: Any = None
    required: bool = False
    nullable: bool = False
    integer: bool = True
    is_set: bool = False  # secrets: a value is stored (never shown)

    @property
    def shown(self) -> str:
        """The value as the input shows it."""
        v = self.value if self.value is not None else ("" if self.kind == "secret" else self.default)
        if v is None:
            return ""
        if self.kind == "json":
            return json.dumps(v, indent=1, ensure_ascii=False)
        return str(v)


def _kind(prop: dict[str, Any]) -> tuple[str, list[str], bool, bool]:
    """(kind, choices, nullable, integer) of one JSON-schema property."""
    variants = prop.get("anyOf") or [prop]
    nullable = any(v.get("type") == "null" for v in variants)
    main: dict[str, Any] = next((v for v in variants if v.get("type") != "null"), {})
    if "enum" in main:
        return "select", [str(x) for x in main["enum"]], nullable, False
    if "const" in main:
        return "select", [str(main["const"])], nullable, False
    kind = main.get("type", "string")
    if kind == "boolean":
        return "checkbox", [], nullable, False
    if kind in ("integer", "number"):
        return "number", [], nullable, kind == "integer"
    if kind in ("object", "array"):
        return "json", [], nullable, False
    if main.get("format") == "date":
        return "date", [], nullable, False
    return "text", [], nullable, False


def _label(key: str, prop: dict[str, Any]) -> str:
    return str(prop.get("title") or key.replace("_", " ").capitalize())


def _own_first(model: Any, keys: list[str]) -> list[str]:
    """The connector's own settings first (e.g. Houzz's order status), the shared ones after."""
    order: list[str] = []
    for klass in model.__mro__:
        order += [k for k in getattr(klass, "__annotations__", {}) if k in keys and k not in order]
    return order + [k for k in keys if k not in order]


def model_fields(model: Any, prefix: str, values: dict[str, Any], *, secret: bool = False) -> list[Field]:
    schema = model.model_json_schema()
    required = set(schema.get("required", []))
    props = schema.get("properties", {})
    out = []
    for key in _own_first(model, list(props)):
        prop = props[key]
        kind, options, nullable, integer = _kind(prop)
        info = model.model_fields[key]
        default = None if info.is_required() else info.get_default(call_default_factory=True)
        f = Field(name=f"{prefix}.{key}", key=key, label=_label(key, prop), help=str(prop.get("description", "")),
                  kind="secret" if secret else kind, options=options, default=default,
                  required=key in required, nullable=nullable, integer=integer)
        if secret:
            f.is_set = bool(values.get(key))
        else:
            f.value = values.get(key, f.default)
        out.append(f)
    return out


def schedule_fields(cls: type[Connector], values: dict[str, float]) -> list[Field]:
    from orderbridge.engine.jobs import JOBS

    return [Field(name=f"schedule.{spec.name}", key=spec.name, label=f"{spec.title} every (seconds)",
                  help=f"default {DEFAULT_SCHEDULE[spec.name]:g} s; between 0.2 and 86400", kind="number",
                  default=None, value=values.get(spec.name), nullable=True, integer=False)
            for spec in JOBS.values() if spec.role == str(cls.role) and spec.applies(cls.capabilities)]


def rate_fields(values: dict[str, Any] | None) -> list[Field]:
    v = values or {}
    return [Field(name="rate.calls", key="calls", label="API calls at most", kind="number", nullable=True,
                  value=v.get("calls"), help="Leave both empty for the limit the API documents; set them when your "
                  "account has a raised quota (or for a sandbox)."),
            Field(name="rate.period", key="period", label="... per this many seconds", kind="number", nullable=True,
                  integer=False, value=v.get("period"))]


def _number(f: Field, raw: str) -> Any:
    try:
        return int(raw) if f.integer else float(raw)
    except ValueError:
        raise ConfigError(f"{f.label}: {raw!r} is not a number", fix="enter digits only") from None


def parse_fields(fields: list[Field], form: FormData) -> dict[str, Any]:
    """The submitted values of these fields; defaults are left out."""
    out: dict[str, Any] = {}
    for f in fields:
        raw = form.get(f.name)
        text = raw.strip() if isinstance(raw, str) else ""
        if f.kind == "checkbox":
            value: Any = raw is not None
        elif f.kind == "secret":
            if text:
                out[f.key] = text
            continue
        elif text == "":
            if f.required and f.kind != "number":
                value = ""
            elif f.nullable:
                value = None
            else:
                continue  # the default
        elif f.kind == "number":
            value = _number(f, text)
        elif f.kind == "json":
            try:
                value = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"{f.label}: not valid JSON ({exc.msg} at line {exc.lineno})",
                                  fix='write it like {"UPS Ground": "UPS"} or ["a", "b"]') from None
        else:
            value = text
        if value != f.default:
            out[f.key] = value
    return out


def refill(fields: list[Field], submitted: dict[str, Any]) -> None:
    """Show what was submitted again after a rejected save (secrets excepted)."""
    for f in fields:
        if f.kind != "secret":
            f.value = submitted.get(f.key, f.default)
