package egress_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/systembuilderhub/hardening/previewsec/egress"
)

// TestOptionsFitTheirConstructors: WithLogger and WithRegisterer configure
// both constructors; every other option one only, and passing it to the
// other does not compile.
func TestOptionsFitTheirConstructors(t *testing.T) {
	t.Parallel()
	policy, proxy := reflect.TypeFor[egress.PolicyOption](), reflect.TypeFor[egress.ProxyOption]()
	for _, tc := range []struct {
		option        any
		policy, proxy bool
	}{
		{egress.WithLogger(nil), true, true},
		{egress.WithRegisterer(nil), true, true},
		{egress.WithClock(time.Now), true, false},
		{egress.WithAllow("x.example"), true, false},
		{egress.WithDialTimeout(time.Second), true, false},
		{egress.WithMaxTunnels(1), false, true},
		{egress.WithIdleTimeout(time.Second), false, true},
	} {
		typ := reflect.TypeOf(tc.option)
		assert.Equal(t, tc.policy, typ.Implements(policy), "%s as a policy option", typ)
		assert.Equal(t, tc.proxy, typ.Implements(proxy), "%s as a proxy option", typ)
	}
}
