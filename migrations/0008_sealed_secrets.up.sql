-- Channel secrets sealed with the server's --secret-key-file (AES-256-GCM, see
-- internal/secretkey): a dump of the database does not give them away. A row
-- holds its secrets either here, sealed, or in the plain secrets column (a
-- server started without a key); a server with a key seals plain rows at start.
ALTER TABLE notify_channels ADD COLUMN secrets_sealed bytea;
