package postgresstore_test

import (
	"bytes"
	"context"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/systembuilderhub/hardening/internal/testenv"
	"github.com/systembuilderhub/hardening/previewsec"
	"github.com/systembuilderhub/hardening/previewsec/postgresstore"
)

// TestConcurrentCreateSeesTheWinner hammers the moment a period's key is
// created: for each of many periods, 12 callers on their own connections
// are released at once. Every caller must get the winner's key without an
// error; a create-if-absent whose read shares the INSERT's snapshot misses
// a key committed while the INSERT waited, and fails here. The same holds
// when the pool's default isolation is stricter than READ COMMITTED, where
// the server reports serialization failures that CreateKey retries.
func TestConcurrentCreateSeesTheWinner(t *testing.T) {
	for _, iso := range []string{"", "repeatable read", "serializable"} {
		t.Run("isolation="+iso, func(t *testing.T) {
			p := testenv.PostgresKit(t)
			u := p.URL
			if iso != "" {
				u += "&default_transaction_isolation=" + url.PathEscape(iso)
			}
			db, err := sqlx.Open("pgx", u)
			require.NoError(t, err)
			t.Cleanup(func() { _ = db.Close() })
			createConcurrently(t, db)
		})
	}
}

func createConcurrently(t *testing.T, db *sqlx.DB) {
	const callers, periods = 12, 25
	ctx := context.Background()
	db.SetMaxOpenConns(callers)
	db.SetMaxIdleConns(callers)
	s, err := postgresstore.New(db)
	require.NoError(t, err)
	base := time.Date(2030, 3, 1, 0, 0, 0, 0, time.UTC)
	for i := range periods {
		start := base.Add(time.Duration(i) * 24 * time.Hour)
		results := make([]previewsec.KeyCreateResult, callers)
		errs := make([]error, callers)
		release := make(chan struct{})
		var wg sync.WaitGroup
		for c := range callers {
			wg.Go(func() {
				<-release
				results[c], errs[c] = s.CreateKey(ctx, previewsec.Key{ID: start.Format("20060102T150405Z"), PeriodStart: start,
					Secret: bytes.Repeat([]byte{byte(c + 1)}, 32), CreatedAt: start, ExpiresAt: start.Add(25 * time.Hour)})
			})
		}
		close(release)
		wg.Wait()
		created := 0
		for c := range callers {
			require.NoError(t, errs[c], "period %d caller %d", i, c)
			if results[c].Created {
				created++
			}
			assert.Equal(t, results[0].Key.Secret, results[c].Key.Secret, "period %d caller %d", i, c)
		}
		assert.Equal(t, 1, created, "period %d", i)
	}
}
