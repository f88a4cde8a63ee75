package sqlitestore

import (
	"context"

	"github.com/jmoiron/sqlx"

	"github.com/systembuilderhub/hardening/internal/sqlitex"
	"github.com/systembuilderhub/hardening/tenancy"

	"github.com/systembuilderhub/hardening/tenancy/internal/storekit"
)

// rateStateSQL reads a rate's effective limit (the tenant's override, else
// the default) and its stored tat (0 when none) in one statement.
const rateStateSQL = `SELECT
  coalesce((SELECT value FROM hardening_quota_overrides WHERE tenant_id = ?1 AND quota = ?2), ?3),
  coalesce((SELECT tat FROM hardening_quota_rates WHERE tenant_id = ?1 AND quota = ?2), 0)`

// rateState reads the tenant's limit of the rate and its stored tat (0
// when none).
func rateState(ctx context.Context, q queryer, req tenancy.RateRequest) (limit, tat int64, err error) {
	err = q.QueryRowxContext(ctx, rateStateSQL, string(req.Tenant), req.Quota, req.DefaultLimit).Scan(&limit, &tat)
	return limit, tat, err
}

// TakeRate implements tenancy.RateStore.
func (s *Store) TakeRate(ctx context.Context, req tenancy.RateRequest) (res tenancy.RateResult, err error) {
	err = sqlitex.Immediate(ctx, s.db, func(c *sqlx.Conn) error {
		limit, tat, err := rateState(ctx, c, req)
		if err != nil {
			return err
		}
		newTat, r := tenancy.GCRA(tat, req.Now.UnixMicro(), limit, req.Burst, req.Period)
		res = r
		if newTat == tat {
			return nil
		}
		_, err = c.ExecContext(ctx, `INSERT INTO hardening_quota_rates (tenant_id, quota, tat) VALUES (?, ?, ?)
			ON CONFLICT (tenant_id, quota) DO UPDATE SET tat = excluded.tat`, req.Tenant, req.Quota, newTat)
		return err
	})
	return res, err
}

// RateUsed implements tenancy.RateStore. It only reads.
func (s *Store) RateUsed(ctx context.Context, req tenancy.RateRequest) (int64, error) {
	limit, tat, err := rateState(ctx, s.db, req)
	if err != nil {
		return 0, err
	}
	return storekit.RateUsed(tat, req.Now.UnixMicro(), limit, req.Burst, req.Period), nil
}
