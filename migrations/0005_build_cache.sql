-- 0005: the classic builder's layer cache. A step's key (its parent image, the
-- instruction after substitution and the checksums of the files it copies) maps to the
-- image that step produced; deleting that image forgets the entry. Never edit once
-- landed: add 0006_*.sql.

CREATE TABLE build_cache (
    key          TEXT PRIMARY KEY,            -- "sha256:..." of the step (supervisor.build.cache)
    image_id     TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
    created_ns   INTEGER NOT NULL,
    last_used_ns INTEGER NOT NULL
);
CREATE INDEX build_cache_image ON build_cache(image_id);
