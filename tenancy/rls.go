package tenancy

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
)

// PolicyName is the name of the row-level security policy that
// RowLevelSecuritySQL creates on a table.
const PolicyName = "hardening_tenant_isolation"

// ErrInvalidIdentifier is returned by RowLevelSecuritySQL for a table or
// column name it does not accept.
var ErrInvalidIdentifier = errors.New("tenancy: invalid SQL identifier")

// identRE is one Postgres identifier as an unquoted name folds to:
// lowercase letters, digits, _ and $, not starting with a digit or $, at
// most 63 bytes.
var identRE = regexp.MustCompile(`^[a-z_][a-z0-9_$]{0,62}$`)

// RowLevelSecuritySQL returns the Postgres statements that put table under
// tenant isolation by row-level security, for the application's own
// migrations. The policy admits a row, to read and to write, when its
// tenantColumn (a text column) equals the transaction's TenantSetting,
// which DB sets, or when CrossTenantSetting is "on", which only
// DB.CrossTenantTx sets:
//
//	ALTER TABLE "<table>" ENABLE ROW LEVEL SECURITY;
//	ALTER TABLE "<table>" FORCE ROW LEVEL SECURITY;
//	CREATE POLICY hardening_tenant_isolation ON "<table>"
//	    USING ("<col>" = nullif(current_setting('app.tenant_id', true), '') OR current_setting('app.cross_tenant', true) = 'on')
//	    WITH CHECK ("<col>" = nullif(current_setting('app.tenant_id', true), '') OR current_setting('app.cross_tenant', true) = 'on');
//
// The nullif matters: once a pooled connection has run one transaction
// that set app.tenant_id, Postgres keeps the setting defined for the
// session as the empty string after it ends, and a bare comparison would
// then admit rows with an empty tenant to code that set no tenant.
//
// FORCE applies the policy to the table's owner too; superusers and roles
// with BYPASSRLS still bypass it, so the application must connect as a
// role without them. A query with no tenant set sees no row and a write
// fails. table may be schema-qualified ("app.widgets"); each name must be
// a lowercase identifier (as Postgres folds unquoted names: [a-z_] then
// [a-z0-9_$], at most 63 bytes), else ErrInvalidIdentifier, so no SQL can
// pass through a name. The names are double-quoted in the output.
func RowLevelSecuritySQL(table, tenantColumn string) (string, error) {
	parts := strings.Split(table, ".")
	if len(parts) > 2 {
		return "", fmt.Errorf("%w: table %q has more than one dot", ErrInvalidIdentifier, table)
	}
	for i, p := range parts {
		if !identRE.MatchString(p) {
			return "", fmt.Errorf("%w: table %q", ErrInvalidIdentifier, table)
		}
		parts[i] = `"` + p + `"`
	}
	if !identRE.MatchString(tenantColumn) {
		return "", fmt.Errorf("%w: column %q", ErrInvalidIdentifier, tenantColumn)
	}
	t := strings.Join(parts, ".")
	cond := `"` + tenantColumn + `" = nullif(current_setting('` + TenantSetting + `', true), '') OR current_setting('` + CrossTenantSetting + `', true) = 'on'`
	return "ALTER TABLE " + t + " ENABLE ROW LEVEL SECURITY;\n" +
		"ALTER TABLE " + t + " FORCE ROW LEVEL SECURITY;\n" +
		"CREATE POLICY " + PolicyName + " ON " + t + "\n" +
		"    USING (" + cond + ")\n" +
		"    WITH CHECK (" + cond + ");\n", nil
}
