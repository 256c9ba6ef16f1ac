"""Container rows: immutable config in ``containers``, mutable state in ``container_state``.

Every function here is a transaction body for :meth:`store.db.Database.run`.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from typing import Any

import attrs

from supervisor.containers.state import Status
from supervisor.errors import Conflict
from supervisor.model import Container, ContainerId, ContainerState, ImageId
from supervisor.network.ports import PortBinding, Proto

_STATE_COLUMNS = (
    "status, pid, pid_start, exit_code, error, oom_killed, started_at, finished_at, "
    "restart_count, manually_stopped, ports"
)
_SELECT = (
    "SELECT c.id, c.name, c.created_ns, c.image_ref, c.image_id, c.config, c.host_config, "
    f"c.path, c.args, {', '.join('s.' + col.strip() for col in _STATE_COLUMNS.split(','))} "
    "FROM containers c JOIN container_state s ON s.id = c.id"
)


def _row(row: tuple[object, ...]) -> Container:
    (cid, name, created, ref, image_id, config, host_config, path, args, *state) = row
    status, pid, pid_start, exit_code, error, oom, started, finished, restarts, manual, ports = (
        state
    )
    return Container(
        id=ContainerId(str(cid)),
        name=str(name),
        created_ns=int(str(created)),
        image_ref=str(ref),
        image_id=ImageId(str(image_id)),
        config=json.loads(str(config)),
        host_config=json.loads(str(host_config)),
        path=str(path),
        args=tuple(json.loads(str(args))),
        state=ContainerState(
            status=Status(str(status)),
            pid=int(str(pid)),
            pid_start=int(str(pid_start)),
            exit_code=int(str(exit_code)),
            error=str(error),
            oom_killed=bool(oom),
            started_at=str(started),
            finished_at=str(finished),
            restart_count=int(str(restarts)),
            manually_stopped=bool(manual),
            ports=_load_ports(str(ports)),
        ),
    )


def insert(conn: sqlite3.Connection, c: Container) -> None:
    """Add a new container. Raises Conflict (409) when the name is taken."""
    clash = conn.execute("SELECT id FROM containers WHERE name = ?", (c.name,)).fetchone()
    if clash:
        raise Conflict(
            f'Conflict. The container name "/{c.name}" is already in use by container '
            f'"{clash[0]}". You have to remove (or rename) that container to be able to reuse that name.'
        )
    conn.execute(
        "INSERT INTO containers (id, name, created_ns, image_ref, image_id, config, host_config, path, args) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            c.id,
            c.name,
            c.created_ns,
            c.image_ref,
            c.image_id,
            json.dumps(c.config),
            json.dumps(c.host_config),
            c.path,
            json.dumps(list(c.args)),
        ),
    )
    conn.execute("INSERT INTO container_state (id, status) VALUES (?, ?)", (c.id, c.state.status))
    save_state(conn, c.id, c.state)


def save_state(conn: sqlite3.Connection, cid: str, s: ContainerState) -> None:
    conn.execute(
        "UPDATE container_state SET status=?, pid=?, pid_start=?, exit_code=?, error=?, oom_killed=?, "
        "started_at=?, finished_at=?, restart_count=?, manually_stopped=?, ports=? WHERE id=?",
        (
            s.status.value,
            s.pid,
            s.pid_start,
            s.exit_code,
            s.error,
            int(s.oom_killed),
            s.started_at,
            s.finished_at,
            s.restart_count,
            int(s.manually_stopped),
            _dump_ports(s.ports),
            cid,
        ),
    )


_STATE_FIELDS: dict[str, Callable[[Any], object]] = {
    "status": lambda v: v.value if hasattr(v, "value") else str(v),
    "pid": int,
    "pid_start": int,
    "exit_code": int,
    "error": str,
    "oom_killed": int,
    "started_at": str,
    "finished_at": str,
    "restart_count": int,
    "manually_stopped": int,
    "ports": lambda v: _dump_ports(v),
}


def _dump_ports(ports: tuple[PortBinding, ...]) -> str:
    return json.dumps(
        [
            {
                "HostIp": b.host_ip,
                "HostPort": b.host_port,
                "ContainerPort": b.container_port,
                "Proto": str(b.proto),
            }
            for b in ports
        ]
    )


def _load_ports(text: str) -> tuple[PortBinding, ...]:
    return tuple(
        PortBinding(e["HostIp"], int(e["HostPort"]), int(e["ContainerPort"]), Proto(e["Proto"]))
        for e in json.loads(text or "[]")
    )


def update_state(conn: sqlite3.Connection, cid: str, changes: dict[str, Any]) -> None:
    """Write only the named state fields (a field-wise update: no lost updates between
    two tasks changing different fields of the same container)."""
    if not changes:
        return
    unknown = set(changes) - set(_STATE_FIELDS)
    if unknown:
        raise KeyError(f"unknown state fields: {sorted(unknown)}")
    columns = ", ".join(f"{k}=?" for k in changes)
    values = [_STATE_FIELDS[k](v) for k, v in changes.items()]
    conn.execute(f"UPDATE container_state SET {columns} WHERE id=?", (*values, cid))


def rename(conn: sqlite3.Connection, cid: str, name: str) -> None:
    conn.execute("UPDATE containers SET name=? WHERE id=?", (name, cid))


def delete(conn: sqlite3.Connection, cid: str) -> None:
    conn.execute("DELETE FROM containers WHERE id = ?", (cid,))


def all_containers(conn: sqlite3.Connection) -> list[Container]:
    return [_row(r) for r in conn.execute(_SELECT + " ORDER BY c.created_ns DESC")]


def get(conn: sqlite3.Connection, cid: str) -> Container | None:
    row = conn.execute(_SELECT + " WHERE c.id = ?", (cid,)).fetchone()
    return _row(row) if row else None


def with_state(c: Container, **changes: Any) -> Container:
    """``c`` with some state fields changed (a convenience over two evolves)."""
    return attrs.evolve(c, state=attrs.evolve(c.state, **changes))


def update_host_config(conn: sqlite3.Connection, cid: str, host_config: dict[str, Any]) -> None:
    """Replace a container's HostConfig: ``update`` is the one change to the otherwise
    immutable config (new limits and restart policy)."""
    conn.execute("UPDATE containers SET host_config=? WHERE id=?", (json.dumps(host_config), cid))
