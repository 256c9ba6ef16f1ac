"""Resolve Docker's ``--user`` (``name``, ``uid``, ``name:group``, ``uid:gid``) against an
image's /etc/passwd and /etc/group text. Pure: the caller reads the files (safely, inside
the container root) and passes their contents in.

Rules follow runc's ``user.GetExecUser``: a numeric uid need not exist in passwd (its gid
is then 0, or the passwd entry's); a name must exist; supplementary groups are the
groups that list the user by name.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs


class UnknownUser(ValueError):
    pass


@attrs.frozen
class ExecUser:
    uid: int
    gid: int
    additional_gids: tuple[int, ...] = ()
    home: str = "/"


def _entries(text: str | None, width: int) -> list[list[str]]:
    rows: list[list[str]] = []
    for line in (text or "").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(":")
        if len(parts) >= width:
            rows.append(parts)
    return rows


def _int(value: str) -> int | None:
    return int(value) if value.isdigit() else None


def resolve_user(spec: str, *, passwd: str | None, group: str | None) -> ExecUser:
    """Resolve ``spec`` to ids. Raises UnknownUser with Docker's wording."""
    user_part, _, group_part = (spec or "").partition(":")
    users = _entries(passwd, 7)
    groups = _entries(group, 4)
    uid, gid, home, name = 0, 0, "/", "root"
    if user_part:
        wanted_uid = _int(user_part)
        match = next(
            (
                u
                for u in users
                if (u[0] == user_part if wanted_uid is None else _int(u[2]) == wanted_uid)
            ),
            None,
        )
        if match is None:
            if wanted_uid is None:
                raise UnknownUser(
                    f"unable to find user {user_part}: no matching entries in passwd file"
                )
            uid, gid, name = wanted_uid, 0, ""
        else:
            uid, gid, home, name = (
                _int(match[2]) or 0,
                _int(match[3]) or 0,
                match[5] or "/",
                match[0],
            )
    elif users:
        root = next((u for u in users if u[2] == "0"), None)
        if root:
            home = root[5] or "/"
    if group_part:
        wanted_gid = _int(group_part)
        g = next(
            (
                g
                for g in groups
                if (g[0] == group_part if wanted_gid is None else _int(g[2]) == wanted_gid)
            ),
            None,
        )
        if g is None and wanted_gid is None:
            raise UnknownUser(
                f"unable to find group {group_part}: no matching entries in group file"
            )
        gid = wanted_gid if wanted_gid is not None else (_int(g[2]) if g else 0) or 0
        extra: tuple[int, ...] = ()
    else:
        extra = tuple(
            sorted(
                {
                    _int(g[2]) or 0
                    for g in groups
                    if name and name in g[3].split(",") and (_int(g[2]) or 0) != gid
                }
            )
        )
    return ExecUser(uid=uid, gid=gid, additional_gids=extra, home=home)


def resolve_groups(names: Sequence[str], *, group: str | None) -> tuple[int, ...]:
    """``--group-add``: each a gid or a group of the container's ``/etc/group``.
    Raises UnknownUser with Docker's wording."""
    groups = _entries(group, 4)
    out = []
    for name in names:
        gid = _int(name)
        if gid is None:
            match = next((g for g in groups if g[0] == name), None)
            if match is None:
                raise UnknownUser(f"unable to find group {name}: no matching entries in group file")
            gid = _int(match[2]) or 0
        out.append(gid)
    return tuple(dict.fromkeys(out))
