package main

import (
	"fmt"
	"os"

	"github.com/systembuilderhub/hardening/previewsec/egress"
)

// The previewsec settings of the hub's environment. The packages read no
// environment; these functions turn it into their options, with errors
// naming the variable.

// Environment variables of the egress policy.
const (
	envEgressAllowlist = "PREVIEW_EGRESS_ALLOWLIST"
	envEgressDenylist  = "PREVIEW_EGRESS_DENYLIST"
)

// egressPolicyOptionsFromEnv reads PREVIEW_EGRESS_ALLOWLIST and
// PREVIEW_EGRESS_DENYLIST (comma lists; an empty allowlist denies
// everything).
func egressPolicyOptionsFromEnv() ([]egress.PolicyOption, error) {
	allow, err := egress.ParseAllowlist(os.Getenv(envEgressAllowlist))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", envEgressAllowlist, err)
	}
	deny, err := egress.ParseDenylist(os.Getenv(envEgressDenylist))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", envEgressDenylist, err)
	}
	return []egress.PolicyOption{egress.WithAllow(allow...), egress.WithDeny(deny...)}, nil
}
