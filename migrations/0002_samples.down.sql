DROP TABLE rollup_pending;
DROP TABLE samples_1h;
DROP TABLE samples_1m;
DROP TABLE samples;
