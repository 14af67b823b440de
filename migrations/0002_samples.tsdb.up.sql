-- amas:no-transaction
-- TimescaleDB: samples is a hypertable of one-day chunks, compressed after two days;
-- samples_1m and samples_1h are real-time continuous aggregates with the columns of
-- the plain rollup tables, so the query path reads them the same way. Retention is
-- a policy per table; the rollup role replaces these defaults (the defaults of
-- --retention-raw, --retention-1m, --retention-1h) with the configured periods.
-- Continuous aggregates cannot be created in a transaction, hence the marker above.
CREATE EXTENSION IF NOT EXISTS timescaledb;

CREATE TABLE samples (
    time      timestamptz NOT NULL,
    series_id bigint NOT NULL,
    value     double precision NOT NULL
);
SELECT create_hypertable('samples', by_range('time', INTERVAL '1 day'), create_default_indexes => false);
CREATE INDEX samples_series_time ON samples (series_id, time);

ALTER TABLE samples SET (
    timescaledb.compress,
    timescaledb.compress_segmentby = 'series_id',
    timescaledb.compress_orderby = 'time'
);
SELECT add_compression_policy('samples', compress_after => INTERVAL '2 days');
SELECT add_retention_policy('samples', drop_after => INTERVAL '720 hours');

-- last is the value at the greatest time of the bucket; TimescaleDB's last() picks
-- any one of several samples sharing that time, where the plain rollup picks the
-- greatest value.
CREATE MATERIALIZED VIEW samples_1m
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT series_id,
       time_bucket(INTERVAL '1 minute', time) AS bucket,
       min(value) AS min,
       max(value) AS max,
       sum(value) AS sum,
       count(*) AS count,
       last(value, time) AS last
FROM samples
GROUP BY series_id, time_bucket(INTERVAL '1 minute', time)
WITH NO DATA;

-- Hierarchical: the hours are computed from the minutes, as on plain PostgreSQL.
CREATE MATERIALIZED VIEW samples_1h
WITH (timescaledb.continuous, timescaledb.materialized_only = false) AS
SELECT series_id,
       time_bucket(INTERVAL '1 hour', bucket) AS bucket,
       min(min) AS min,
       max(max) AS max,
       sum(sum) AS sum,
       sum(count)::bigint AS count,
       last(last, bucket) AS last
FROM samples_1m
GROUP BY series_id, time_bucket(INTERVAL '1 hour', bucket)
WITH NO DATA;

-- Materialisation trails now by one bucket; the real-time union covers the rest.
-- The start offsets bound how late a sample may arrive and still reach the
-- materialised rollups.
SELECT add_continuous_aggregate_policy('samples_1m',
    start_offset => INTERVAL '3 hours', end_offset => INTERVAL '1 minute', schedule_interval => INTERVAL '1 minute');
SELECT add_continuous_aggregate_policy('samples_1h',
    start_offset => INTERVAL '2 days', end_offset => INTERVAL '1 hour', schedule_interval => INTERVAL '30 minutes');
SELECT add_retention_policy('samples_1m', drop_after => INTERVAL '2160 hours');
SELECT add_retention_policy('samples_1h', drop_after => INTERVAL '17520 hours');

-- Unused on TimescaleDB (nothing is ever pending), kept so both flavours have the
-- same tables.
CREATE TABLE rollup_pending (
    bucket timestamptz PRIMARY KEY
);
