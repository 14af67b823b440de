-- amas:no-transaction
-- Dropping the hypertable drops its chunks and policies; the continuous aggregates
-- built on it go first. The extension stays: later migrations or other schemas may
-- use it.
DROP TABLE rollup_pending;
DROP MATERIALIZED VIEW samples_1h;
DROP MATERIALIZED VIEW samples_1m;
DROP TABLE samples;
