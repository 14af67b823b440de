-- Accounts, sessions, API tokens and the metric catalogue.
CREATE TABLE users (
    id            bigserial PRIMARY KEY,
    username      text NOT NULL UNIQUE,
    password_hash text NOT NULL,
    role          text NOT NULL CHECK (role IN ('admin', 'editor', 'viewer')),
    created_at    timestamptz NOT NULL DEFAULT now()
);

-- Only a hash of the session id is stored, so a database dump cannot be replayed as cookies.
CREATE TABLE sessions (
    id_hash    bytea PRIMARY KEY,
    user_id    bigint NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL
);
CREATE INDEX sessions_expires_at ON sessions (expires_at);

CREATE TABLE api_tokens (
    id           bigserial PRIMARY KEY,
    name         text NOT NULL UNIQUE,
    role         text NOT NULL CHECK (role IN ('ingest', 'viewer', 'editor', 'admin')),
    token_hash   bytea NOT NULL UNIQUE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    last_used_at timestamptz,
    revoked_at   timestamptz
);

CREATE TABLE metrics (
    name        text PRIMARY KEY,
    description text NOT NULL DEFAULT '',
    unit        text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE series (
    id         bigserial PRIMARY KEY,
    metric     text NOT NULL REFERENCES metrics (name),
    tags       jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    last_seen  timestamptz,
    UNIQUE (metric, tags)
);
CREATE INDEX series_tags ON series USING gin (tags jsonb_path_ops);
