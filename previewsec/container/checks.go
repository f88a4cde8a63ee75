package container

import (
	"errors"
	"slices"
	"strconv"
	"strings"
)

func formatCPUs(c float64) string { return strconv.FormatFloat(c, 'f', -1, 64) + " CPUs" }

// secOpt splits a security option "key=value" or the older
// "key:value" form.
func secOpt(s string) (key, value string) {
	s = strings.TrimSpace(s)
	if i := strings.IndexAny(s, "=:"); i >= 0 {
		return strings.ToLower(s[:i]), s[i+1:]
	}
	return strings.ToLower(s), ""
}

func capName(s string) string {
	return strings.TrimPrefix(strings.ToUpper(strings.TrimSpace(s)), "CAP_")
}

func (v *Verifier) dockerChecks(ci inspectAnswer) []Check {
	hc := ci.HostConfig
	l := v.limits
	var cs []Check

	// CPU: NanoCpus, or CpuQuota/CpuPeriod (period defaults to 100ms).
	cpu := Check{Name: "cpu_limit", Expected: "set, <= " + formatCPUs(l.CPUs), Actual: "unlimited"}
	var cpus float64
	switch {
	case hc.NanoCPUs > 0:
		cpus = float64(hc.NanoCPUs) / 1e9
		cpu.Actual = formatCPUs(cpus) + " (NanoCpus)"
	case hc.CPUQuota > 0:
		period := hc.CPUPeriod
		if period <= 0 {
			period = 100000
		}
		cpus = float64(hc.CPUQuota) / float64(period)
		cpu.Actual = formatCPUs(cpus) + " (CpuQuota/CpuPeriod)"
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
		k, val := secOpt(o)
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
		k, val := secOpt(want)
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
		allowed = append(allowed, capName(c))
	}
	var extra []string
	for _, c := range hc.CapAdd {
		if n := capName(c); !slices.Contains(allowed, n) {
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

// cgroupNames are the cgroup checks, in report order.
var cgroupNames = []string{"cgroup_cpu_max", "cgroup_memory_max", "cgroup_pids_max"}

func (v *Verifier) cgroupChecks(ci inspectAnswer) []Check {
	skip := func(reason string) []Check {
		cs := make([]Check, 0, len(cgroupNames))
		for _, n := range cgroupNames {
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
	cpu := Check{Name: "cgroup_cpu_max", Expected: "set, <= " + formatCPUs(l.CPUs), Actual: "max"}
	if cl.CPUs > 0 {
		cpu.Actual = formatCPUs(cl.CPUs)
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
