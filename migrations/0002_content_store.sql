-- 0002: the content store's index. Blobs themselves live in <data-root>/image/blobs/sha256/<hex>.
-- layer_blobs maps a layer (by diff id) to the blobs that carry it: the uncompressed tar
-- (digest = diff id) and compressed forms pulled or pushed; blob_sources remembers where
-- a blob is known to exist so a push can mount it instead of uploading it.
-- repo_digests holds an image's "repo@sha256:..." references (RepoDigests).

CREATE TABLE layer_blobs (
    digest     TEXT PRIMARY KEY,            -- "sha256:..." of the blob as stored/pushed
    diff_id    TEXT NOT NULL,               -- "sha256:..." of the uncompressed tar
    media_type TEXT NOT NULL,
    size       INTEGER NOT NULL
);
CREATE INDEX layer_blobs_diff ON layer_blobs(diff_id);

CREATE TABLE blob_sources (
    digest     TEXT NOT NULL,
    registry   TEXT NOT NULL,               -- "localhost:5000", "docker.io"
    repository TEXT NOT NULL,               -- "library/busybox"
    PRIMARY KEY (digest, registry, repository)
);

CREATE TABLE repo_digests (
    ref      TEXT PRIMARY KEY,              -- "localhost:5000/app@sha256:..."
    image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE
);
CREATE INDEX repo_digests_image ON repo_digests(image_id);

ALTER TABLE images ADD COLUMN parent TEXT NOT NULL DEFAULT '';
ALTER TABLE layers ADD COLUMN tar_size INTEGER NOT NULL DEFAULT 0;  -- bytes of the uncompressed tar
