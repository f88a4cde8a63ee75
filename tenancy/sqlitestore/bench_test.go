package sqlitestore_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/systembuilderhub/hardening/internal/testenv"
	"github.com/systembuilderhub/hardening/tenancy/sqlitestore"
	"github.com/systembuilderhub/hardening/tenancy/storetest"
)

// BenchmarkDecision measures one quota decision against the bare store
// round trip it is built from, in the same run on the same file: the
// baseline is one autocommit one-row UPDATE.
//
//	go test ./tenancy/sqlitestore -run '^$' -bench Decision -benchmem
func BenchmarkDecision(b *testing.B) {
	s, update := benchStore(b)
	b.Run("baseline_update", func(b *testing.B) {
		for b.Loop() {
			if err := update(); err != nil {
				b.Fatal(err)
			}
		}
	})
	storetest.BenchDecisions(b, s, storetest.T0)
}

// BenchmarkRatio interleaves the bare one-row UPDATE and one decision in
// every iteration, so both see the same machine load, and reports the
// decision rate as a fraction of the UPDATE rate (rate-ratio).
//
//	go test ./tenancy/sqlitestore -run '^$' -bench Ratio -benchmem
func BenchmarkRatio(b *testing.B) {
	s, update := benchStore(b)
	storetest.BenchRatio(b, s, storetest.T0, update)
}

// benchStore opens a store on a fresh file and returns it with the
// baseline: one autocommit one-row UPDATE on the same file.
func benchStore(b *testing.B) (*sqlitestore.Store, func() error) {
	db := testenv.SQLite(b)
	s, err := sqlitestore.New(db)
	require.NoError(b, err)
	db.MustExec(`INSERT INTO hardening_quota_spend (tenant_id, quota, period, spent) VALUES ('bench', 'base', 'base', 0)`)
	return s, func() error {
		_, err := db.ExecContext(context.Background(), `UPDATE hardening_quota_spend SET spent = spent + 1 WHERE tenant_id = 'bench' AND quota = 'base'`)
		return err
	}
}
