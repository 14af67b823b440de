-- Dropping the column would lose the sealed secrets without a word: refuse while
-- any channel holds some (delete those channels first, or drop the column by
-- hand if losing them is meant).
DO $$
DECLARE n bigint;
BEGIN
    SELECT count(*) INTO n FROM notify_channels WHERE secrets_sealed IS NOT NULL;
    IF n > 0 THEN
        RAISE EXCEPTION '% notification channels hold sealed secrets, which going below migration 0008 would lose: delete those channels first', n;
    END IF;
END
$$;
ALTER TABLE notify_channels DROP COLUMN IF EXISTS secrets_sealed;
