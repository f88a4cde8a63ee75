package flags_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/systembuilderhub/hardening/flags"
)

// An AuditPage marshals with the names the hub's audit endpoint uses
// (entries, next_cursor), not the Go field names.
func TestAuditPageJSON(t *testing.T) {
	page := flags.AuditPage{
		Entries:    []flags.Record{{ID: 7, Flag: "beta", NewValue: true, ChangedBy: "u1", ChangedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}},
		NextCursor: flags.EncodeCursor(7),
	}
	b, err := json.Marshal(page)
	require.NoError(t, err)
	var raw map[string]json.RawMessage
	require.NoError(t, json.Unmarshal(b, &raw))
	assert.Contains(t, raw, "entries")
	assert.JSONEq(t, `"a7"`, string(raw["next_cursor"]))
	assert.Len(t, raw, 2)

	var back flags.AuditPage
	require.NoError(t, json.Unmarshal(b, &back))
	assert.Equal(t, page, back)
}

// A Source is its name in JSON, the same word the hub's flag list shows
// in "source" and the evaluations metric uses as its result label.
func TestSourceJSON(t *testing.T) {
	for _, s := range []flags.Source{flags.SourceOverride, flags.SourceGlobal, flags.SourceDefault, flags.SourceUnknown, flags.SourceStale} {
		b, err := json.Marshal(map[string]flags.Source{"source": s})
		require.NoError(t, err)
		assert.JSONEq(t, `{"source":"`+s.String()+`"}`, string(b))
		var back map[string]flags.Source
		require.NoError(t, json.Unmarshal(b, &back))
		assert.Equal(t, s, back["source"])
	}
	var s flags.Source
	assert.Error(t, json.Unmarshal([]byte(`"sometimes"`), &s))
	_, err := json.Marshal(flags.Source(200))
	assert.Error(t, err)
}
