-- 0004: volumes (local driver; the data lives in <data-root>/volumes/<name>/_data) and
-- the mounts each container was created with. Never edit once landed: add 0005_*.sql.

CREATE TABLE volumes (
    name       TEXT PRIMARY KEY,               -- [a-zA-Z0-9][a-zA-Z0-9_.-]+
    driver     TEXT NOT NULL DEFAULT 'local',
    created_ns INTEGER NOT NULL,
    labels     TEXT NOT NULL DEFAULT 'null',   -- JSON object, or null when none were given
    options    TEXT NOT NULL DEFAULT 'null'    -- JSON object (driver options), or null
);

-- One row per destination. A volume mount names its volume; the foreign key has no
-- ON DELETE action, so a volume some container (in any state) mounts cannot be deleted:
-- the store refuses what the manager's in-use check already refused.
CREATE TABLE container_mounts (
    container_id TEXT NOT NULL REFERENCES containers(id) ON DELETE CASCADE,
    destination  TEXT NOT NULL,
    type         TEXT NOT NULL,                -- bind | volume | tmpfs
    volume       TEXT REFERENCES volumes(name),
    spec         TEXT NOT NULL,                -- JSON: supervisor.volumes.model.MountPoint
    copy_pending INTEGER NOT NULL DEFAULT 0,   -- copy the image's files in at the next start
    PRIMARY KEY (container_id, destination)
);
CREATE INDEX container_mounts_volume ON container_mounts(volume);
