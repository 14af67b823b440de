DROP TABLE series;
DROP TABLE metrics;
DROP TABLE api_tokens;
DROP TABLE sessions;
DROP TABLE users;
