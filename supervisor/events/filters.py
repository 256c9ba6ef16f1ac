"""Docker's ``/events`` filters, pure.

Theory of operation: filters arrive as ``{"key": ["v1", "v2"]}`` (or Docker's older
``{"key": {"v1": true}}``). An event matches when, for every key given, one of its
values matches. Keys: type, event (action), container, image, label, plus daemon,
network, volume and scope which berth accepts for compatibility.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from supervisor.errors import InvalidArgument
from supervisor.images.reference import familiar_repository, parse
from supervisor.model import Event

KNOWN = {
    "type",
    "event",
    "container",
    "image",
    "label",
    "daemon",
    "network",
    "volume",
    "scope",
    "plugin",
    "node",
    "service",
    "secret",
    "config",
}


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


def _strip_tag(image: str) -> str:
    """moby's ``stripTag``: the familiar repository name, or ``image`` if it is no reference."""
    try:
        return familiar_repository(parse(image))
    except InvalidArgument:
        return image


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
            # moby's fuzzyMatchName: a prefix of the id or of the name
            name = attrs.get("name", "")
            ok = event.type == "container" and any(
                name.startswith(v) or event.actor_id.startswith(v) for v in values
            )
        elif key == "image":
            # moby's matchImage: an image event names its image in "name", others in "image"
            image = attrs.get("name" if event.type == "image" else "image", "")
            candidates = {image, event.actor_id, _strip_tag(image), _strip_tag(event.actor_id)}
            ok = any(v in candidates for v in values)  # exact, as moby (no id prefixes)
        elif key == "label":
            ok = all(_label_matches(v, attrs) for v in values)  # every label, as MatchKVList
        elif key == "scope":
            ok = "local" in values
        elif key in ("network", "volume", "daemon"):
            name = attrs.get("name", "")
            ok = event.type == key and any(
                event.actor_id.startswith(v) or name.startswith(v) for v in values
            )
        else:
            ok = False
        if not ok:
            return False
    return True
