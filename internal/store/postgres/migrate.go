package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Migrations. The schema is the numbered SQL files of migrations/
// (NNNN_name.sql), embedded in the build and applied in order by Open:
// all of them in one transaction under an advisory lock, so instances
// starting together apply each exactly once and a failed migration leaves
// the database as it was. Each applied version is recorded in
// schema_migrations (version, name, applied_at). A database that records
// a version this build does not know is refused: a newer build migrated
// it. The policy:
//
//   - a released migration is never edited; a change is a new file with
//     the next number;
//   - migrations only add (tables, columns with defaults, indexes,
//     triggers), so the previous build keeps working during a rolling
//     upgrade until it is restarted, when it refuses the newer version;
//   - outpost_schema_version (the v1 marker, read by builds before this
//     runner) is kept at the newest version applied, so those builds
//     refuse a migrated database too.
//
// A database created before the runner (outpost_schema_version = 1, no
// schema_migrations) has exactly migration 1's layout: it is recorded as
// applied and the later ones run.

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migration is one numbered SQL file.
type migration struct {
	version int
	name    string
	sql     string
}

// migrations are the embedded migrations in version order.
var migrations = mustLoadMigrations(migrationFiles)

// SchemaVersion is the newest migration this build applies.
var SchemaVersion = migrations[len(migrations)-1].version

func mustLoadMigrations(fsys fs.FS) []migration {
	ms, err := loadMigrations(fsys)
	if err != nil {
		panic(err)
	}
	return ms
}

// loadMigrations reads migrations/NNNN_name.sql, which must be numbered
// 1, 2, 3… without a gap.
func loadMigrations(fsys fs.FS) ([]migration, error) {
	names, err := fs.Glob(fsys, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	var ms []migration
	for _, n := range names {
		base := strings.TrimSuffix(path.Base(n), ".sql")
		num, name, ok := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v < 1 {
			return nil, fmt.Errorf("migration %s: want NNNN_name.sql", n)
		}
		b, err := fs.ReadFile(fsys, n)
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: name, sql: string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	for i, m := range ms {
		if m.version != i+1 {
			return nil, fmt.Errorf("migration %d_%s: versions must run 1, 2, 3… without a gap", m.version, m.name)
		}
	}
	if len(ms) == 0 {
		return nil, errors.New("no migrations")
	}
	return ms, nil
}

// schemaLock is the advisory lock key that serializes migrations, so
// instances starting together do not race.
const schemaLock = 0x6f7574706f7374 // "outpost"

// migrate brings the database (schemaName, when set) to this build's
// migrations.
func migrate(ctx context.Context, pool *pgxpool.Pool, schemaName string) error {
	return migrateTo(ctx, pool, schemaName, migrations)
}

func migrateTo(ctx context.Context, pool *pgxpool.Pool, schemaName string, ms []migration) error {
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", int64(schemaLock)); err != nil {
			return fmt.Errorf("lock schema: %w", err)
		}
		if schemaName != "" {
			if _, err := tx.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+pgx.Identifier{schemaName}.Sanitize()); err != nil {
				return fmt.Errorf("create schema %s: %w", schemaName, err)
			}
		}
		_, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version    integer PRIMARY KEY,
			name       text NOT NULL,
			applied_at timestamptz NOT NULL DEFAULT now()
		)`)
		if err != nil {
			return fmt.Errorf("create schema_migrations: %w", err)
		}
		current, err := appliedVersion(ctx, tx)
		if err != nil {
			return err
		}
		newest := ms[len(ms)-1].version
		if current > newest {
			return fmt.Errorf("store schema version %d is newer than this build's %d: run a newer build", current, newest)
		}
		for _, m := range ms[current:] {
			if _, err := tx.Exec(ctx, m.sql); err != nil {
				return fmt.Errorf("migration %d_%s: %w", m.version, m.name, err)
			}
			if _, err := tx.Exec(ctx, "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", m.version, m.name); err != nil {
				return fmt.Errorf("record migration %d: %w", m.version, err)
			}
		}
		// The marker of builds before the runner.
		tag, err := tx.Exec(ctx, "UPDATE outpost_schema_version SET version = $1", newest)
		if err == nil && tag.RowsAffected() == 0 {
			_, err = tx.Exec(ctx, "INSERT INTO outpost_schema_version (version) VALUES ($1)", newest)
		}
		if err != nil {
			return fmt.Errorf("write schema version: %w", err)
		}
		return nil
	})
}

// appliedVersion is the newest migration recorded, the v1 layout counted
// as migration 1, or a newer version a newer build wrote into the v1
// marker.
func appliedVersion(ctx context.Context, tx pgx.Tx) (int, error) {
	var current int
	if err := tx.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM schema_migrations").Scan(&current); err != nil {
		return 0, fmt.Errorf("read schema_migrations: %w", err)
	}
	var legacy *string
	if err := tx.QueryRow(ctx, "SELECT to_regclass('outpost_schema_version')::text").Scan(&legacy); err != nil {
		return 0, fmt.Errorf("look for outpost_schema_version: %w", err)
	}
	if legacy == nil {
		return current, nil
	}
	var marker int
	err := tx.QueryRow(ctx, "SELECT version FROM outpost_schema_version").Scan(&marker)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return current, nil
	case err != nil:
		return 0, fmt.Errorf("read schema version: %w", err)
	case marker > current && current > 0 || marker > 1 && current == 0:
		// Written by a build that knows more migrations (it keeps the
		// marker at its newest), or a v1 database edited by hand.
		return marker, nil
	case current == 0:
		// The v1 layout, from before the runner: it is migration 1.
		if _, err := tx.Exec(ctx, "INSERT INTO schema_migrations (version, name) VALUES (1, 'kv')"); err != nil {
			return 0, fmt.Errorf("record the v1 layout: %w", err)
		}
		return 1, nil
	}
	return current, nil
}
