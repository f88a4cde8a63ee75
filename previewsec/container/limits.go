package container

import (
	"errors"
	"strconv"
	"strings"
)

// Limits are what a preview container is expected to run with.
type Limits struct {
	// CPUs is the most CPU the container may have; the limit must be set
	// and at most this. Default 0.5.
	CPUs float64
	// MemoryBytes is the most memory it may have; the limit must be set
	// and at most this. Default 512 MiB.
	MemoryBytes int64
	// NetworkMode is the expected network mode ("default" counts as
	// "bridge"). Default "bridge".
	NetworkMode string
	// SecurityOpts must all be present ("no-new-privileges",
	// "apparmor=docker-default", ...). Default ["no-new-privileges"].
	// Seccomp "unconfined" is always a failed check, even when listed here.
	SecurityOpts []string
	// AllowedCapabilities may appear in CapAdd (names with or without the
	// CAP_ prefix). Default none.
	AllowedCapabilities []string
	// ReadOnlyRootfs, when true, requires a read-only root file system.
	ReadOnlyRootfs bool
	// Runtime, when set, is the required OCI runtime (for example "runsc").
	Runtime string
}

// DefaultLimits returns the documented defaults.
func DefaultLimits() Limits {
	return Limits{CPUs: 0.5, MemoryBytes: 512 << 20, NetworkMode: "bridge", SecurityOpts: []string{"no-new-privileges"}}
}

// ParseMemory parses a memory size: a positive integer of bytes with
// an optional b, k, m or g suffix (case-insensitive, powers of 1024).
func ParseMemory(s string) (int64, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	mult := int64(1)
	if s != "" {
		switch s[len(s)-1] {
		case 'k':
			mult = 1 << 10
		case 'm':
			mult = 1 << 20
		case 'g':
			mult = 1 << 30
		case 'b':
			mult = 1
		}
		if mult != 1 || s[len(s)-1] == 'b' {
			s = s[:len(s)-1]
		}
	}
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil || v <= 0 || v > (1<<62)/mult {
		return 0, errors.New("want a positive size such as 512m, 2g or 1048576")
	}
	return v * mult, nil
}

// Check is one verified property of a container.
type Check struct {
	// Name is a stable identifier ("cpu_limit", "seccomp", ...).
	Name string `json:"name"`
	// Expected describes the requirement.
	Expected string `json:"expected"`
	// Actual describes what was found.
	Actual string `json:"actual"`
	// OK reports whether the requirement holds; false for skipped checks.
	OK bool `json:"ok"`
	// Skipped is true when the property could not be checked here (the
	// cgroup checks on a remote daemon, for example); SkipReason says why.
	// A skipped check does not make the report fail.
	Skipped    bool   `json:"skipped,omitempty"`
	SkipReason string `json:"skip_reason,omitempty"`
}

// Report is the result of verifying one container.
type Report struct {
	// ContainerID is the full id the daemon reported.
	ContainerID string `json:"container_id"`
	// OK is true when every check that was not skipped passed.
	OK bool `json:"ok"`
	// Checks lists every check, Docker-side first, then cgroup.
	Checks []Check `json:"checks"`
}
