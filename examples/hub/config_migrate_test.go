package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/systembuilderhub/hardening/migrate"
)

func TestMigrationPolicyFromEnv(t *testing.T) {
	hub := func(p migrate.Policy) migrate.Policy { p.UpCommand = hubUpCommand; return p }
	tests := []struct {
		name string
		env  map[string]string
		want migrate.Policy
		err  string
	}{
		{"defaults", nil, hub(migrate.DefaultPolicy()), ""},
		{"blank is unset", map[string]string{envStrictDBStartup: "  "}, hub(migrate.Policy{}), ""},
		{"strict", map[string]string{envStrictDBStartup: "true"}, hub(migrate.Policy{Strict: true}), ""},
		{"check off", map[string]string{envCheckOnStartup: "false"}, hub(migrate.Policy{DisableCheck: true}), ""},
		{"alias", map[string]string{envCheckOnStartupAlias: "false"}, hub(migrate.Policy{DisableCheck: true}), ""},
		{"primary wins over alias", map[string]string{envCheckOnStartup: "true", envCheckOnStartupAlias: "false"}, hub(migrate.Policy{}), ""},
		{"no auto apply", map[string]string{envAutoApply: "0"}, hub(migrate.Policy{DisableAutoApply: true}), ""},
		{"bad value names the variable", map[string]string{envStrictDBStartup: "yes please"}, migrate.Policy{}, `STRICT_DB_STARTUP="yes please": want true or false`},
		{"bad alias names the alias", map[string]string{envCheckOnStartupAlias: "nope"}, migrate.Policy{}, "ALEMBIC_CHECK_ON_STARTUP"},
		{"bad auto apply", map[string]string{envAutoApply: "perhaps"}, migrate.Policy{}, "MIGRATIONS_AUTO_APPLY"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for _, k := range []string{envStrictDBStartup, envCheckOnStartupAlias, envCheckOnStartup, envAutoApply} {
				t.Setenv(k, "")
			}
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			got, err := migrationPolicyFromEnv()
			if tc.err != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}
