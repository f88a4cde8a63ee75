// Package container checks that a running preview container has the
// limits it was meant to have: what the Docker Engine API says it was
// created with (CPU and memory limits, swap, pids, privileged mode,
// no-new-privileges, seccomp, other security options, network mode, added
// capabilities, read-only root file system, runtime), and the cgroup v2
// limits the kernel enforces on its process (ReadCgroupLimits).
//
// A Verifier talks to the daemon with a small net/http client over the
// unix socket (or plain TCP); it does not import the Docker SDK. Limits
// come from the application (DefaultLimits documents the defaults;
// ParseMemory parses sizes such as "512m"); the package reads no
// environment.
//
// See docs/previewsec-container.md.
package container
