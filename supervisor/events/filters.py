"""Docker's ``/events`` filters, pure.

Theory of operation: filters arrive as ``{"key": ["v1", "v2"]}`` (or Docker's older
``{"key": {"v1": true}}``). An event matches when, for every key given, one of its
values matches. Keys: type, event (action), container, image, label, plus daemon,
network, volume and scope which berth accepts for compatibility.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from supervisor.errors import InvalidArgument
from supervisor.model import Event

KNOWN = {"type", "event", "container", "image", "label", "daemon", "network", "volume", "scope", "plugin", "node", "service", "secret", "config"}


def parse_filters(raw: object) -> dict[str, list[str]]:
    """Normalise a decoded ``filters`` JSON value. Raises InvalidArgument."""
    if raw in (None, "", {}):
        return {}
    if not isinstance(raw, Mapping):
        raise InvalidArgument("invalid filter: expected a JSON object")
    out: dict[str, list[str]] = {}
    for key, values in raw.items():
        if isinstance(values, Mapping):
            items = [str(k) for k, v in values.items() if v]
        elif isinstance(values, Sequence) and not isinstance(values, str):
            items = [str(v) for v in values]
        else:
            raise InvalidArgument(f"invalid filter '{key}'")
        out[str(key)] = items
    return out


def validate_event_filters(filters: Mapping[str, Sequence[str]]) -> None:
    for key in filters:
        if key not in KNOWN:
            raise InvalidArgument(f"invalid filter '{key}'")


def _label_matches(wanted: str, attrs: Mapping[str, str]) -> bool:
    key, eq, value = wanted.partition("=")
    if key not in attrs:
        return False
    return not eq or attrs[key] == value


def event_matches(event: Event, filters: Mapping[str, Sequence[str]]) -> bool:
    attrs = event.attributes
    for key, values in filters.items():
        if not values:
            continue
        if key == "type":
            ok = event.type in values
        elif key == "event":
            ok = event.action in values or event.action.split(":", 1)[0] in values
        elif key == "container":
            ok = event.type == "container" and any(
                v == attrs.get("name") or event.actor_id.startswith(v) for v in values
            )
        elif key == "image":
            image = attrs.get("image", "")
            ok = any(
                v in (image, event.actor_id) or (event.type == "image" and event.actor_id.startswith(v))
                or image.split(":", 1)[0] == v
                or attrs.get("name") == v
                for v in values
            )
        elif key == "label":
            ok = any(_label_matches(v, attrs) for v in values)
        elif key == "scope":
            ok = "local" in values
        elif key in ("network", "volume", "daemon"):
            ok = event.type == key and any(event.actor_id.startswith(v) or attrs.get("name") == v for v in values)
        else:
            ok = False
        if not ok:
            return False
    return True
