package container

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
	"regexp"
	"sync"
	"time"
)

// DefaultDockerHost is the Docker Engine API endpoint used when none is
// configured.
const DefaultDockerHost = "unix:///var/run/docker.sock"

// DefaultAPIVersion is the Engine API version the verifier falls
// back to when the daemon does not announce its own (see
// WithAPIVersion).
const DefaultAPIVersion = "v1.41"

var (
	// ErrNotFound: the Docker daemon does not know the container.
	ErrNotFound = errors.New("container: container not found")
	// ErrInvalidID: the id is not a container id or name.
	ErrInvalidID = errors.New("container: invalid container id")
	// ErrDockerUnavailable: the Docker daemon could not be reached, timed
	// out or failed.
	ErrDockerUnavailable = errors.New("container: docker daemon unavailable")
)

// Verifier checks running preview containers against
// Limits, from two sources: what the Docker Engine API says the
// container was created with (GET /containers/{id}/json), and the cgroup v2
// files the kernel enforces (cpu.max, memory.max, pids.max of the
// container's cgroup, found through /proc/<pid>/cgroup). When the cgroup
// cannot be read here (remote daemon, no pid, cgroup v1, another pid
// namespace) the cgroup checks are skipped with the reason and the
// Docker-side checks decide.
//
// It talks to the daemon with a small net/http client over the unix socket
// (or plain TCP) and is safe for concurrent use.
type Verifier struct {
	limits     Limits
	client     *http.Client
	base       string
	version    string // pinned or negotiated; guarded by verMu
	verMu      sync.Mutex
	remote     bool
	cgroupRoot string
	procRoot   string
	log        *slog.Logger
}

type config struct {
	dockerHost string
	version    string
	timeout    time.Duration
	cgroupRoot string
	procRoot   string
	log        *slog.Logger
}

// Option configures NewVerifier, the package's only constructor. As in
// previewsec and previewsec/egress, an option is an interface with an
// unexported method; every With function here returns one. A nil option
// is ignored; invalid values are reported by NewVerifier.
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

// WithDockerHost sets the daemon endpoint: "unix:///path" or
// "tcp://host:port" (plain HTTP; the cgroup checks are then skipped as
// remote). Default DefaultDockerHost.
func WithDockerHost(host string) Option {
	return optionFunc(func(c *config) { c.dockerHost = host })
}

// WithAPIVersion pins the Engine API version path element
// ("v1.41"). By default the verifier asks the daemon once (GET /_ping,
// header Api-Version) and uses the version it announces, since recent
// daemons refuse old versions; DefaultAPIVersion when it announces
// none.
func WithAPIVersion(v string) Option {
	return optionFunc(func(c *config) { c.version = v })
}

// WithTimeout bounds each daemon request (default 5s).
func WithTimeout(d time.Duration) Option {
	return optionFunc(func(c *config) { c.timeout = d })
}

// WithCgroupRoot sets the cgroup v2 mount (default /sys/fs/cgroup).
func WithCgroupRoot(dir string) Option {
	return optionFunc(func(c *config) { c.cgroupRoot = dir })
}

// WithProcRoot sets the proc mount (default /proc).
func WithProcRoot(dir string) Option {
	return optionFunc(func(c *config) { c.procRoot = dir })
}

// WithLogger logs failed verifications. nil (the default)
// discards.
func WithLogger(l *slog.Logger) Option {
	return optionFunc(func(c *config) { c.log = l })
}

// NewVerifier returns a verifier for limits.
func NewVerifier(limits Limits, opts ...Option) (*Verifier, error) {
	c := config{dockerHost: DefaultDockerHost, timeout: 5 * time.Second, cgroupRoot: "/sys/fs/cgroup", procRoot: "/proc"}
	for _, o := range opts {
		if o != nil {
			o.apply(&c)
		}
	}
	if !(limits.CPUs > 0) || limits.MemoryBytes <= 0 || limits.NetworkMode == "" {
		return nil, errors.New("container: container limits need CPUs, MemoryBytes and NetworkMode")
	}
	if c.timeout <= 0 {
		return nil, errors.New("container: container verifier timeout must be positive")
	}
	if c.version != "" && !versionPattern.MatchString(c.version) {
		return nil, fmt.Errorf("container: docker API version %q: want v1.NN", c.version)
	}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	v := &Verifier{limits: limits, version: c.version, cgroupRoot: c.cgroupRoot, procRoot: c.procRoot, log: c.log}
	u, err := url.Parse(c.dockerHost)
	if err != nil {
		return nil, fmt.Errorf("container: docker host %q: %w", c.dockerHost, err)
	}
	tr := &http.Transport{Proxy: nil, MaxIdleConns: 4, IdleConnTimeout: 30 * time.Second, ResponseHeaderTimeout: c.timeout}
	switch u.Scheme {
	case "unix":
		sock := u.Path
		if sock == "" {
			return nil, fmt.Errorf("container: docker host %q: no socket path", c.dockerHost)
		}
		var d net.Dialer
		tr.DialContext = func(ctx context.Context, _, _ string) (net.Conn, error) {
			return d.DialContext(ctx, "unix", sock)
		}
		v.base = "http://docker"
	case "tcp", "http":
		if u.Host == "" {
			return nil, fmt.Errorf("container: docker host %q: no address", c.dockerHost)
		}
		v.base = "http://" + u.Host
		v.remote = true
	default:
		return nil, fmt.Errorf("container: docker host %q: only unix:// and tcp:// are supported", c.dockerHost)
	}
	v.client = &http.Client{Transport: tr, Timeout: c.timeout, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return v, nil
}

// Close releases the verifier's idle connections to the daemon; it does
// not wait, so ctx only keeps the kit's one Close signature. The verifier
// stays usable.
func (v *Verifier) Close(ctx context.Context) error {
	v.client.CloseIdleConnections()
	return nil
}

// Limits returns the limits the verifier checks against.
func (v *Verifier) Limits() Limits { return v.limits }

var versionPattern = regexp.MustCompile(`^v1\.[0-9]{1,3}$`)

// apiVersion returns the pinned version, or asks the daemon once.
// Connection failures are ErrDockerUnavailable and are not remembered.
func (v *Verifier) apiVersion(ctx context.Context) (string, error) {
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
	v.version = DefaultAPIVersion
	if ver := "v" + resp.Header.Get("Api-Version"); versionPattern.MatchString(ver) {
		v.version = ver
	}
	return v.version, nil
}

var idPattern = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,127}$`)

// inspectAnswer is the part of the Engine API's inspect answer the
// verifier reads.
type inspectAnswer struct {
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
// Errors: ErrInvalidID, ErrNotFound, or
// ErrDockerUnavailable (wrapped) when the daemon cannot answer.
func (v *Verifier) Verify(ctx context.Context, id string) (Report, error) {
	if !idPattern.MatchString(id) {
		return Report{}, ErrInvalidID
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

func (v *Verifier) inspect(ctx context.Context, id string) (inspectAnswer, error) {
	var ci inspectAnswer
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
		return ci, ErrNotFound
	case resp.StatusCode != http.StatusOK:
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		return ci, fmt.Errorf("%w: inspect answered %d", ErrDockerUnavailable, resp.StatusCode)
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 8<<20)).Decode(&ci); err != nil {
		return ci, fmt.Errorf("%w: decode inspect answer: %w", ErrDockerUnavailable, err)
	}
	return ci, nil
}
