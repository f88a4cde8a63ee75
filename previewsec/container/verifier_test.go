package container

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// fixture builds a realistic Engine API inspect answer. mutate
// changes the HostConfig/State maps before encoding.
func fixture(id string, pid int, mutate func(hc, state map[string]any)) []byte {
	pids := int64(256)
	hc := map[string]any{
		"Binds": nil, "ContainerIDFile": "", "LogConfig": map[string]any{"Type": "json-file", "Config": map[string]any{}},
		"NetworkMode": "bridge", "PortBindings": map[string]any{}, "RestartPolicy": map[string]any{"Name": "no", "MaximumRetryCount": 0},
		"AutoRemove": false, "VolumeDriver": "", "VolumesFrom": nil, "CapAdd": nil, "CapDrop": []string{"ALL"},
		"CgroupnsMode": "private", "Dns": []string{}, "IpcMode": "private", "Privileged": false, "PublishAllPorts": false,
		"ReadonlyRootfs": true, "SecurityOpt": []string{"no-new-privileges"}, "UTSMode": "", "UsernsMode": "",
		"ShmSize": 67108864, "Runtime": "runc", "Isolation": "", "CpuShares": 0, "Memory": 268435456,
		"NanoCpus": 500000000, "CgroupParent": "", "BlkioWeight": 0, "CpuPeriod": 0, "CpuQuota": 0,
		"CpuRealtimePeriod": 0, "CpuRealtimeRuntime": 0, "CpusetCpus": "", "CpusetMems": "", "Devices": []any{},
		"MemoryReservation": 0, "MemorySwap": 268435456, "MemorySwappiness": nil, "OomKillDisable": nil,
		"PidsLimit": pids, "Ulimits": nil, "MaskedPaths": []string{"/proc/kcore"}, "ReadonlyPaths": []string{"/proc/sys"},
	}
	state := map[string]any{
		"Status": "running", "Running": true, "Paused": false, "Restarting": false, "OOMKilled": false, "Dead": false,
		"Pid": pid, "ExitCode": 0, "Error": "", "StartedAt": "2026-11-26T23:00:00.000000000Z", "FinishedAt": "0001-01-01T00:00:00Z",
	}
	if mutate != nil {
		mutate(hc, state)
	}
	b, _ := json.Marshal(map[string]any{
		"Id": id, "Created": "2026-11-26T22:59:59.000000000Z", "Path": "/app/run", "Args": []string{},
		"State": state, "Image": "sha256:" + strings.Repeat("ab", 32), "Name": "/preview-" + id[:8],
		"RestartCount": 0, "Driver": "overlay2", "Platform": "linux", "HostConfig": hc,
		"Config":          map[string]any{"Hostname": id[:12], "User": "1000:1000", "Image": "preview:latest"},
		"NetworkSettings": map[string]any{"Networks": map[string]any{"bridge": map[string]any{"IPAddress": "172.17.0.2"}}},
	})
	return b
}

// fakeDockerDaemon serves inspect answers on a unix socket in t.TempDir()
// (or TCP when tcp is true). The id "hang" never answers.
type fakeDockerDaemon struct {
	host     string
	mu       sync.Mutex
	fixtures map[string][]byte
	paths    []string
}

func newFakeDockerDaemon(t *testing.T, tcp bool) *fakeDockerDaemon {
	t.Helper()
	d := &fakeDockerDaemon{fixtures: map[string][]byte{}}
	var ln net.Listener
	var err error
	if tcp {
		ln, err = net.Listen("tcp", "127.0.0.1:0")
		d.host = "tcp://" + ln.Addr().String()
	} else {
		sock := filepath.Join(t.TempDir(), "docker.sock")
		ln, err = net.Listen("unix", sock)
		d.host = "unix://" + sock
	}
	require.NoError(t, err)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /_ping", func(w http.ResponseWriter, r *http.Request) {
		d.mu.Lock()
		d.paths = append(d.paths, r.URL.Path)
		d.mu.Unlock()
		w.Header().Set("Api-Version", "1.47")
		_, _ = w.Write([]byte("OK"))
	})
	mux.HandleFunc("GET /{version}/containers/{id}/json", func(w http.ResponseWriter, r *http.Request) {
		d.mu.Lock()
		d.paths = append(d.paths, r.URL.Path)
		body, ok := d.fixtures[r.PathValue("id")]
		d.mu.Unlock()
		w.Header().Set("Api-Version", "1.47")
		w.Header().Set("Content-Type", "application/json")
		switch {
		case r.PathValue("id") == "hang":
			<-r.Context().Done()
		case r.PathValue("id") == "broken":
			w.WriteHeader(http.StatusInternalServerError)
			_, _ = w.Write([]byte(`{"message":"boom"}`))
		case !ok:
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"message":"No such container: ` + r.PathValue("id") + `"}`))
		default:
			_, _ = w.Write(body)
		}
	})
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close(); <-done })
	return d
}

func (d *fakeDockerDaemon) add(name string, body []byte) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.fixtures[name] = body
}

// cgroupTree writes a cgroup v2 tree and a proc entry for pid.
func cgroupTree(t *testing.T, pid int, rel string, files map[string]string) (cgroupRoot, procRoot string) {
	t.Helper()
	base := t.TempDir()
	cgroupRoot = filepath.Join(base, "cgroup")
	procRoot = filepath.Join(base, "proc")
	require.NoError(t, os.MkdirAll(filepath.Join(cgroupRoot, filepath.FromSlash(rel)), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(cgroupRoot, "cgroup.controllers"), []byte("cpuset cpu io memory pids\n"), 0o644))
	for name, content := range files {
		require.NoError(t, os.MkdirAll(filepath.Dir(filepath.Join(cgroupRoot, name)), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(cgroupRoot, name), []byte(content+"\n"), 0o644))
	}
	require.NoError(t, os.MkdirAll(filepath.Join(procRoot, strconv.Itoa(pid)), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(procRoot, strconv.Itoa(pid), "cgroup"), []byte("0::"+rel+"\n"), 0o644))
	return cgroupRoot, procRoot
}

func check(t *testing.T, r Report, name string) Check {
	t.Helper()
	for _, c := range r.Checks {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no check %q in %+v", name, r.Checks)
	return Check{}
}

func failed(r Report) []string {
	var out []string
	for _, c := range r.Checks {
		if !c.OK && !c.Skipped {
			out = append(out, c.Name)
		}
	}
	return out
}

const testID = "4f1c2b7d9e0a4f1c2b7d9e0a4f1c2b7d9e0a4f1c2b7d9e0a4f1c2b7d9e0a1234"

func TestVerifier(t *testing.T) {
	t.Parallel()
	daemon := newFakeDockerDaemon(t, false)
	const pid = 4242
	rel := "/system.slice/docker-" + testID + ".scope"
	cgRoot, procRoot := cgroupTree(t, pid, rel, map[string]string{
		rel + "/cpu.max": "50000 100000", rel + "/memory.max": "268435456", rel + "/pids.max": "256",
	})
	fixtures := map[string]func(hc, st map[string]any){
		"compliant":  nil,
		"privileged": func(hc, _ map[string]any) { hc["Privileged"] = true },
		"nomemory":   func(hc, _ map[string]any) { hc["Memory"] = 0; hc["MemorySwap"] = 0 },
		"bigmemory":  func(hc, _ map[string]any) { hc["Memory"] = 2 << 30; hc["MemorySwap"] = 4 << 30 },
		"unconfined": func(hc, _ map[string]any) {
			hc["SecurityOpt"] = []string{"no-new-privileges:true", "seccomp=unconfined"}
		},
		"hostnet":    func(hc, _ map[string]any) { hc["NetworkMode"] = "host" },
		"nonnp":      func(hc, _ map[string]any) { hc["SecurityOpt"] = nil },
		"nocpu":      func(hc, _ map[string]any) { hc["NanoCpus"] = 0 },
		"quota":      func(hc, _ map[string]any) { hc["NanoCpus"] = 0; hc["CpuQuota"] = 200000; hc["CpuPeriod"] = 100000 },
		"quotaok":    func(hc, _ map[string]any) { hc["NanoCpus"] = 0; hc["CpuQuota"] = 25000; hc["CpuPeriod"] = 0 },
		"swap":       func(hc, _ map[string]any) { hc["MemorySwap"] = -1 },
		"nopids":     func(hc, _ map[string]any) { hc["PidsLimit"] = nil },
		"pidsneg":    func(hc, _ map[string]any) { hc["PidsLimit"] = -1 },
		"caps":       func(hc, _ map[string]any) { hc["CapAdd"] = []string{"NET_ADMIN", "CAP_CHOWN"} },
		"capsall":    func(hc, _ map[string]any) { hc["CapAdd"] = []string{"ALL"} },
		"default":    func(hc, _ map[string]any) { hc["NetworkMode"] = "default" },
		"stopped":    func(_, st map[string]any) { st["Running"] = false; st["Pid"] = 0 },
		"writablefs": func(hc, _ map[string]any) { hc["ReadonlyRootfs"] = false },
	}
	for name, mut := range fixtures {
		daemon.add(name, fixture(testID, pid, mut))
	}
	limits := DefaultLimits()
	limits.AllowedCapabilities = []string{"chown"}
	v, err := NewVerifier(limits, WithDockerHost(daemon.host),
		WithCgroupRoot(cgRoot), WithProcRoot(procRoot))
	require.NoError(t, err)
	ctx := context.Background()

	cases := map[string][]string{ // fixture -> failing checks
		"compliant":  nil,
		"privileged": {"privileged", "seccomp"},
		"nomemory":   {"memory_limit", "memory_swap"},
		"bigmemory":  {"memory_limit"},
		"unconfined": {"seccomp"},
		"hostnet":    {"network_mode"},
		"nonnp":      {"no_new_privileges"},
		"nocpu":      {"cpu_limit"},
		"quota":      {"cpu_limit"},
		"quotaok":    nil,
		"swap":       {"memory_swap"},
		"nopids":     {"pids_limit"},
		"pidsneg":    {"pids_limit"},
		"caps":       {"capabilities"},
		"capsall":    {"capabilities"},
		"default":    nil,
		"stopped":    nil,
		"writablefs": nil,
	}
	for name, want := range cases {
		r, err := v.Verify(ctx, name)
		require.NoError(t, err, name)
		assert.Equal(t, testID, r.ContainerID, name)
		assert.Equal(t, want, failed(r), name)
		assert.Equal(t, len(want) == 0, r.OK, name)
	}

	r, err := v.Verify(ctx, "compliant")
	require.NoError(t, err)
	cpu := check(t, r, "cgroup_cpu_max")
	assert.False(t, cpu.Skipped)
	assert.True(t, cpu.OK)
	assert.Equal(t, "0.5 CPUs", cpu.Actual)
	assert.Equal(t, "268435456 bytes", check(t, r, "cgroup_memory_max").Actual)
	assert.Equal(t, "256", check(t, r, "cgroup_pids_max").Actual)
	assert.Equal(t, "0.5 CPUs (NanoCpus)", check(t, r, "cpu_limit").Actual)

	r, err = v.Verify(ctx, "stopped")
	require.NoError(t, err)
	c := check(t, r, "cgroup_memory_max")
	assert.True(t, c.Skipped)
	assert.Contains(t, c.SkipReason, "no running process")

	// Unknown container, invalid ids.
	_, err = v.Verify(ctx, "doesnotexist")
	assert.ErrorIs(t, err, ErrNotFound)
	for _, id := range []string{"", "../../info", "a/b", "x?y", strings.Repeat("a", 200), "-rf"} {
		_, err = v.Verify(ctx, id)
		assert.ErrorIs(t, err, ErrInvalidID, id)
	}
	_, err = v.Verify(ctx, "broken")
	assert.ErrorIs(t, err, ErrDockerUnavailable)

	// The API version was asked once and then used.
	daemon.mu.Lock()
	assert.Contains(t, daemon.paths, "/v1.47/containers/compliant/json")
	pings := 0
	for _, p := range daemon.paths {
		if p == "/_ping" {
			pings++
		}
	}
	assert.Equal(t, 1, pings)
	daemon.mu.Unlock()

	// A pinned version is used as is, without asking.
	pinned, err := NewVerifier(limits, WithDockerHost(daemon.host), WithAPIVersion("v1.44"),
		WithCgroupRoot(cgRoot), WithProcRoot(procRoot))
	require.NoError(t, err)
	_, err = pinned.Verify(ctx, "compliant")
	require.NoError(t, err)
	daemon.mu.Lock()
	assert.Equal(t, "/v1.44/containers/compliant/json", daemon.paths[len(daemon.paths)-1])
	daemon.mu.Unlock()
	require.NoError(t, pinned.Close(context.Background()))
}

func TestVerifierOptionalChecks(t *testing.T) {
	t.Parallel()
	daemon := newFakeDockerDaemon(t, false)
	daemon.add("c", fixture(testID, 0, nil))
	daemon.add("w", fixture(testID, 0, func(hc, _ map[string]any) { hc["ReadonlyRootfs"] = false; hc["Runtime"] = "" }))
	daemon.add("g", fixture(testID, 0, func(hc, _ map[string]any) {
		hc["Runtime"] = "runsc"
		hc["SecurityOpt"] = []string{"no-new-privileges", "apparmor=docker-default", "seccomp=unconfined"}
	}))
	limits := DefaultLimits()
	limits.ReadOnlyRootfs = true
	limits.Runtime = "runsc"
	limits.SecurityOpts = []string{"no-new-privileges", "apparmor=docker-default", "seccomp=unconfined"}
	v, err := NewVerifier(limits, WithDockerHost(daemon.host))
	require.NoError(t, err)
	r, err := v.Verify(context.Background(), "c")
	require.NoError(t, err)
	assert.Equal(t, []string{"security_opt:apparmor", "runtime"}, failed(r))
	r, err = v.Verify(context.Background(), "w")
	require.NoError(t, err)
	assert.Equal(t, []string{"security_opt:apparmor", "readonly_rootfs", "runtime"}, failed(r))
	assert.Equal(t, "runc", check(t, r, "runtime").Actual)
	// seccomp=unconfined fails even when the operator configured it.
	r, err = v.Verify(context.Background(), "g")
	require.NoError(t, err)
	assert.Equal(t, []string{"seccomp"}, failed(r))
}

func TestVerifierCgroupEnforcement(t *testing.T) {
	t.Parallel()
	daemon := newFakeDockerDaemon(t, false)
	const pid = 777
	rel := "/kubepods/pod1/ctr"
	// Docker was asked for limits, but the kernel enforces none on the
	// container's own cgroup: memory.max is "max", cpu.max is "max"; the
	// parent's pids.max of 100 binds.
	cgRoot, procRoot := cgroupTree(t, pid, rel, map[string]string{
		rel + "/cpu.max": "max 100000", rel + "/memory.max": "max", rel + "/pids.max": "max",
		"/kubepods/pids.max": "100", "/kubepods/pod1/memory.max": "1073741824",
	})
	daemon.add("c", fixture(testID, pid, nil))
	v, err := NewVerifier(DefaultLimits(), WithDockerHost(daemon.host),
		WithCgroupRoot(cgRoot), WithProcRoot(procRoot))
	require.NoError(t, err)
	r, err := v.Verify(context.Background(), "c")
	require.NoError(t, err)
	assert.False(t, r.OK)
	assert.Equal(t, []string{"cgroup_cpu_max", "cgroup_memory_max"}, failed(r))
	assert.Equal(t, "1073741824 bytes", check(t, r, "cgroup_memory_max").Actual)
	assert.Equal(t, "100", check(t, r, "cgroup_pids_max").Actual)

	// The pid is not visible here: skipped, Docker-side checks decide.
	v2, err := NewVerifier(DefaultLimits(), WithDockerHost(daemon.host),
		WithCgroupRoot(cgRoot), WithProcRoot(t.TempDir()))
	require.NoError(t, err)
	r, err = v2.Verify(context.Background(), "c")
	require.NoError(t, err)
	assert.True(t, r.OK)
	assert.True(t, check(t, r, "cgroup_cpu_max").Skipped)
	assert.Contains(t, check(t, r, "cgroup_cpu_max").SkipReason, "not visible")
}

func TestVerifierRemoteDaemonSkipsCgroup(t *testing.T) {
	t.Parallel()
	daemon := newFakeDockerDaemon(t, true)
	daemon.add("c", fixture(testID, 4242, nil))
	v, err := NewVerifier(DefaultLimits(), WithDockerHost(daemon.host))
	require.NoError(t, err)
	r, err := v.Verify(context.Background(), "c")
	require.NoError(t, err)
	assert.True(t, r.OK)
	for _, n := range cgroupNames {
		c := check(t, r, n)
		assert.True(t, c.Skipped, n)
		assert.Contains(t, c.SkipReason, "remote")
	}
}

func TestVerifierDaemonDown(t *testing.T) {
	t.Parallel()
	v, err := NewVerifier(DefaultLimits(), WithDockerHost("unix://"+filepath.Join(t.TempDir(), "nope.sock")))
	require.NoError(t, err)
	_, err = v.Verify(context.Background(), "c")
	assert.ErrorIs(t, err, ErrDockerUnavailable)

	// A daemon that accepts and never answers: the request times out.
	daemon := newFakeDockerDaemon(t, false)
	v, err = NewVerifier(DefaultLimits(), WithDockerHost(daemon.host), WithTimeout(200*time.Millisecond))
	require.NoError(t, err)
	_, err = v.Verify(context.Background(), "hang")
	assert.ErrorIs(t, err, ErrDockerUnavailable)

	// A caller's cancelled context also ends the wait.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err = v.Verify(ctx, "hang")
	assert.ErrorIs(t, err, ErrDockerUnavailable)
	assert.True(t, errors.Is(err, context.Canceled))
}

func TestVerifierConfig(t *testing.T) {
	t.Parallel()
	for _, opts := range [][]Option{
		{WithDockerHost("npipe:////./pipe/docker_engine")},
		{WithDockerHost("unix://")},
		{WithDockerHost("tcp://")},
		{WithDockerHost("::bad")},
		{WithAPIVersion("1.41")},
		{WithAPIVersion("v1.41/../../x")},
		{WithTimeout(0)},
	} {
		_, err := NewVerifier(DefaultLimits(), opts...)
		assert.Error(t, err)
	}
	_, err := NewVerifier(Limits{})
	assert.Error(t, err)
}

func TestParseMemory(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]int64{"512m": 512 << 20, "512M": 512 << 20, "1g": 1 << 30, "64k": 64 << 10, "1048576": 1 << 20, "100b": 100} {
		got, err := ParseMemory(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	for _, in := range []string{"", "m", "0", "-1m", "1.5g", "1t", "99999999999999999g", "1 g"} {
		_, err := ParseMemory(in)
		assert.Error(t, err, in)
	}
}
