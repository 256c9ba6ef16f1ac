-- 0003: networks, endpoints (a container's attachment to a network) and the ports a
-- running container published. Never edit once landed: add 0004_*.sql instead.

CREATE TABLE networks (
    id         TEXT PRIMARY KEY,               -- 64 hex chars
    name       TEXT NOT NULL UNIQUE,
    driver     TEXT NOT NULL,                  -- bridge | host | null
    created_ns INTEGER NOT NULL,
    bridge     TEXT UNIQUE,                    -- the host's bridge interface; NULL for host/none
    subnet     TEXT NOT NULL DEFAULT '',       -- "10.213.16.0/24"; '' for host/none
    gateway    TEXT NOT NULL DEFAULT '',
    ip_range   TEXT NOT NULL DEFAULT '',       -- --ip-range: automatic addresses come from here
    internal   INTEGER NOT NULL DEFAULT 0,
    builtin    INTEGER NOT NULL DEFAULT 0,     -- bridge, host and none: never removed
    labels     TEXT NOT NULL DEFAULT '{}',     -- JSON object
    options    TEXT NOT NULL DEFAULT '{}'      -- JSON object (driver options)
);

-- The address is held only while the container runs (NULL otherwise), as Docker
-- releases it at stop; UNIQUE(network_id, ip) makes a duplicate impossible, whatever
-- the daemon's restarts.
CREATE TABLE endpoints (
    container_id TEXT NOT NULL REFERENCES containers(id) ON DELETE CASCADE,
    network_id   TEXT NOT NULL REFERENCES networks(id) ON DELETE CASCADE,
    id           TEXT NOT NULL UNIQUE,         -- EndpointID, 64 hex chars
    position     INTEGER NOT NULL,             -- connect order: the first gives the default route
    aliases      TEXT NOT NULL DEFAULT '[]',   -- JSON list
    requested_ip TEXT NOT NULL DEFAULT '',     -- --ip
    mac_address  TEXT NOT NULL DEFAULT '',     -- --mac-address
    ip           TEXT,
    PRIMARY KEY (container_id, network_id),
    UNIQUE (network_id, ip)
);
CREATE INDEX endpoints_network ON endpoints(network_id);

-- The ports the current run published, as bound (JSON list of {HostIp, HostPort,
-- ContainerPort, Proto}),
-- so that proxies come back on the same host ports when berthd re-adopts a container.
ALTER TABLE container_state ADD COLUMN ports TEXT NOT NULL DEFAULT '[]';
