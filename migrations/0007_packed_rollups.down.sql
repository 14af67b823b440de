DROP TABLE IF EXISTS rollup_packed;
DROP TABLE IF EXISTS samples_1h_packed_values, samples_1h_packed_sums;
DROP TABLE IF EXISTS samples_1m_packed_values, samples_1m_packed_sums;
