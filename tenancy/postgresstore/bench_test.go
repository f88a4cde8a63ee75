package postgresstore_test

import (
	"context"
	"testing"

	"github.com/systembuilderhub/hardening/tenancy/postgresstore"
	"github.com/systembuilderhub/hardening/tenancy/storetest"
)

// BenchmarkDecision measures one quota decision against the bare server
// round trip it is built from, in the same run on the same schema: the
// baseline is one autocommit one-row UPDATE.
//
//	POSTGRES_URL=… go test ./tenancy/postgresstore -run '^$' -bench Decision -benchmem
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
//	POSTGRES_URL=… go test ./tenancy/postgresstore -run '^$' -bench Ratio -benchmem
func BenchmarkRatio(b *testing.B) {
	s, update := benchStore(b)
	storetest.BenchRatio(b, s, storetest.T0, update)
}

// benchStore opens a store on a fresh schema and returns it with the
// baseline: one autocommit one-row UPDATE on the same server.
func benchStore(b *testing.B) (*postgresstore.Store, func() error) {
	db := migrated(b).DB
	s := newStore(b, db)
	db.MustExec(`INSERT INTO hardening_quota_spend (tenant_id, quota, period, spent) VALUES ('bench', 'base', 'base', 0)`)
	return s, func() error {
		_, err := db.ExecContext(context.Background(), `UPDATE hardening_quota_spend SET spent = spent + 1 WHERE tenant_id = 'bench' AND quota = 'base'`)
		return err
	}
}
