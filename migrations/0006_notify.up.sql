-- The notification side of alerting: channels, the routing tree, inhibition
-- rules, silences, acknowledgements, the dispatcher's leadership term and the
-- notification log with every delivery attempt.

-- A configured destination. settings are shown through the API; secrets
-- (passwords, webhook URLs with keys, signing secrets, routing keys) never are.
CREATE TABLE notify_channels (
    id            bigserial PRIMARY KEY,
    name          text NOT NULL UNIQUE,
    type          text NOT NULL,
    settings      jsonb NOT NULL DEFAULT '{}',
    secrets       jsonb NOT NULL DEFAULT '{}',
    template      text NOT NULL DEFAULT '',
    send_resolved boolean NOT NULL DEFAULT true,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);

-- The routing tree, edited as a whole: one row (alerting/dispatch.Route as jsonb).
CREATE TABLE notify_routes (
    id         integer PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    tree       jsonb NOT NULL,
    updated_by text NOT NULL DEFAULT '',
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE inhibit_rules (
    id              bigserial PRIMARY KEY,
    source_matchers jsonb NOT NULL,
    target_matchers jsonb NOT NULL,
    equal_labels    text[] NOT NULL DEFAULT '{}',
    comment         text NOT NULL DEFAULT '',
    created_by      text NOT NULL DEFAULT '',
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE silences (
    id         bigserial PRIMARY KEY,
    matchers   jsonb NOT NULL,
    starts_at  timestamptz NOT NULL,
    ends_at    timestamptz NOT NULL CHECK (ends_at > starts_at),
    created_by text NOT NULL,
    comment    text NOT NULL DEFAULT '',
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX silences_ends_at ON silences (ends_at);

-- An acknowledgement holds for one firing episode of an instance: the
-- fingerprint and the episode's starts_at. When the alert resolves and fires
-- again it has a new starts_at, and the acknowledgement no longer applies.
CREATE TABLE alert_acks (
    fingerprint text NOT NULL,
    starts_at   timestamptz NOT NULL,
    acked_by    text NOT NULL,
    comment     text NOT NULL DEFAULT '',
    acked_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (fingerprint, starts_at)
);

-- The dispatcher's leadership: whoever holds the advisory lock bumps term, and
-- every notification it logs carries its term. A leader whose lock was lost (its
-- connection died) can no longer log, so it cannot send either.
CREATE TABLE notify_leader (
    id     integer PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    term   bigint NOT NULL,
    holder text NOT NULL,
    since  timestamptz NOT NULL
);

-- The notification log: one row per message to one channel for one group.
-- alerts holds what the message said ({fingerprint, status, startsAt} each),
-- which is what the next flush compares against. A row is written before the
-- message is sent (status sending), so a leader that takes over never sends a
-- message a dead leader may already have sent.
CREATE TABLE notifications (
    id           bigserial PRIMARY KEY,
    group_key    text NOT NULL,
    channel_id   bigint,            -- NULL once the channel is deleted
    channel_name text NOT NULL,
    channel_type text NOT NULL,
    status       text NOT NULL CHECK (status IN ('sending', 'retrying', 'sent', 'failed', 'skipped')),
    alerts       jsonb NOT NULL DEFAULT '[]',
    firing       integer NOT NULL DEFAULT 0,
    resolved     integer NOT NULL DEFAULT 0,
    attempts     integer NOT NULL DEFAULT 0,
    error        text NOT NULL DEFAULT '',
    term         bigint NOT NULL,
    test         boolean NOT NULL DEFAULT false,
    created_at   timestamptz NOT NULL,
    finished_at  timestamptz
);
CREATE INDEX notifications_group_channel ON notifications (group_key, channel_id, id DESC);
CREATE INDEX notifications_created_at ON notifications (created_at);

CREATE TABLE notification_attempts (
    notification_id bigint NOT NULL REFERENCES notifications (id) ON DELETE CASCADE,
    attempt         integer NOT NULL,
    at              timestamptz NOT NULL,
    duration_ms     double precision NOT NULL,
    error           text NOT NULL DEFAULT '',
    retryable       boolean NOT NULL DEFAULT false,
    PRIMARY KEY (notification_id, attempt)
);
