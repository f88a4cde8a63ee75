package container

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestReadCgroupLimits(t *testing.T) {
	t.Parallel()
	rel := "/user.slice/app.scope"
	root, proc := cgroupTree(t, 10, rel, map[string]string{
		rel + "/cpu.max": "150000 100000", rel + "/memory.max": "104857600", rel + "/pids.max": "64",
		"/user.slice/cpu.max": "50000 100000", "/user.slice/pids.max": "max",
	})
	l, err := ReadCgroupLimits(root, proc, 10)
	require.NoError(t, err)
	assert.Equal(t, CgroupLimits{Path: rel, CPUs: 0.5, MemoryMax: 104857600, PidsMax: 64}, l, "the parent's tighter cpu.max binds")

	// Malformed files are errors, not silently "unlimited".
	for _, bad := range []string{"abc", "-5", "0 100000", "1 2 3"} {
		root, proc := cgroupTree(t, 11, "/x", map[string]string{"/x/cpu.max": bad, "/x/memory.max": bad})
		_, err := ReadCgroupLimits(root, proc, 11)
		assert.Error(t, err, bad)
		assert.False(t, errors.Is(err, ErrCgroupUnavailable), bad)
	}

	// cgroup v1 only: no "0::" line.
	root, proc = cgroupTree(t, 12, "/", nil)
	require.NoError(t, os.WriteFile(filepath.Join(proc, "12", "cgroup"), []byte("4:memory:/docker/abc\n3:cpu,cpuacct:/docker/abc\n"), 0o644))
	_, err = ReadCgroupLimits(root, proc, 12)
	assert.ErrorIs(t, err, ErrCgroupUnavailable)

	// Not a cgroup v2 mount.
	_, err = ReadCgroupLimits(t.TempDir(), proc, 12)
	assert.ErrorIs(t, err, ErrCgroupUnavailable)
	_, err = ReadCgroupLimits(root, proc, 0)
	assert.ErrorIs(t, err, ErrCgroupUnavailable)

	// A path that tries to climb out of the mount stays inside it.
	root, proc = cgroupTree(t, 13, "/a", map[string]string{"/a/memory.max": "4096"})
	require.NoError(t, os.WriteFile(filepath.Join(proc, "13", "cgroup"), []byte("0::/../../a\n"), 0o644))
	l, err = ReadCgroupLimits(root, proc, 13)
	require.NoError(t, err)
	assert.Equal(t, "/a", l.Path)
	assert.Equal(t, int64(4096), l.MemoryMax)
}

// TestReadCgroupLimitsRealProcess reads the test process's own cgroup.
// Where /sys/fs/cgroup is cgroup v2 the read must succeed; elsewhere (v1
// or hybrid hosts, like some CI runners) it must report the cgroup as
// unavailable rather than fail or invent limits.
func TestReadCgroupLimitsRealProcess(t *testing.T) {
	t.Parallel()
	l, err := ReadCgroupLimits("/sys/fs/cgroup", "/proc", os.Getpid())
	if _, statErr := os.Stat("/sys/fs/cgroup/cgroup.controllers"); statErr != nil {
		assert.ErrorIs(t, err, ErrCgroupUnavailable)
		t.Logf("/sys/fs/cgroup is not cgroup v2 here: %v", err)
		return
	}
	if errors.Is(err, ErrCgroupUnavailable) {
		// cgroup v2 mounted, but this process is in a v1 hierarchy only.
		t.Logf("cgroup v2 mounted but unavailable for this process: %v", err)
		return
	}
	require.NoError(t, err)
	assert.NotEmpty(t, l.Path)
	t.Logf("real cgroup %s: cpus=%v memory.max=%d pids.max=%d", l.Path, l.CPUs, l.MemoryMax, l.PidsMax)
}
