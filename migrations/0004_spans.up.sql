-- Spans: one row per span, range-partitioned by start_time with one partition per
-- day (spans_pYYYYMMDD), created on demand by the span writer and ahead of time by
-- the rollup role, and dropped by span retention (--retention-spans). The same
-- plain partitioned table is used on TimescaleDB, so both give the same answers.
-- Ids are raw bytes (16 for traces, 8 for spans); parent_span_id is NULL for a
-- root span. batch numbers the COPY that stored a row (numbered by the writer), so
-- live subscriptions on any replica can read exactly the spans one announced
-- commit added.
CREATE TABLE spans (
    trace_id       bytea NOT NULL,
    span_id        bytea NOT NULL,
    parent_span_id bytea,
    service        text NOT NULL,
    name           text NOT NULL,
    kind           smallint NOT NULL,
    start_time     timestamptz NOT NULL,
    duration_ns    bigint NOT NULL,
    status_code    smallint NOT NULL,
    status_message text NOT NULL,
    attributes     jsonb NOT NULL,
    resource       jsonb NOT NULL,
    events         jsonb NOT NULL,
    links          jsonb NOT NULL,
    batch          bigint NOT NULL
) PARTITION BY RANGE (start_time);
CREATE INDEX spans_trace_id ON spans (trace_id);
CREATE INDEX spans_service_start ON spans (service, start_time);

-- The (service, operation) pairs seen, so listing them does not scan the spans;
-- the span writer upserts them with the spans, retention forgets stale ones.
CREATE TABLE span_operations (
    service   text NOT NULL,
    name      text NOT NULL,
    last_seen timestamptz NOT NULL,
    PRIMARY KEY (service, name)
);
