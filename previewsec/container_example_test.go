package previewsec_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/systembuilderhub/hardening/previewsec"
)

func ExampleContainerVerifier_Verify() {
	// PREVIEW_CPU_LIMIT, PREVIEW_MEM_LIMIT, PREVIEW_NETWORK_MODE,
	// PREVIEW_SECURITY_OPTS and DOCKER_HOST.
	v, err := previewsec.ContainerVerifierFromEnv()
	if err != nil {
		log.Fatal(err)
	}
	report, err := v.Verify(context.Background(), "preview-42")
	switch {
	case errors.Is(err, previewsec.ErrContainerNotFound):
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
