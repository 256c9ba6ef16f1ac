"""``ImageStore.remove`` and ``ImageStore.prune`` with a real store in tmp_path: rmi
and image prune take a build's untagged step images along, as dockerd does."""

from __future__ import annotations

from pathlib import Path

import pytest

from store.db import Database
from supervisor.errors import Conflict, NoSuchImage
from supervisor.events.log import EventLog
from supervisor.images.store import ImageStore, encode_config
from supervisor.model import Image


@pytest.fixture
def events(db: Database) -> EventLog:
    return EventLog(db)


@pytest.fixture
def images(db: Database, events: EventLog, tmp_path: Path) -> ImageStore:
    return ImageStore(db, events, tmp_path / "images")


class Users:
    """Which containers use which image (a fake of ``users_of_image``)."""

    def __init__(self) -> None:
        self.by_image: dict[str, list[str]] = {}

    async def __call__(self, image_id: str) -> list[str]:
        return self.by_image.get(image_id, [])


async def add(images: ImageStore, name: str, parent: Image | None = None) -> Image:
    config = {"config": {"Labels": {"n": name}}, "rootfs": {"type": "layers", "diff_ids": []}}
    return await images.add_image(
        encode_config(config), [], parent=parent.id if parent is not None else ""
    )


async def chain(images: ImageStore, base: Image, *names: str) -> list[Image]:
    out = [base]
    for name in names:
        out.append(await add(images, name, out[-1]))
    return out[1:]


async def ids(images: ImageStore) -> set[str]:
    return {i.id for i in await images.list_images()}


async def test_remove_built_image_takes_its_untagged_steps(images: ImageStore) -> None:
    base = await add(images, "base")
    await images.tag(base.id, "base:1")
    s1, s2, app = await chain(images, base, "s1", "s2", "app")
    await images.tag(app.id, "app:1")
    report = await images.remove("app:1", force=False, in_use=Users())
    assert report == [
        {"Untagged": "app:1"},
        {"Deleted": app.id},
        {"Deleted": s2.id},
        {"Deleted": s1.id},
    ]
    assert await ids(images) == {base.id}


async def test_remove_noprune_keeps_the_steps(images: ImageStore) -> None:
    base = await add(images, "base")
    s1, app = await chain(images, base, "s1", "app")
    await images.tag(app.id, "app:1")
    await images.remove("app:1", force=False, in_use=Users(), prune=False)
    assert await ids(images) == {base.id, s1.id}


async def test_remove_cascade_stops_at_shared_or_used_parent(images: ImageStore) -> None:
    base = await add(images, "base")
    s1, s2, a = await chain(images, base, "s1", "s2", "a")
    (b,) = await chain(images, s1, "b")  # a second build sharing s1
    users = Users()
    users.by_image[s2.id] = ["ctr"]
    await images.remove(a.id, force=False, in_use=users)
    assert await ids(images) == {base.id, s1.id, s2.id, b.id}
    users.by_image.clear()
    await images.remove(s2.id, force=False, in_use=users)  # s1 still has b
    assert await ids(images) == {base.id, s1.id, b.id}
    await images.remove(b.id, force=False, in_use=users)  # now s1 and base go too
    assert await ids(images) == set()


async def test_remove_last_tag_of_a_parent_only_untags(images: ImageStore) -> None:
    base = await add(images, "base")
    await images.tag(base.id, "base:1")
    (child,) = await chain(images, base, "child")
    assert await images.remove("base:1", force=False, in_use=Users()) == [{"Untagged": "base:1"}]
    assert (await images.resolve(base.id)).tags == ()
    # Deleting the child now takes the untagged parent along.
    await images.remove(child.id, force=False, in_use=Users())
    assert await ids(images) == set()


@pytest.mark.parametrize("force", [False, True], ids=["plain", "forced"])
async def test_remove_by_id_with_children_conflicts(images: ImageStore, force: bool) -> None:
    base = await add(images, "base")
    await chain(images, base, "child")
    with pytest.raises(Conflict, match=r"\(cannot be forced\) - image has dependent child images"):
        await images.remove(base.id, force=force, in_use=Users())
    assert base.id in await ids(images)


async def test_remove_emits_delete_for_each_pruned_parent(
    images: ImageStore, events: EventLog
) -> None:
    base = await add(images, "base")
    s1, app = await chain(images, base, "s1", "app")
    await images.remove(app.id, force=False, in_use=Users())
    deletes = [
        e.actor_id
        for e in await events.history(since_ns=None, until_ns=None)
        if e.action == "delete"
    ]
    assert deletes == [app.id, s1.id, base.id]


async def test_prune_dangling_removes_untagged_builds_and_their_steps(
    images: ImageStore,
) -> None:
    base = await add(images, "base")
    await images.tag(base.id, "base:1")
    s1, tagged = await chain(images, base, "s1", "tagged")
    await images.tag(tagged.id, "tagged:1")
    u1, u2 = await chain(images, base, "u1", "u2")  # an untagged build
    report, _ = await images.prune(dangling_only=True, select=lambda _: True, in_use=Users())
    assert [r["Deleted"] for r in report] == [u2.id, u1.id]
    assert await ids(images) == {base.id, s1.id, tagged.id}


async def test_prune_dangling_skips_used_and_unselected(images: ImageStore) -> None:
    base = await add(images, "base")
    await images.tag(base.id, "base:1")
    (used,) = await chain(images, base, "used")
    (other,) = await chain(images, base, "other")
    users = Users()
    users.by_image[used.id] = ["ctr"]
    report, _ = await images.prune(
        dangling_only=True, select=lambda i: i.id != other.id, in_use=users
    )
    assert report == []
    assert await ids(images) == {base.id, used.id, other.id}


async def test_prune_all_leaves_only_what_containers_use(images: ImageStore) -> None:
    base = await add(images, "base")
    await images.tag(base.id, "base:1")
    s1, app = await chain(images, base, "s1", "app")
    await images.tag(app.id, "app:1")
    await images.tag(app.id, "app:2")
    s2, kept = await chain(images, base, "s2", "kept")
    await images.tag(kept.id, "kept:1")
    await images.tag(kept.id, "kept:2")
    users = Users()
    users.by_image[kept.id] = ["ctr"]
    report, _ = await images.prune(dangling_only=False, select=lambda _: True, in_use=users)
    # As dockerd: a used image loses all its tags but the last (that one conflicts);
    # its steps and the base stay as its parents, the base untagged.
    assert {"Untagged": "kept:1"} in report and {"Untagged": "base:1"} in report
    assert await ids(images) == {base.id, s2.id, kept.id}
    assert (await images.resolve(kept.id)).tags == ("docker.io/library/kept:2",)
    assert (await images.resolve(base.id)).tags == ()
    users.by_image.clear()
    await images.prune(dangling_only=False, select=lambda _: True, in_use=users)
    assert await ids(images) == set()
    with pytest.raises(NoSuchImage):
        await images.resolve(s1.id)


async def test_lowerdirs_of_is_forgotten_with_the_image(images: ImageStore) -> None:
    image = await add(images, "gone")
    await images.tag(image.id, "gone:1")
    assert await images.lowerdirs_of(image.id) == images.lowerdirs(image)
    await images.remove("gone:1", force=False, in_use=Users())
    with pytest.raises(NoSuchImage):
        await images.lowerdirs_of(image.id)
