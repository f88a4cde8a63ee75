package postgresstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/systembuilderhub/hardening/internal/testenv"
	"github.com/systembuilderhub/hardening/previewsec"
	"github.com/systembuilderhub/hardening/previewsec/postgresstore"
)

// TestOneStatementPerCall checks the package doc's table: every method is
// one statement, whether it creates or finds, deletes something or nothing.
func TestOneStatementPerCall(t *testing.T) {
	ctx := context.Background()
	p := testenv.PostgresKit(t)
	db, count := p.OpenCounting(t)
	s, err := postgresstore.New(db)
	require.NoError(t, err)
	assert.EqualValues(t, 1, count.N(), "New")

	start := time.Date(2030, 1, 2, 0, 0, 0, 0, time.UTC)
	key := previewsec.Key{ID: "20300102T000000Z", PeriodStart: start, Secret: make([]byte, 32), CreatedAt: start, ExpiresAt: start.Add(25 * time.Hour)}
	rev := previewsec.Revocation{Kind: previewsec.RevokePreviewID, Value: "p1", RevokedAt: start, ExpiresAt: start.Add(time.Hour)}
	calls := []struct {
		name string
		call func() error
	}{
		{"CreateKey created", func() error { r, err := s.CreateKey(ctx, key); assert.True(t, r.Created); return err }},
		{"CreateKey found", func() error { r, err := s.CreateKey(ctx, key); assert.False(t, r.Created); return err }},
		{"Keys", func() error { k, err := s.Keys(ctx, start); assert.Len(t, k, 1); return err }},
		{"DeleteExpiredKeys none", func() error { _, err := s.DeleteExpiredKeys(ctx, start); return err }},
		{"DeleteExpiredKeys one", func() error {
			n, err := s.DeleteExpiredKeys(ctx, start.Add(26*time.Hour))
			assert.Equal(t, 1, n)
			return err
		}},
		{"Revoke new", func() error { return s.Revoke(ctx, rev) }},
		{"Revoke existing", func() error { return s.Revoke(ctx, rev) }},
		{"Revocations", func() error { r, err := s.Revocations(ctx, start); assert.Len(t, r, 1); return err }},
		{"DeleteExpiredRevocations", func() error {
			n, err := s.DeleteExpiredRevocations(ctx, start.Add(time.Hour))
			assert.Equal(t, 1, n)
			return err
		}},
	}
	for _, c := range calls {
		before := count.N()
		require.NoError(t, c.call(), c.name)
		assert.EqualValues(t, 1, count.N()-before, c.name)
	}
}
