"""Which images ``image prune`` starts from and which parents a deletion takes along,
as dockerd (20.10+) decides. Pure.

Theory of operation: local images form a forest through ``Image.parent`` (a build step
or ``commit`` names the image it was made from; pulled and loaded images have none).
An untagged image with children is an *intermediate* image (a build's step kept as the
next step's parent): ``images`` hides it, and nothing deletes it directly, because the
child would lose its parent. Instead, deleting an image *prunes* its parent chain
(moby ``ImageDelete(..., prune=true)``, what ``rmi`` does unless ``--no-prune``): each
parent in turn goes too while it is untagged (no tag, no digest reference), has no other
child and no container uses it; the first one that fails any of these stops the walk,
quietly.

``image prune`` (moby ``ImagesPrune``) starts from :func:`prune_candidates`:

- dangling only (the default): images with no child and no tag (an image known only by
  a digest reference counts: it is untagged);
- ``-a``: every image except the intermediate ones;

and deletes each candidate the way ``rmi`` would (conflicts skip it), so the chains of
step images above a deleted build go with it and ``images -a`` shows no orphans.

This module never imports I/O: the store gathers the images and the containers' users,
and calls these.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from supervisor.model import Image


def children_index(images: Iterable[Image]) -> dict[str, list[str]]:
    """Each parent's children's ids (only parents that have some)."""
    out: dict[str, list[str]] = {}
    for image in images:
        if image.parent:
            out.setdefault(image.parent, []).append(image.id)
    return out


def is_intermediate(image: Image, children: Sequence[str]) -> bool:
    """An untagged image with children: a build step another image was made from."""
    return not image.tags and not image.repo_digests and bool(children)


def prune_candidates(images: Sequence[Image], *, dangling_only: bool) -> list[Image]:
    """The images ``image prune`` deletes (each as ``rmi`` would), in the given order.

    Args:
        images: every local image (newest first gives children before parents).
        dangling_only: the default prune; False for ``-a`` (``dangling=false``).
    """
    kids = children_index(images)
    out: list[Image] = []
    for image in images:
        children = kids.get(image.id, [])
        if is_intermediate(image, children):
            continue  # goes, if at all, with the last of its children
        if dangling_only and (children or image.tags):
            continue
        out.append(image)
    return out


def prunable_parent(image: Image, *, children: Sequence[str], users: Sequence[str]) -> bool:
    """Whether a deletion's walk up the parent chain takes ``image`` too.

    Args:
        image: the parent, as stored now (its child already deleted).
        children: ids of the images still made from it.
        users: ids of the containers using it.
    """
    return not image.tags and not image.repo_digests and not children and not users
