-- The agent registry: the latest heartbeat of each monitored host's agent.
CREATE TABLE agents (
    host               text PRIMARY KEY,
    ip                 text NOT NULL DEFAULT '',
    version            text NOT NULL DEFAULT '',
    os                 text NOT NULL DEFAULT '',
    collectors         jsonb NOT NULL DEFAULT '[]',
    spool_bytes        bigint NOT NULL DEFAULT 0,
    dropped_points     bigint NOT NULL DEFAULT 0,
    heartbeat_interval interval NOT NULL DEFAULT '30 seconds',
    first_seen         timestamptz NOT NULL DEFAULT now(),
    last_seen          timestamptz NOT NULL
);
