-- 0001: containers (immutable config separate from mutable state), images, layers,
-- tags and the durable event log. Never edit once landed: add 0002_*.sql instead.

CREATE TABLE containers (
    id          TEXT PRIMARY KEY,              -- 64 hex chars
    name        TEXT NOT NULL UNIQUE,          -- without the leading "/"
    created_ns  INTEGER NOT NULL,
    image_ref   TEXT NOT NULL,                 -- as the user asked for it ("busybox")
    image_id    TEXT NOT NULL,                 -- "sha256:..."
    config      TEXT NOT NULL,                 -- Docker "Config" object, JSON, merged with the image's
    host_config TEXT NOT NULL,                 -- Docker "HostConfig" object, JSON
    path        TEXT NOT NULL,                 -- resolved entrypoint[0]
    args        TEXT NOT NULL                  -- JSON list
);

CREATE TABLE container_state (
    id               TEXT PRIMARY KEY REFERENCES containers(id) ON DELETE CASCADE,
    status           TEXT NOT NULL,            -- supervisor.containers.state.Status
    pid              INTEGER NOT NULL DEFAULT 0,
    pid_start        INTEGER NOT NULL DEFAULT 0, -- /proc/PID/stat starttime, guards re-adoption
    exit_code        INTEGER NOT NULL DEFAULT 0,
    error            TEXT NOT NULL DEFAULT '',
    oom_killed       INTEGER NOT NULL DEFAULT 0,
    started_at       TEXT NOT NULL DEFAULT '0001-01-01T00:00:00Z',
    finished_at      TEXT NOT NULL DEFAULT '0001-01-01T00:00:00Z',
    restart_count    INTEGER NOT NULL DEFAULT 0,
    manually_stopped INTEGER NOT NULL DEFAULT 0
);

CREATE TABLE layers (
    chain_id  TEXT PRIMARY KEY,                -- "sha256:..."
    diff_id   TEXT NOT NULL,
    parent    TEXT REFERENCES layers(chain_id),
    size      INTEGER NOT NULL
);

CREATE TABLE images (
    id         TEXT PRIMARY KEY,               -- "sha256:" + sha256 of the config JSON
    config     TEXT NOT NULL,                  -- the OCI image config JSON, byte-exact
    created_ns INTEGER NOT NULL,               -- when it entered this store
    size       INTEGER NOT NULL,
    top_layer  TEXT REFERENCES layers(chain_id)
);

CREATE TABLE tags (
    ref      TEXT PRIMARY KEY,                 -- normalised "docker.io/library/busybox:latest"
    image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    tagged_ns INTEGER NOT NULL
);
CREATE INDEX tags_image ON tags(image_id);

CREATE TABLE events (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    time_ns    INTEGER NOT NULL,
    type       TEXT NOT NULL,                  -- container | image | network | volume | daemon
    action     TEXT NOT NULL,                  -- start, die, oom, tag...
    actor_id   TEXT NOT NULL,
    attributes TEXT NOT NULL                   -- JSON object of strings
);
CREATE INDEX events_time ON events(time_ns);
