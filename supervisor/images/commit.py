"""``docker commit``: a container's changes as a new image layer.

The container's overlay upper dir becomes an OCI layer tar (whiteouts converted by
``diff.write_layer``), registered like any layer on top of the container image's chain;
the new config is the base image's with the container's run config (and ``--change``
instructions) and one more history entry, as Docker writes it.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import trio

from supervisor.images.changes import apply_changes
from supervisor.images.diff import write_layer
from supervisor.images.store import ImageStore, encode_config, now_rfc3339
from supervisor.model import ChainId, Container, Image, Layer

RUN_CONFIG_KEYS = (
    "Hostname", "Domainname", "User", "AttachStdin", "AttachStdout", "AttachStderr", "ExposedPorts",
    "Tty", "OpenStdin", "StdinOnce", "Env", "Cmd", "Image", "Volumes", "WorkingDir", "Entrypoint",
    "OnBuild", "Labels", "StopSignal",
)  # fmt: skip


def commit_config(
    base: Image,
    container: Container,
    *,
    diff_id: str,
    author: str,
    comment: str,
    changes: list[str],
) -> bytes:
    """The new image's config (pure apart from the clock)."""
    config: dict[str, Any] = json.loads(base.raw_config)
    run = {k: container.config.get(k) for k in RUN_CONFIG_KEYS if k in container.config}
    run["Image"] = base.id
    config["config"] = apply_changes(run, changes)
    created = now_rfc3339()
    config["created"] = created
    config["container"] = container.id
    if author:
        config["author"] = author
    config.setdefault("rootfs", {"type": "layers", "diff_ids": []})
    config["rootfs"]["diff_ids"] = [*config["rootfs"].get("diff_ids", []), diff_id]
    history = list(config.get("history") or [])
    entry: dict[str, Any] = {
        "created": created,
        "created_by": " ".join([container.path, *container.args]),
    }
    if author:
        entry["author"] = author
    if comment:
        entry["comment"] = comment
    config["history"] = [*history, entry]
    return encode_config(config)


async def commit(
    images: ImageStore,
    container: Container,
    upper: Path,
    *,
    author: str,
    comment: str,
    changes: list[str],
) -> Image:
    base = await images.resolve(container.image_id)
    apply_changes({}, changes)  # 400 for a bad change before any work
    layer = await layer_from_upper(
        images, upper, parent=base.layers[-1] if base.layers else None, prefix="commit-"
    )
    raw = commit_config(
        base, container, diff_id=layer.diff_id, author=author, comment=comment, changes=changes
    )
    layers = [*[await images.layer(c) for c in base.layers], layer]
    return await images.add_image(raw, layers, parent=base.id)


async def layer_from_upper(
    images: ImageStore, upper: Path, *, parent: ChainId | None, prefix: str
) -> Layer:
    """Diff an overlay upper dir into a layer (OCI whiteouts) on top of the chain id
    ``parent`` and register it: what commit and a build's RUN step both make."""
    tmp = Path(tempfile.mkdtemp(dir=images.tmp_dir, prefix=prefix))
    try:
        tar = tmp / "layer.tar"

        def write() -> str:
            with open(tar, "wb") as out:
                return write_layer(upper, out).diff_id

        diff_id = await trio.to_thread.run_sync(write)
        return await images.register_layer_file(tar, parent=parent, expected_diff_id=diff_id)
    finally:
        await trio.to_thread.run_sync(_rmtree, tmp)


def _rmtree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)
