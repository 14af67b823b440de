DROP TABLE span_operations;
DROP TABLE spans;
