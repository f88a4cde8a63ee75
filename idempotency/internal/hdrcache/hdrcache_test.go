package hdrcache

import (
	"net/http"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Every decode is a copy the caller may change, and more header sets than
// the cache holds come back intact.
func TestDecodeCopies(t *testing.T) {
	var c Cache
	first, err := c.Decode(`{"Content-Type":["application/json"]}`)
	require.NoError(t, err)
	first["Content-Type"][0] = "text/plain"
	first.Set("X-Extra", "1")
	again, err := c.Decode(`{"Content-Type":["application/json"]}`)
	require.NoError(t, err)
	assert.Equal(t, http.Header{"Content-Type": {"application/json"}}, again)
	for round := range 2 {
		for i := range 2 * Max {
			h, err := c.Decode(`{"Etag":["` + strconv.Itoa(i) + `"]}`)
			require.NoError(t, err, "round %d", round)
			assert.Equal(t, http.Header{"Etag": {strconv.Itoa(i)}}, h)
		}
	}
	_, err = c.Decode(`{"Etag":`)
	require.Error(t, err)
}
