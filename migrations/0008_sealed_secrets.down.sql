-- Sealed secrets go with the column: going below 0008 means entering them again.
ALTER TABLE notify_channels DROP COLUMN IF EXISTS secrets_sealed;
