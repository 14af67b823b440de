-- Plain PostgreSQL: samples are range-partitioned by day. Partitions are created on
-- demand by the ingest pipeline and ahead of time by the rollup role, and dropped by
-- retention. The 1m/1h rollup tables are kept current by the rollup role, which
-- recomputes the minutes listed in rollup_pending (written in the same transaction as
-- the samples, so a committed sample is always either rolled up or pending).
CREATE TABLE samples (
    time      timestamptz NOT NULL,
    series_id bigint NOT NULL,
    value     double precision NOT NULL
) PARTITION BY RANGE (time);
CREATE INDEX samples_series_time ON samples (series_id, time);

CREATE TABLE samples_1m (
    series_id bigint NOT NULL,
    bucket    timestamptz NOT NULL,
    min       double precision NOT NULL,
    max       double precision NOT NULL,
    sum       double precision NOT NULL,
    count     bigint NOT NULL,
    last      double precision NOT NULL,
    PRIMARY KEY (series_id, bucket)
);

CREATE TABLE samples_1h (
    series_id bigint NOT NULL,
    bucket    timestamptz NOT NULL,
    min       double precision NOT NULL,
    max       double precision NOT NULL,
    sum       double precision NOT NULL,
    count     bigint NOT NULL,
    last      double precision NOT NULL,
    PRIMARY KEY (series_id, bucket)
);

CREATE TABLE rollup_pending (
    bucket timestamptz PRIMARY KEY
);
