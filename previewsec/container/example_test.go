package container_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"

	"github.com/systembuilderhub/hardening/previewsec/container"
)

func ExampleVerifier_Verify() {
	limits := container.DefaultLimits()
	limits.SecurityOpts = append(limits.SecurityOpts, "apparmor=docker-default")
	v, err := container.NewVerifier(limits) // DOCKER_HOST is yours to read: container.WithDockerHost
	if err != nil {
		log.Fatal(err)
	}
	report, err := v.Verify(context.Background(), "preview-42")
	switch {
	case errors.Is(err, container.ErrNotFound):
		fmt.Println("no such container")
	case err != nil:
		fmt.Println("docker unavailable:", err)
	default:
		for _, c := range report.Checks {
			if !c.OK && !c.Skipped {
				fmt.Printf("%s: expected %s, got %s\n", c.Name, c.Expected, c.Actual)
			}
		}
	}
}

// Check a running preview container against the configured limits from an
// admin endpoint. The Docker socket here does not exist, so the example
// answers 503.
func Example_verification() {
	limits := container.DefaultLimits() // CPUs, MemoryBytes (container.ParseMemory("512m")), NetworkMode, ...
	limits.ReadOnlyRootfs = true
	verifier, err := container.NewVerifier(limits,
		container.WithDockerHost("unix:///nonexistent/docker.sock")) // default: container.DefaultDockerHost
	if err != nil {
		log.Fatal(err)
	}
	defer verifier.Close(context.Background())
	mux := http.NewServeMux()
	mux.HandleFunc("GET /admin/containers/{id}/verify", func(w http.ResponseWriter, r *http.Request) {
		report, err := verifier.Verify(r.Context(), r.PathValue("id"))
		switch {
		case errors.Is(err, container.ErrNotFound):
			http.Error(w, "no such container", http.StatusNotFound)
		case err != nil:
			http.Error(w, "docker unavailable", http.StatusServiceUnavailable)
		default:
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(report) // report.OK and one entry per check
		}
	})

	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/admin/containers/preview-42/verify", nil))
	fmt.Println(rec.Code)
	// Output: 503
}
