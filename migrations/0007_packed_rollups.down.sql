DROP TABLE IF EXISTS rollup_packed;
DROP TABLE IF EXISTS samples_1h_packed;
DROP TABLE IF EXISTS samples_1m_packed;
