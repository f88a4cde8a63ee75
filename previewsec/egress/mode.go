package egress

import (
	"errors"
	"fmt"
	"strings"
)

// Mode is how a Policy treats a destination that neither the denylist nor
// the special-purpose registries rule out.
type Mode string

const (
	// ModeAllowlist allows only destinations on the allowlist; an empty
	// allowlist denies everything. The default: the mode for preview
	// sandboxes, which need a few known services and nothing else.
	ModeAllowlist Mode = "allowlist"
	// ModePublic allows any destination whose every address is public
	// (outside the IANA special-purpose registries and the denylist) on
	// the allowed ports: the mode for webhooks and other user-supplied
	// URLs, "anywhere on the internet, nothing internal". It resolves any
	// name it is asked about.
	ModePublic Mode = "public"
)

// ParseMode parses "allowlist" or "public" (case and surrounding spaces do
// not matter); empty is ModeAllowlist.
func ParseMode(s string) (Mode, error) {
	switch m := Mode(strings.ToLower(strings.TrimSpace(s))); m {
	case "", ModeAllowlist:
		return ModeAllowlist, nil
	case ModePublic:
		return m, nil
	}
	return "", fmt.Errorf("egress: mode %q: want allowlist or public", s)
}

// WithMode sets the policy's mode (default ModeAllowlist).
func WithMode(m Mode) PolicyOption {
	return policyOption(func(c *policyConfig) { c.mode = m })
}

// check reports options that do not fit the mode.
func (c *policyConfig) check() error {
	switch c.mode {
	case ModeAllowlist:
		return nil
	case ModePublic:
		if len(c.allow) > 0 {
			return errors.New("egress: public mode takes no allowlist: every public destination is allowed")
		}
		if len(c.allowCIDR) > 0 {
			return errors.New("egress: public mode takes no allowed CIDRs: it allows public addresses only")
		}
		return nil
	}
	return fmt.Errorf("egress: mode %q: want %q or %q", c.mode, ModeAllowlist, ModePublic)
}
