package previewsec

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Environment variables read by ContainerLimitsFromEnv and
// ContainerVerifierFromEnv.
const (
	EnvCPULimit     = "PREVIEW_CPU_LIMIT"
	EnvMemLimit     = "PREVIEW_MEM_LIMIT"
	EnvNetworkMode  = "PREVIEW_NETWORK_MODE"
	EnvSecurityOpts = "PREVIEW_SECURITY_OPTS"
	EnvDockerHost   = "DOCKER_HOST"
)

// DefaultDockerHost is the Docker Engine API endpoint used when none is
// configured.
const DefaultDockerHost = "unix:///var/run/docker.sock"

// DefaultDockerAPIVersion is the Engine API version the verifier falls
// back to when the daemon does not announce its own (see
// WithContainerAPIVersion).
const DefaultDockerAPIVersion = "v1.41"

var (
	// ErrContainerNotFound: the Docker daemon does not know the container.
	ErrContainerNotFound = errors.New("previewsec: container not found")
	// ErrInvalidContainerID: the id is not a container id or name.
	ErrInvalidContainerID = errors.New("previewsec: invalid container id")
	// ErrDockerUnavailable: the Docker daemon could not be reached, timed
	// out or failed.
	ErrDockerUnavailable = errors.New("previewsec: docker daemon unavailable")
)

// ContainerLimits are what a preview container is expected to run with.
type ContainerLimits struct {
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

// DefaultContainerLimits returns the documented defaults.
func DefaultContainerLimits() ContainerLimits {
	return ContainerLimits{CPUs: 0.5, MemoryBytes: 512 << 20, NetworkMode: "bridge", SecurityOpts: []string{"no-new-privileges"}}
}

// ContainerLimitsFromEnv reads PREVIEW_CPU_LIMIT (CPUs, default 0.5),
// PREVIEW_MEM_LIMIT (bytes with optional k/m/g suffix, binary units,
// default 512m), PREVIEW_NETWORK_MODE (default bridge) and
// PREVIEW_SECURITY_OPTS (comma list, default no-new-privileges). The error
// names the variable that does not parse.
func ContainerLimitsFromEnv() (ContainerLimits, error) {
	l := DefaultContainerLimits()
	if s := strings.TrimSpace(os.Getenv(EnvCPULimit)); s != "" {
		v, err := strconv.ParseFloat(s, 64)
		if err != nil || !(v > 0) || v > 1e6 {
			return l, fmt.Errorf("previewsec: %s=%q: want a positive number of CPUs", EnvCPULimit, s)
		}
		l.CPUs = v
	}
	if s := strings.TrimSpace(os.Getenv(EnvMemLimit)); s != "" {
		v, err := ParseMemoryLimit(s)
		if err != nil {
			return l, fmt.Errorf("previewsec: %s=%q: %w", EnvMemLimit, s, err)
		}
		l.MemoryBytes = v
	}
	if s := strings.TrimSpace(os.Getenv(EnvNetworkMode)); s != "" {
		l.NetworkMode = s
	}
	if s, ok := os.LookupEnv(EnvSecurityOpts); ok {
		l.SecurityOpts = containerSplitList(s)
	}
	return l, nil
}

// ParseMemoryLimit parses a memory size: a positive integer of bytes with
// an optional b, k, m or g suffix (case-insensitive, powers of 1024).
func ParseMemoryLimit(s string) (int64, error) {
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

// ContainerVerifier checks running preview containers against
// ContainerLimits, from two sources: what the Docker Engine API says the
// container was created with (GET /containers/{id}/json), and the cgroup v2
// files the kernel enforces (cpu.max, memory.max, pids.max of the
// container's cgroup, found through /proc/<pid>/cgroup). When the cgroup
// cannot be read here (remote daemon, no pid, cgroup v1, another pid
// namespace) the cgroup checks are skipped with the reason and the
// Docker-side checks decide.
//
// It talks to the daemon with a small net/http client over the unix socket
// (or plain TCP) and is safe for concurrent use.
type ContainerVerifier struct {
	limits     ContainerLimits
	client     *http.Client
	base       string
	version    string // pinned or negotiated; guarded by verMu
	verMu      sync.Mutex
	remote     bool
	cgroupRoot string
	procRoot   string
	log        *slog.Logger
}

type containerConfig struct {
	dockerHost string
	version    string
	timeout    time.Duration
	cgroupRoot string
	procRoot   string
	log        *slog.Logger
}

// ContainerOption configures a ContainerVerifier.
type ContainerOption func(*containerConfig)

// WithContainerDockerHost sets the daemon endpoint: "unix:///path" or
// "tcp://host:port" (plain HTTP; the cgroup checks are then skipped as
// remote). Default DefaultDockerHost.
func WithContainerDockerHost(host string) ContainerOption {
	return func(c *containerConfig) { c.dockerHost = host }
}

// WithContainerAPIVersion pins the Engine API version path element
// ("v1.41"). By default the verifier asks the daemon once (GET /_ping,
// header Api-Version) and uses the version it announces, since recent
// daemons refuse old versions; DefaultDockerAPIVersion when it announces
// none.
func WithContainerAPIVersion(v string) ContainerOption {
	return func(c *containerConfig) { c.version = v }
}

// WithContainerTimeout bounds each daemon request (default 5s).
func WithContainerTimeout(d time.Duration) ContainerOption {
	return func(c *containerConfig) { c.timeout = d }
}

// WithContainerCgroupRoot sets the cgroup v2 mount (default /sys/fs/cgroup).
func WithContainerCgroupRoot(dir string) ContainerOption {
	return func(c *containerConfig) { c.cgroupRoot = dir }
}

// WithContainerProcRoot sets the proc mount (default /proc).
func WithContainerProcRoot(dir string) ContainerOption {
	return func(c *containerConfig) { c.procRoot = dir }
}

// WithContainerLogger logs failed verifications. nil (the default)
// discards.
func WithContainerLogger(l *slog.Logger) ContainerOption {
	return func(c *containerConfig) { c.log = l }
}

// NewContainerVerifier returns a verifier for limits.
func NewContainerVerifier(limits ContainerLimits, opts ...ContainerOption) (*ContainerVerifier, error) {
	c := containerConfig{dockerHost: DefaultDockerHost, timeout: 5 * time.Second, cgroupRoot: "/sys/fs/cgroup", procRoot: "/proc"}
	for _, o := range opts {
		o(&c)
	}
	if !(limits.CPUs > 0) || limits.MemoryBytes <= 0 || limits.NetworkMode == "" {
		return nil, errors.New("previewsec: container limits need CPUs, MemoryBytes and NetworkMode")
	}
	if c.timeout <= 0 {
		return nil, errors.New("previewsec: container verifier timeout must be positive")
	}
	if c.version != "" && !containerVersionPattern.MatchString(c.version) {
		return nil, fmt.Errorf("previewsec: docker API version %q: want v1.NN", c.version)
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	v := &ContainerVerifier{limits: limits, version: c.version, cgroupRoot: c.cgroupRoot, procRoot: c.procRoot, log: c.log}
	u, err := url.Parse(c.dockerHost)
	if err != nil {
		return nil, fmt.Errorf("previewsec: docker host %q: %w", c.dockerHost, err)
	}
	tr := &http.Transport{Proxy: nil, MaxIdleConns: 4, IdleConnTimeout: 30 * time.Second, ResponseHeaderTimeout: c.timeout}
	switch u.Scheme {
	case "unix":
		sock := u.Path
		if sock == "" {
			return nil, fmt.Errorf("previewsec: docker host %q: no socket path", c.dockerHost)
		}
		var d net.Dialer
		tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			return d.DialContext(ctx, "unix", sock)
		}
		v.base = "http://docker"
	case "tcp", "http":
		if u.Host == "" {
			return nil, fmt.Errorf("previewsec: docker host %q: no address", c.dockerHost)
		}
		v.base = "http://" + u.Host
		v.remote = true
	default:
		return nil, fmt.Errorf("previewsec: docker host %q: only unix:// and tcp:// are supported", c.dockerHost)
	}
	v.client = &http.Client{Transport: tr, Timeout: c.timeout, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return v, nil
}

// ContainerVerifierFromEnv builds a verifier from ContainerLimitsFromEnv and
// DOCKER_HOST (default DefaultDockerHost), then applies opts.
func ContainerVerifierFromEnv(opts ...ContainerOption) (*ContainerVerifier, error) {
	limits, err := ContainerLimitsFromEnv()
	if err != nil {
		return nil, err
	}
	if h := strings.TrimSpace(os.Getenv(EnvDockerHost)); h != "" {
		opts = append([]ContainerOption{WithContainerDockerHost(h)}, opts...)
	}
	v, err := NewContainerVerifier(limits, opts...)
	if err != nil && os.Getenv(EnvDockerHost) != "" {
		return nil, fmt.Errorf("%s: %w", EnvDockerHost, err)
	}
	return v, err
}

// Close releases the verifier's idle connections to the daemon. The
// verifier stays usable.
func (v *ContainerVerifier) Close() error {
	v.client.CloseIdleConnections()
	return nil
}

// Limits returns the limits the verifier checks against.
func (v *ContainerVerifier) Limits() ContainerLimits { return v.limits }

var containerVersionPattern = regexp.MustCompile(`^v1\.[0-9]{1,3}$`)

// apiVersion returns the pinned version, or asks the daemon once.
// Connection failures are ErrDockerUnavailable and are not remembered.
func (v *ContainerVerifier) apiVersion(ctx context.Context) (string, error) {
	v.verMu.Lock()
	defer v.verMu.Unlock()
	if v.version != "" {
		return v.version, nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, v.base+"/_ping", nil)
	if err != nil {
		return "", err
	}
	resp, err := v.client.Do(req)
	if err != nil {
		return "", fmt.Errorf("%w: %w", ErrDockerUnavailable, err)
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	_ = resp.Body.Close()
	if resp.StatusCode >= 500 {
		return "", fmt.Errorf("%w: ping answered %d", ErrDockerUnavailable, resp.StatusCode)
	}
	v.version = DefaultDockerAPIVersion
	if ver := "v" + resp.Header.Get("Api-Version"); containerVersionPattern.MatchString(ver) {
		v.version = ver
	}
	return v.version, nil
}

var containerIDPattern = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$`)

// containerInspect is the part of the Engine API's inspect answer the
// verifier reads.
type containerInspect struct {
	ID    string `json:"Id"`
	State struct {
		Running bool `json:"Running"`
		Pid     int  `json:"Pid"`
	} `json:"State"`
	HostConfig struct {
		NanoCPUs       int64    `json:"NanoCpus"`
		CPUQuota       int64    `json:"CpuQuota"`
		CPUPeriod      int64    `json:"CpuPeriod"`
		Memory         int64    `json:"Memory"`
		MemorySwap     int64    `json:"MemorySwap"`
		PidsLimit      *int64   `json:"PidsLimit"`
		Privileged     bool     `json:"Privileged"`
		SecurityOpt    []string `json:"SecurityOpt"`
		NetworkMode    string   `json:"NetworkMode"`
		CapAdd         []string `json:"CapAdd"`
		ReadonlyRootfs bool     `json:"ReadonlyRootfs"`
		Runtime        string   `json:"Runtime"`
	} `json:"HostConfig"`
}

// Verify inspects container id (an id, id prefix or name) and checks it.
// A container that fails checks is a Report with OK false, not an error.
// Errors: ErrInvalidContainerID, ErrContainerNotFound, or
// ErrDockerUnavailable (wrapped) when the daemon cannot answer.
func (v *ContainerVerifier) Verify(ctx context.Context, id string) (Report, error) {
	if !containerIDPattern.MatchString(id) {
		return Report{}, ErrInvalidContainerID
	}
	ci, err := v.inspect(ctx, id)
	if err != nil {
		return Report{}, err
	}
	rep := Report{ContainerID: ci.ID}
	if rep.ContainerID == "" {
		rep.ContainerID = id
	}
	rep.Checks = v.dockerChecks(ci)
	rep.Checks = append(rep.Checks, v.cgroupChecks(ci)...)
	rep.OK = true
	var failed []string
	for _, c := range rep.Checks {
		if !c.Skipped && !c.OK {
			rep.OK = false
			failed = append(failed, c.Name)
		}
	}
	if !rep.OK {
		v.log.WarnContext(ctx, "preview container fails its limits", "container", rep.ContainerID, "failed", failed)
	}
	return rep, nil
}

func (v *ContainerVerifier) inspect(ctx context.Context, id string) (containerInspect, error) {
	var ci containerInspect
	version, err := v.apiVersion(ctx)
	if err != nil {
		return ci, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, v.base+"/"+version+"/containers/"+url.PathEscape(id)+"/json", nil)
	if err != nil {
		return ci, err
	}
	resp, err := v.client.Do(req)
	if err != nil {
		return ci, fmt.Errorf("%w: %w", ErrDockerUnavailable, err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound:
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return ci, ErrContainerNotFound
	case resp.StatusCode != http.StatusOK:
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return ci, fmt.Errorf("%w: inspect answered %d", ErrDockerUnavailable, resp.StatusCode)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 8<<20)).Decode(&ci); err != nil {
		return ci, fmt.Errorf("%w: decode inspect answer: %w", ErrDockerUnavailable, err)
	}
	return ci, nil
}

func containerFormatCPUs(c float64) string { return strconv.FormatFloat(c, 'f', -1, 64) + " CPUs" }

// containerSecOpt splits a security option "key=value" or the older
// "key:value" form.
func containerSecOpt(s string) (key, value string) {
	s = strings.TrimSpace(s)
	if i := strings.IndexAny(s, "=:"); i >= 0 {
		return strings.ToLower(s[:i]), s[i+1:]
	}
	return strings.ToLower(s), ""
}

func containerCapName(s string) string {
	return strings.TrimPrefix(strings.ToUpper(strings.TrimSpace(s)), "CAP_")
}

func (v *ContainerVerifier) dockerChecks(ci containerInspect) []Check {
	hc := ci.HostConfig
	l := v.limits
	var cs []Check

	// CPU: NanoCpus, or CpuQuota/CpuPeriod (period defaults to 100ms).
	cpu := Check{Name: "cpu_limit", Expected: "set, <= " + containerFormatCPUs(l.CPUs), Actual: "unlimited"}
	var cpus float64
	switch {
	case hc.NanoCPUs > 0:
		cpus = float64(hc.NanoCPUs) / 1e9
		cpu.Actual = containerFormatCPUs(cpus) + " (NanoCpus)"
	case hc.CPUQuota > 0:
		period := hc.CPUPeriod
		if period <= 0 {
			period = 100000
		}
		cpus = float64(hc.CPUQuota) / float64(period)
		cpu.Actual = containerFormatCPUs(cpus) + " (CpuQuota/CpuPeriod)"
	}
	cpu.OK = cpus > 0 && cpus <= l.CPUs+1e-9
	cs = append(cs, cpu)

	mem := Check{Name: "memory_limit", Expected: "set, <= " + strconv.FormatInt(l.MemoryBytes, 10) + " bytes", Actual: "unlimited"}
	if hc.Memory > 0 {
		mem.Actual = strconv.FormatInt(hc.Memory, 10) + " bytes"
	}
	mem.OK = hc.Memory > 0 && hc.Memory <= l.MemoryBytes
	cs = append(cs, mem)

	swap := Check{Name: "memory_swap", Expected: "not unlimited"}
	switch {
	case hc.MemorySwap == -1 || hc.MemorySwap == 0 && hc.Memory <= 0:
		swap.Actual = "unlimited"
	case hc.MemorySwap == 0:
		swap.Actual = "default (equal to the memory limit)"
		swap.OK = true
	default:
		swap.Actual = strconv.FormatInt(hc.MemorySwap, 10) + " bytes memory+swap"
		swap.OK = true
	}
	cs = append(cs, swap)

	pids := Check{Name: "pids_limit", Expected: "set", Actual: "unlimited"}
	if hc.PidsLimit != nil && *hc.PidsLimit > 0 {
		pids.Actual, pids.OK = strconv.FormatInt(*hc.PidsLimit, 10), true
	}
	cs = append(cs, pids)

	cs = append(cs, Check{Name: "privileged", Expected: "false", Actual: strconv.FormatBool(hc.Privileged), OK: !hc.Privileged})

	opts := map[string]string{}
	for _, o := range hc.SecurityOpt {
		k, val := containerSecOpt(o)
		opts[k] = val
	}
	nnp, has := opts["no-new-privileges"]
	nnpOK := has && (nnp == "" || strings.EqualFold(nnp, "true"))
	cs = append(cs, Check{Name: "no_new_privileges", Expected: "present", Actual: map[bool]string{true: "present", false: "absent"}[nnpOK], OK: nnpOK})

	seccomp := Check{Name: "seccomp", Expected: "a profile, not unconfined", Actual: "default profile", OK: true}
	if s, ok := opts["seccomp"]; ok {
		seccomp.Actual = "custom profile"
		if strings.EqualFold(strings.TrimSpace(s), "unconfined") {
			seccomp.Actual, seccomp.OK = "unconfined", false
		}
	}
	if hc.Privileged {
		seccomp.Actual, seccomp.OK = "disabled by privileged mode", false
	}
	cs = append(cs, seccomp)

	for _, want := range l.SecurityOpts {
		k, val := containerSecOpt(want)
		if k == "no-new-privileges" || k == "seccomp" {
			continue // checked above; seccomp=unconfined fails there
		}
		got, ok := opts[k]
		c := Check{Name: "security_opt:" + k, Expected: want, Actual: "absent"}
		if ok {
			c.Actual = k
			if got != "" {
				c.Actual += "=" + got
			}
			c.OK = val == "" || got == val
		}
		cs = append(cs, c)
	}

	mode := hc.NetworkMode
	if mode == "default" {
		mode = "bridge"
	}
	want := l.NetworkMode
	if want == "default" {
		want = "bridge"
	}
	cs = append(cs, Check{Name: "network_mode", Expected: l.NetworkMode, Actual: hc.NetworkMode, OK: mode == want})

	allowed := make([]string, 0, len(l.AllowedCapabilities))
	for _, c := range l.AllowedCapabilities {
		allowed = append(allowed, containerCapName(c))
	}
	var extra []string
	for _, c := range hc.CapAdd {
		if n := containerCapName(c); !slices.Contains(allowed, n) {
			extra = append(extra, n)
		}
	}
	capc := Check{Name: "capabilities", Expected: "added only from [" + strings.Join(allowed, ",") + "]", Actual: "none added", OK: len(extra) == 0}
	if len(hc.CapAdd) > 0 {
		capc.Actual = "added [" + strings.Join(hc.CapAdd, ",") + "]"
	}
	cs = append(cs, capc)

	if l.ReadOnlyRootfs {
		cs = append(cs, Check{Name: "readonly_rootfs", Expected: "true", Actual: strconv.FormatBool(hc.ReadonlyRootfs), OK: hc.ReadonlyRootfs})
	}
	if l.Runtime != "" {
		rt := hc.Runtime
		if rt == "" {
			rt = "runc"
		}
		cs = append(cs, Check{Name: "runtime", Expected: l.Runtime, Actual: rt, OK: rt == l.Runtime})
	}
	return cs
}

// containerCgroupNames are the cgroup checks, in report order.
var containerCgroupNames = []string{"cgroup_cpu_max", "cgroup_memory_max", "cgroup_pids_max"}

func (v *ContainerVerifier) cgroupChecks(ci containerInspect) []Check {
	skip := func(reason string) []Check {
		cs := make([]Check, 0, len(containerCgroupNames))
		for _, n := range containerCgroupNames {
			cs = append(cs, Check{Name: n, Skipped: true, SkipReason: reason})
		}
		return cs
	}
	switch {
	case v.remote:
		return skip("remote Docker daemon: the container's cgroup is not on this host")
	case !ci.State.Running || ci.State.Pid <= 0:
		return skip("the container has no running process")
	}
	cl, err := ReadCgroupLimits(v.cgroupRoot, v.procRoot, ci.State.Pid)
	if err != nil {
		if errors.Is(err, ErrCgroupUnavailable) {
			return skip(strings.TrimPrefix(err.Error(), ErrCgroupUnavailable.Error()+": "))
		}
		return skip("cgroup files unreadable: " + err.Error())
	}
	l := v.limits
	cpu := Check{Name: "cgroup_cpu_max", Expected: "set, <= " + containerFormatCPUs(l.CPUs), Actual: "max"}
	if cl.CPUs > 0 {
		cpu.Actual = containerFormatCPUs(cl.CPUs)
		cpu.OK = cl.CPUs <= l.CPUs+1e-9
	}
	mem := Check{Name: "cgroup_memory_max", Expected: "set, <= " + strconv.FormatInt(l.MemoryBytes, 10) + " bytes", Actual: "max"}
	if cl.MemoryMax >= 0 {
		mem.Actual = strconv.FormatInt(cl.MemoryMax, 10) + " bytes"
		mem.OK = cl.MemoryMax > 0 && cl.MemoryMax <= l.MemoryBytes
	}
	pids := Check{Name: "cgroup_pids_max", Expected: "set", Actual: "max"}
	if cl.PidsMax >= 0 {
		pids.Actual = strconv.FormatInt(cl.PidsMax, 10)
		pids.OK = cl.PidsMax > 0
	}
	return []Check{cpu, mem, pids}
}

// containerSplitList splits a comma list, trimming spaces and dropping
// empty entries.
func containerSplitList(s string) []string {
	var out []string
	for f := range strings.SplitSeq(s, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}
