-- The index of developments (see developments.rs): per story and development what decisions
-- need, changed in the same transaction as the events that change it. It is filled from the
-- events already logged by the first process that starts after this migration (the events must
-- be upcast, which SQL cannot do): `pending_fills` names the fills still to do.
CREATE TABLE story_developments (
    story_id       TEXT   NOT NULL,
    development_id TEXT   NOT NULL,
    fingerprint    TEXT   NOT NULL,
    recorded_in    BIGINT NOT NULL,
    recorded_as    TEXT   NOT NULL,
    status         TEXT   NOT NULL,
    PRIMARY KEY (story_id, development_id)
);

CREATE TABLE pending_fills (
    name TEXT PRIMARY KEY
);
INSERT INTO pending_fills (name) VALUES ('story_developments');
