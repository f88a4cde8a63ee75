package sqlitestore_test

import (
	"context"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/systembuilderhub/hardening/migrate"
)

func sqlitestoreOpen(ctx context.Context, path string) (*sqlx.DB, error) {
	return migrate.OpenSQLite(ctx, path, 10*time.Second)
}
