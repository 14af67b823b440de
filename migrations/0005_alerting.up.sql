-- Alert rules, their evaluation leases, alert instances and their history.
--
-- A rule's definition is the jsonb spec (alerting/rule.Rule); the columns beside it
-- are what SQL filters and schedules on. version grows on every edit, so replicas
-- that hold the rule's lease reload it.
CREATE TABLE alert_rules (
    id          bigserial PRIMARY KEY,
    name        text NOT NULL UNIQUE,
    spec        jsonb NOT NULL,
    interval_ms bigint NOT NULL CHECK (interval_ms > 0),
    enabled     boolean NOT NULL DEFAULT true,
    owner       text NOT NULL DEFAULT '',
    version     bigint NOT NULL DEFAULT 1,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

-- The replicas running the alert role, with their latest heartbeat: a rule's fair
-- share per replica is the enabled rules divided by the live replicas.
CREATE TABLE alert_replicas (
    id           text PRIMARY KEY,
    heartbeat_at timestamptz NOT NULL
);

-- One lease per rule: the replica that evaluates it (owner) while lease_until is
-- in the future, and when it is next due. A lease is taken with
-- FOR UPDATE SKIP LOCKED once it has expired, so a rule has one evaluator at a
-- time and the rules of a dead replica are taken over when their leases run out.
CREATE TABLE alert_rule_leases (
    rule_id      bigint PRIMARY KEY REFERENCES alert_rules (id) ON DELETE CASCADE,
    owner        text,
    lease_until  timestamptz NOT NULL DEFAULT 'epoch',
    next_eval_at timestamptz NOT NULL DEFAULT 'epoch',
    last_eval_at timestamptz,
    last_error   text NOT NULL DEFAULT ''   -- why the last evaluation failed; '' when it did not
);
CREATE INDEX alert_rule_leases_owner ON alert_rule_leases (owner);

-- One row per alert instance: a rule and one label set (fingerprint). No foreign
-- key on rule_id: deleting a rule resolves its instances, and the dispatcher still
-- reads them to send the resolved message.
CREATE TABLE alert_instances (
    rule_id     bigint NOT NULL,
    fingerprint text NOT NULL,
    rule_name   text NOT NULL,
    labels      jsonb NOT NULL,
    annotations jsonb NOT NULL DEFAULT '{}',
    state       text NOT NULL CHECK (state IN ('inactive', 'pending', 'firing', 'resolved', 'nodata')),
    severity    text NOT NULL,
    value       double precision,          -- NULL: no data
    threshold   double precision NOT NULL,
    active_at   timestamptz,               -- since when the condition has held (pending or firing)
    starts_at   timestamptz NOT NULL,      -- pending since while pending, firing since once firing
    ends_at     timestamptz,               -- when it resolved
    updated_at  timestamptz NOT NULL,      -- the latest evaluation
    PRIMARY KEY (rule_id, fingerprint)
);
CREATE INDEX alert_instances_open ON alert_instances (state) WHERE state IN ('pending', 'firing', 'nodata');
CREATE INDEX alert_instances_ends_at ON alert_instances (ends_at) WHERE state = 'resolved';

-- Every state change of every instance, with the value and threshold that made it.
CREATE TABLE alert_history (
    id          bigserial PRIMARY KEY,
    rule_id     bigint NOT NULL,
    rule_name   text NOT NULL,
    fingerprint text NOT NULL,
    labels      jsonb NOT NULL,
    from_state  text NOT NULL,
    to_state    text NOT NULL,
    severity    text NOT NULL,
    value       double precision,
    threshold   double precision NOT NULL,
    at          timestamptz NOT NULL
);
CREATE INDEX alert_history_at ON alert_history (at);
CREATE INDEX alert_history_rule_at ON alert_history (rule_id, at);
CREATE INDEX alert_history_fingerprint_at ON alert_history (fingerprint, at);
