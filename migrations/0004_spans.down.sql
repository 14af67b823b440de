DROP TABLE span_operations;
DROP SEQUENCE span_batches;
DROP TABLE spans;
