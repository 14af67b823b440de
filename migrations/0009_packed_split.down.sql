-- Join the halves back into the packed tables of 0007.
CREATE TABLE samples_1m_packed (
    series_id bigint NOT NULL,
    bucket    timestamptz NOT NULL,
    slots     bytea NOT NULL,
    min       bytea NOT NULL,
    max       bytea NOT NULL,
    sum       bytea NOT NULL,
    count     bytea NOT NULL,
    last      bytea NOT NULL,
    PRIMARY KEY (series_id, bucket)
);
CREATE TABLE samples_1h_packed (LIKE samples_1m_packed INCLUDING ALL);
ALTER TABLE samples_1m_packed ALTER slots SET STORAGE PLAIN, ALTER min SET STORAGE PLAIN,
    ALTER max SET STORAGE PLAIN, ALTER sum SET STORAGE PLAIN, ALTER count SET STORAGE PLAIN,
    ALTER last SET STORAGE PLAIN;
ALTER TABLE samples_1h_packed ALTER slots SET STORAGE PLAIN, ALTER min SET STORAGE PLAIN,
    ALTER max SET STORAGE PLAIN, ALTER sum SET STORAGE PLAIN, ALTER count SET STORAGE PLAIN,
    ALTER last SET STORAGE PLAIN;
INSERT INTO samples_1m_packed
SELECT s.series_id, s.bucket, s.slots, v.min, v.max, s.sum, s.count, v.last
FROM samples_1m_packed_sums s JOIN samples_1m_packed_values v USING (series_id, bucket);
INSERT INTO samples_1h_packed
SELECT s.series_id, s.bucket, s.slots, v.min, v.max, s.sum, s.count, v.last
FROM samples_1h_packed_sums s JOIN samples_1h_packed_values v USING (series_id, bucket);
DROP TABLE samples_1m_packed_sums, samples_1m_packed_values, samples_1h_packed_sums, samples_1h_packed_values;
