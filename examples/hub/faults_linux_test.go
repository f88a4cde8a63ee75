package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// setFileSizeLimit sets the soft RLIMIT_FSIZE of process pid (prlimit(2));
// the hard limit is left as it is, so no privilege is needed to lift it
// again. A Go process ignores SIGXFSZ: a write past the limit fails with
// EFBIG, which SQLite reports like a full disk (an I/O error).
func setFileSizeLimit(pid int, soft uint64) error {
	var cur syscall.Rlimit
	if _, _, e := syscall.RawSyscall6(syscall.SYS_PRLIMIT64, uintptr(pid), syscall.RLIMIT_FSIZE, 0, uintptr(unsafe.Pointer(&cur)), 0, 0); e != 0 {
		return e
	}
	next := syscall.Rlimit{Cur: min(soft, cur.Max), Max: cur.Max}
	if _, _, e := syscall.RawSyscall6(syscall.SYS_PRLIMIT64, uintptr(pid), syscall.RLIMIT_FSIZE, uintptr(unsafe.Pointer(&next)), 0, 0, 0); e != 0 {
		return e
	}
	return nil
}

func fileSize(path string) int64 {
	st, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return st.Size()
}

// TestFaultDiskFull stands for a full disk: the hub's files may not grow
// past their current size (RLIMIT_FSIZE on the hub process), while large
// idempotent responses must be stored. Every failure must be a clean
// problem answer, the process must stay up, writes must recover once space
// is back (limit lifted, no restart) and the file must pass integrity_check.
func TestFaultDiskFull(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "hub.db")
	h := startHub(t, "HUB_AUTH_SECRET="+testAuthSecret, "DATABASE_URL=sqlite:///"+path)
	url := "http://" + h.addr + "/api/v1/echo"
	tok := testToken(t, "u1", "full-"+randHex(4), false)
	c := newHubClient(t)
	bg := context.Background()
	r := c.do(bg, "POST", url, tok, `{"n":0}`, "Idempotency-Key", "before")
	require.Equal(t, 201, r.status, "%v", r)

	limit := max(fileSize(path), fileSize(path+"-wal")) + 1<<20
	require.NoError(t, setFileSizeLimit(h.cmd.Process.Pid, uint64(limit)))
	big := `"` + strings.Repeat("x", 200<<10) + `"`
	stats := newLoadStats()
	var full result
	var answered []string // keys answered 201 under the limit, with their bodies
	for i := range 200 {
		body := big
		if i%2 == 1 {
			body = `{"n":1}`
		}
		r := c.do(bg, "POST", url, tok, body, "Idempotency-Key", fmt.Sprintf("full-%d", i))
		stats.record("POST /api/v1/echo", r, 201)
		if r.status == 201 {
			answered = append(answered, fmt.Sprintf("full-%d", i), body)
		}
		if r.status >= 500 {
			full = r
			break
		}
	}
	require.NotZero(t, full.status, "no write failed under a %d-byte file size limit: %v", limit, stats.counts)
	assert.True(t, isProblem503(full, "idempotency_store_unavailable"), "disk full: want 503 problem, got %v", full)
	assert.Empty(t, stats.unexpected, "every failure is a documented 503 problem")
	r = c.do(bg, "POST", "http://"+h.addr+"/api/v1/previews", tok, `{"system_id":"s"}`)
	stats.record("POST /api/v1/previews", r, 201)
	assert.Equal(t, "application/problem+json", r.header.Get("Content-Type"), "a preview while the disk is full: %v", r)
	r = c.do(bg, "GET", "http://"+h.addr+"/livez", "", "")
	assert.Equal(t, 200, r.status, "the hub stays up")

	// Space is back: writes work again without a restart.
	require.NoError(t, setFileSizeLimit(h.cmd.Process.Pid, ^uint64(0)))
	eventually(t, 10e9, "writes recover once space is back", func() (bool, string) {
		r := c.do(bg, "POST", url, tok, big, "Idempotency-Key", "after-"+randHex(4))
		return r.status == 201, r.String()
	})
	r = c.do(bg, "POST", url, tok, `{"n":0}`, "Idempotency-Key", "before")
	assert.True(t, r.replay(), "a record stored before the disk filled survives: %v", r)
	// A key answered while its record could not be stored stays locked
	// (409) for IDEMPOTENCY_LOCK_TIMEOUT; none runs again meanwhile.
	replayed, locked := 0, 0
	for i := 0; i < len(answered); i += 2 {
		r := c.do(bg, "POST", url, tok, answered[i+1], "Idempotency-Key", answered[i])
		switch {
		case r.status == 201 && r.replay():
			replayed++
		case r.status == 409:
			locked++
		default:
			t.Errorf("retry of %s: %v", answered[i], r)
		}
	}

	db := openTestDB(t, path)
	var check string
	require.NoError(t, db.Get(&check, "PRAGMA integrity_check"))
	assert.Equal(t, "ok", check)
	t.Logf("disk full (file size limit %d bytes): %v; first failure %d %s; of the keys answered meanwhile %d replay, %d stay locked (response sent, record lost); recovered without restart; integrity_check %s",
		limit, stats.counts, full.status, full.str("reason"), replayed, locked, check)
	for _, l := range strings.Split(h.logs(), "\n") {
		if strings.Contains(l, "ERROR") {
			t.Log(l)
		}
	}
}
