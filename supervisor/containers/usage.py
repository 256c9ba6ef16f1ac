"""``GET /system/df``: disk usage of images, containers and volumes. Pure.

Theory of operation: the API handler gathers the images, each layer's size (Docker's
layer ``Size``: its files' bytes), the containers with the size of their upper dirs and
the volumes with the size of their data; this module combines them the way Docker
reports them:

* ``LayersSize`` counts every layer once, however many images share it;
* an image's ``SharedSize`` is the size of its layers that another image also has, and
  ``Containers`` the number of containers created from it (the docker CLI counts an
  image with containers as *active* and its ``Size - SharedSize`` as not reclaimable);
* a container's ``SizeRw`` is its upper dir, ``SizeRootFs`` that plus its image;
* a volume's ``UsageData`` is ``{"Size", "RefCount"}`` (containers mounting it).

Imports: standard library, ``supervisor.errors`` and ``supervisor.model`` only.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

from supervisor.errors import InvalidArgument
from supervisor.model import ChainId, Image

TYPES = ("container", "image", "volume", "build-cache")


def layers_size(images: Sequence[Image], layer_sizes: Mapping[ChainId, int]) -> int:
    """The bytes of every layer any image uses, each counted once."""
    return sum(layer_sizes.get(c, 0) for c in {c for i in images for c in i.layers})


def shared_sizes(images: Sequence[Image], layer_sizes: Mapping[ChainId, int]) -> dict[str, int]:
    """Each image's ``SharedSize``: its layers that at least one other image also uses."""
    users = Counter(c for i in images for c in set(i.layers))
    return {i.id: sum(layer_sizes.get(c, 0) for c in set(i.layers) if users[c] > 1) for i in images}


def containers_per_image(image_ids: Iterable[str]) -> Counter[str]:
    """How many containers use each image (``image_ids``: one per container)."""
    return Counter(image_ids)


def volume_refs(mounts: Mapping[str, Sequence[Mapping[str, object]]]) -> Counter[str]:
    """How many containers mount each volume, from ``docker ps``'s ``Mounts`` by
    container (each container counted once per volume)."""
    refs: Counter[str] = Counter()
    for entries in mounts.values():
        names = {e.get("Name") for e in entries if e.get("Type") == "volume"}
        refs.update(n for n in names if isinstance(n, str))
    return refs


def parse_types(values: Sequence[str]) -> set[str]:
    """The ``type`` query parameters (none: all types).

    Raises:
        InvalidArgument: an unknown type (400).
    """
    for value in values:
        if value not in TYPES:
            raise InvalidArgument(f"invalid type: {value}")
    return set(values) if values else set(TYPES)
