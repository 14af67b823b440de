-- Each packed table of 0007 splits in two, by what a query reads: the _sums
-- tables hold sum and count (avg, count), the _values tables min, max and last;
-- both hold slots. A row of all six columns is ~2.5 kB, three to a page, and an
-- avg read fetched every byte of it: reading 1,000 series for a day read 10,000
-- pages for 24,000 rows. Each half is read alone, on 2.4 (1.6) times fewer pages.
-- The rows move as they are; the rollup role writes both halves (store/packed.go).
CREATE TABLE samples_1m_packed_sums (
    series_id bigint NOT NULL,
    bucket    timestamptz NOT NULL,
    slots     bytea NOT NULL,
    sum       bytea NOT NULL,
    count     bytea NOT NULL,
    PRIMARY KEY (series_id, bucket)
);
CREATE TABLE samples_1m_packed_values (
    series_id bigint NOT NULL,
    bucket    timestamptz NOT NULL,
    slots     bytea NOT NULL,
    min       bytea NOT NULL,
    max       bytea NOT NULL,
    last      bytea NOT NULL,
    PRIMARY KEY (series_id, bucket)
);
CREATE TABLE samples_1h_packed_sums (LIKE samples_1m_packed_sums INCLUDING ALL);
CREATE TABLE samples_1h_packed_values (LIKE samples_1m_packed_values INCLUDING ALL);
ALTER TABLE samples_1m_packed_sums ALTER slots SET STORAGE PLAIN, ALTER sum SET STORAGE PLAIN, ALTER count SET STORAGE PLAIN;
ALTER TABLE samples_1h_packed_sums ALTER slots SET STORAGE PLAIN, ALTER sum SET STORAGE PLAIN, ALTER count SET STORAGE PLAIN;
ALTER TABLE samples_1m_packed_values ALTER slots SET STORAGE PLAIN, ALTER min SET STORAGE PLAIN,
    ALTER max SET STORAGE PLAIN, ALTER last SET STORAGE PLAIN;
ALTER TABLE samples_1h_packed_values ALTER slots SET STORAGE PLAIN, ALTER min SET STORAGE PLAIN,
    ALTER max SET STORAGE PLAIN, ALTER last SET STORAGE PLAIN;

INSERT INTO samples_1m_packed_sums SELECT series_id, bucket, slots, sum, count FROM samples_1m_packed;
INSERT INTO samples_1m_packed_values SELECT series_id, bucket, slots, min, max, last FROM samples_1m_packed;
INSERT INTO samples_1h_packed_sums SELECT series_id, bucket, slots, sum, count FROM samples_1h_packed;
INSERT INTO samples_1h_packed_values SELECT series_id, bucket, slots, min, max, last FROM samples_1h_packed;
DROP TABLE samples_1m_packed;
DROP TABLE samples_1h_packed;
