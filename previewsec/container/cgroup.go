package container

import (
	"bufio"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
)

// ErrCgroupUnavailable is wrapped by ReadCgroupLimits when a process's
// cgroup v2 files cannot be read here (no cgroup v2 mount, cgroup v1 only,
// the pid not visible in this pid namespace). The container checks report
// it as skipped, not failed.
var ErrCgroupUnavailable = errors.New("container: cgroup v2 files unavailable")

// CgroupLimits are the limits the kernel enforces on a process, read from
// cgroup v2 files. Each value is the most restrictive one along the path
// from the process's cgroup up to the root, since a parent's limit binds
// its children. -1 means unlimited ("max" everywhere or no such file).
type CgroupLimits struct {
	// Path is the process's cgroup, relative to the cgroup v2 mount.
	Path string `json:"path"`
	// CPUs is cpu.max quota divided by period, -1 when unlimited.
	CPUs float64 `json:"cpus"`
	// MemoryMax is memory.max in bytes, -1 when unlimited.
	MemoryMax int64 `json:"memory_max"`
	// PidsMax is pids.max, -1 when unlimited.
	PidsMax int64 `json:"pids_max"`
}

// ReadCgroupLimits reads the cgroup v2 limits of process pid. cgroupRoot is
// the cgroup v2 mount (normally /sys/fs/cgroup), procRoot the proc mount
// (normally /proc); both may point at copies in tests.
func ReadCgroupLimits(cgroupRoot, procRoot string, pid int) (CgroupLimits, error) {
	l := CgroupLimits{CPUs: -1, MemoryMax: -1, PidsMax: -1}
	if pid <= 0 {
		return l, fmt.Errorf("%w: no process id", ErrCgroupUnavailable)
	}
	if _, err := os.Stat(filepath.Join(cgroupRoot, "cgroup.controllers")); err != nil {
		return l, fmt.Errorf("%w: %s is not a cgroup v2 mount", ErrCgroupUnavailable, cgroupRoot)
	}
	f, err := os.Open(filepath.Join(procRoot, strconv.Itoa(pid), "cgroup"))
	if err != nil {
		return l, fmt.Errorf("%w: process %d is not visible here (another pid namespace or host?)", ErrCgroupUnavailable, pid)
	}
	defer f.Close()
	rel := ""
	found := false
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if p, ok := strings.CutPrefix(sc.Text(), "0::"); ok {
			rel, found = p, true
			break
		}
	}
	if err := sc.Err(); err != nil {
		return l, fmt.Errorf("container: read cgroup of process %d: %w", pid, err)
	}
	if !found {
		return l, fmt.Errorf("%w: process %d has no cgroup v2 membership (cgroup v1 only)", ErrCgroupUnavailable, pid)
	}
	rel = path.Clean("/" + strings.TrimSpace(rel))
	l.Path = rel
	// Walk from the process's cgroup up to the root; filepath.Join after
	// Clean("/"+rel) cannot leave cgroupRoot.
	for dir := rel; ; dir = path.Dir(dir) {
		full := filepath.Join(cgroupRoot, filepath.FromSlash(dir))
		if cpus, ok, err := cgroupReadCPUMax(filepath.Join(full, "cpu.max")); err != nil {
			return l, err
		} else if ok && (l.CPUs < 0 || cpus < l.CPUs) {
			l.CPUs = cpus
		}
		if v, ok, err := cgroupReadMax(filepath.Join(full, "memory.max")); err != nil {
			return l, err
		} else if ok && (l.MemoryMax < 0 || v < l.MemoryMax) {
			l.MemoryMax = v
		}
		if v, ok, err := cgroupReadMax(filepath.Join(full, "pids.max")); err != nil {
			return l, err
		} else if ok && (l.PidsMax < 0 || v < l.PidsMax) {
			l.PidsMax = v
		}
		if dir == "/" {
			break
		}
	}
	return l, nil
}

// cgroupReadFile reads a small cgroup file; ok is false when it does not
// exist (controller not enabled at that level).
func cgroupReadFile(name string) (string, bool, error) {
	b, err := os.ReadFile(name)
	if errors.Is(err, fs.ErrNotExist) {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("container: read %s: %w", name, err)
	}
	return strings.TrimSpace(string(b)), true, nil
}

// cgroupReadMax reads a file holding "max" or a non-negative integer. ok is
// false for "max" or a missing file.
func cgroupReadMax(name string) (int64, bool, error) {
	s, ok, err := cgroupReadFile(name)
	if err != nil || !ok || s == "max" {
		return 0, false, err
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v < 0 {
		return 0, false, fmt.Errorf("container: %s: unexpected content %q", name, s)
	}
	return v, true, nil
}

// cgroupReadCPUMax reads cpu.max ("$MAX $PERIOD", $MAX possibly "max").
func cgroupReadCPUMax(name string) (float64, bool, error) {
	s, ok, err := cgroupReadFile(name)
	if err != nil || !ok {
		return 0, false, err
	}
	f := strings.Fields(s)
	if len(f) == 0 || len(f) > 2 {
		return 0, false, fmt.Errorf("container: %s: unexpected content %q", name, s)
	}
	if f[0] == "max" {
		return 0, false, nil
	}
	quota, err := strconv.ParseInt(f[0], 10, 64)
	if err != nil || quota <= 0 {
		return 0, false, fmt.Errorf("container: %s: unexpected content %q", name, s)
	}
	period := int64(100000)
	if len(f) == 2 {
		period, err = strconv.ParseInt(f[1], 10, 64)
		if err != nil || period <= 0 {
			return 0, false, fmt.Errorf("container: %s: unexpected content %q", name, s)
		}
	}
	return math.Round(float64(quota)/float64(period)*1e6) / 1e6, true, nil
}
