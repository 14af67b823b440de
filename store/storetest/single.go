package storetest

import (
	"context"
	"fmt"
	"os"

	"github.com/jackc/pgx/v5"
)

// singleDB reports AMAS_TEST_SINGLE_DB=1: the test server holds one database only
// (PGlite, which `make test-timescale` runs, serves every database name from the
// same one), so each test reuses it after emptying it instead of creating its own.
// Such a server also takes one connection at a time: run one package at a time
// (go test -p 1) with pool_max_conns=1 in AMAS_TEST_DATABASE_URL.
func singleDB() bool {
	return os.Getenv("AMAS_TEST_SINGLE_DB") == "1"
}

// resetSchema drops every object the previous test left in the public schema,
// except those of extensions: TimescaleDB cannot be created again in a session
// that has dropped it, and PGlite's one session lasts as long as the server.
// Continuous aggregates go first, since only DROP MATERIALIZED VIEW drops them.
const resetSchema = `
DO $reset$
DECLARE r record;
BEGIN
    IF to_regclass('timescaledb_information.continuous_aggregates') IS NOT NULL THEN
        FOR r IN EXECUTE 'SELECT format(''%I.%I'', view_schema, view_name) AS name
                          FROM timescaledb_information.continuous_aggregates' LOOP
            EXECUTE 'DROP MATERIALIZED VIEW IF EXISTS ' || r.name || ' CASCADE';
        END LOOP;
    END IF;
    FOR r IN
        SELECT CASE c.relkind WHEN 'v' THEN 'VIEW' WHEN 'm' THEN 'MATERIALIZED VIEW'
                              WHEN 'S' THEN 'SEQUENCE' ELSE 'TABLE' END AS kind,
               format('%I.%I', n.nspname, c.relname) AS name
        FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p', 'v', 'm', 'S') AND NOT c.relispartition
          AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = c.oid AND d.deptype = 'e')
    LOOP
        EXECUTE format('DROP %s IF EXISTS %s CASCADE', r.kind, r.name);
    END LOOP;
    FOR r IN
        SELECT p.oid::regprocedure::text AS name FROM pg_proc p
        WHERE p.pronamespace = 'public'::regnamespace
          AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = p.oid AND d.deptype = 'e')
    LOOP
        EXECUTE 'DROP ROUTINE IF EXISTS ' || r.name || ' CASCADE';
    END LOOP;
    FOR r IN
        SELECT format('%I.%I', 'public', t.typname) AS name FROM pg_type t
        WHERE t.typnamespace = 'public'::regnamespace AND t.typtype IN ('e', 'c', 'd', 'r')
          AND (t.typrelid = 0 OR (SELECT c.relkind FROM pg_class c WHERE c.oid = t.typrelid) = 'c')
          AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.objid = t.oid AND d.deptype = 'e')
    LOOP
        EXECUTE 'DROP TYPE IF EXISTS ' || r.name || ' CASCADE';
    END LOOP;
END
$reset$`

func resetSingleDB(ctx context.Context) (*DB, error) {
	conn, err := pgx.Connect(ctx, AdminURL())
	if err != nil {
		return nil, fmt.Errorf("connect to test server: %w", err)
	}
	defer conn.Close(ctx)
	var name string
	if err := conn.QueryRow(ctx, `SELECT current_database()`).Scan(&name); err != nil {
		return nil, fmt.Errorf("reset test database: %w", err)
	}
	if _, err := conn.Exec(ctx, resetSchema); err != nil {
		return nil, fmt.Errorf("reset test database: %w", err)
	}
	return &DB{Name: name, URL: AdminURL()}, nil
}
