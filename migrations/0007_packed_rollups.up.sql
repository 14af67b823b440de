-- Packed rollups: the rows of samples_1m gathered an hour per series into one row,
-- and those of samples_1h a day per series, so a query over many series reads 60
-- (24) times fewer rows. slots holds one byte per packed bucket present, its offset
-- in the row's span in units of the narrow table's bucket, ascending; the value
-- columns hold the bucket values in the same order, 8 bytes each (float8send:
-- IEEE 754, big-endian), except that a count column holds a single value when
-- every bucket of the span has the same count. Storage PLAIN keeps them in line
-- and uncompressed: floats barely compress, and detoasting would cost more than
-- the rows saved. The rollup role writes them (store/packed.go), on TimescaleDB
-- from the continuous aggregates once their refresh window has passed.
--
-- Each tier has two tables, by what a query reads: _sums with sum and count (avg,
-- count), _values with min, max and last; both hold slots. A row of all six
-- columns is ~2.5 kB, three to a page, and an avg would fetch every byte of it.
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

-- Every span of a packed table that ends at or before through is packed; the spans
-- after it are read from the narrow table until the rollup role packs them. Rows
-- rolled up before this migration are packed by the rollup role's first run
-- (through starts at the epoch).
CREATE TABLE rollup_packed (
    tier    text PRIMARY KEY,
    through timestamptz NOT NULL
);
INSERT INTO rollup_packed VALUES ('1m', 'epoch'), ('1h', 'epoch');
