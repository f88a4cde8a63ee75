package keyrules

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestKeyIDRoundTrip(t *testing.T) {
	t.Parallel()
	start := time.Date(2030, 6, 1, 16, 0, 0, 0, time.FixedZone("x", 3600))
	id := KeyID(start)
	assert.Equal(t, "20300601T150000Z", id)
	got, ok := ParseKeyID(id)
	assert.True(t, ok)
	assert.True(t, got.Equal(start))
	for _, bad := range []string{"", "20300601T150000", "20300601X150000Z", "2030060aT150000Z", "20301301T150000Z", "../../etc/passwd", "20300601T150000Z\x00"} {
		_, ok := ParseKeyID(bad)
		assert.False(t, ok, "%q", bad)
	}
}

func TestChecks(t *testing.T) {
	t.Parallel()
	start := time.Date(2030, 6, 1, 0, 0, 0, 0, time.UTC)
	secret := make([]byte, SecretSize)
	assert.NoError(t, CheckKey("k", secret, start, start.Add(time.Hour)))
	assert.Error(t, CheckKey("", secret, start, start.Add(time.Hour)))
	assert.Error(t, CheckKey("k", secret[:31], start, start.Add(time.Hour)))
	assert.Error(t, CheckKey("k", secret, time.Time{}, start))
	assert.Error(t, CheckKey("k", secret, start, start))
	assert.NoError(t, CheckRevocation("pid", "p1", start))
	assert.NoError(t, CheckRevocation("jti", "j1", start))
	assert.Error(t, CheckRevocation("sub", "x", start))
	assert.Error(t, CheckRevocation("pid", "", start))
	assert.Error(t, CheckRevocation("pid", "p1", time.Time{}))
}
