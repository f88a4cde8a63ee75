package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/golang-jwt/jwt/v5"
	"github.com/redis/go-redis/v9"
	limiter "github.com/sethvargo/go-limiter"
	"github.com/sethvargo/go-limiter/memorystore"

	"github.com/systembuilderhub/hardening/previewsec"
	"github.com/systembuilderhub/hardening/streamauth"
	"github.com/systembuilderhub/hardening/tenancy"
	"github.com/systembuilderhub/hardening/tenancy/redisstore"
)

// op is one rate decision or one token verification. It returns an error
// when the backend failed or the answer was not the expected "allowed" or
// "valid", so a benchmark never times a refusal against an admission.
type op func(ctx context.Context) error

// pair is the kit's way of doing one thing and a peer library's way of
// doing the same thing, measured side by side.
type pair struct {
	Name string // short name, also the benchmark's name
	Kit  string // what the kit side calls
	Peer string // what the peer side calls
	kit  op
	peer op
}

// highRate is the rate both sides of a rate pair allow per minute: high
// enough that no decision in a run is a refusal.
const highRate = 1_000_000_000

const tenant = tenancy.ID("acme")

var errRefused = errors.New("refused: the rate was meant never to refuse")

// newPairs builds every pair. rdb is the Redis both Redis pairs share
// (keys under prefix, which names this run); close releases the memory
// limiter.
func newPairs(ctx context.Context, rdb redis.UniversalClient, prefix string) (pairs []pair, closeFn func(), err error) {
	gl, err := memorystore.New(&memorystore.Config{Tokens: highRate, Interval: time.Minute})
	if err != nil {
		return nil, nil, err
	}
	closeFn = func() { _ = gl.Close(context.Background()) }
	defer func() {
		if err != nil {
			closeFn()
		}
	}()
	goLimiter := takeOp(gl, "acme/peer")

	memStore := tenancy.NewMemoryStore()
	memQuotas, err := tenancy.NewQuotas(memStore, tenancy.Rate("peer", highRate, time.Minute))
	if err != nil {
		return nil, nil, err
	}
	pairs = append(pairs,
		pair{Name: "rate-memory", Kit: "tenancy.Quotas.Allow, memory store", Peer: "go-limiter memorystore Take",
			kit: allowOp(memQuotas), peer: goLimiter},
		pair{Name: "rate-memory-store", Kit: "tenancy.MemoryStore.TakeRate", Peer: "go-limiter memorystore Take",
			kit: takeRateOp(memStore), peer: goLimiter},
	)

	rs, err := redisstore.New(rdb, redisstore.WithPrefix(prefix))
	if err != nil {
		return nil, nil, err
	}
	redisQuotas, err := tenancy.NewQuotas(rs, tenancy.Rate("peer", highRate, time.Minute))
	if err != nil {
		return nil, nil, err
	}
	rr := redisRateOp(redis_rate.NewLimiter(rdb), prefix+"redis_rate")
	pairs = append(pairs,
		pair{Name: "rate-redis", Kit: "tenancy.Quotas.Allow, redisstore", Peer: "redis_rate Limiter.Allow",
			kit: allowOp(redisQuotas), peer: rr},
		pair{Name: "rate-redis-store", Kit: "redisstore.Store.TakeRate", Peer: "redis_rate Limiter.Allow",
			kit: takeRateOp(rs), peer: rr},
	)

	tokPairs, err := tokenPairs(ctx)
	if err != nil {
		return nil, nil, err
	}
	return append(pairs, tokPairs...), closeFn, nil
}

func allowOp(q *tenancy.Quotas) op {
	return func(ctx context.Context) error {
		res, err := q.Allow(tenancy.WithTenant(ctx, tenant), "peer")
		if err == nil && !res.Allowed {
			err = errRefused
		}
		return err
	}
}

func takeRateOp(s tenancy.RateStore) op {
	return func(ctx context.Context) error {
		res, err := s.TakeRate(ctx, tenancy.RateRequest{Tenant: tenant, Quota: "peer", Now: time.Now(),
			DefaultLimit: highRate, Period: time.Minute})
		if err == nil && !res.Allowed {
			err = errRefused
		}
		return err
	}
}

func takeOp(s limiter.Store, key string) op {
	return func(ctx context.Context) error {
		_, _, _, ok, err := s.Take(ctx, key)
		if err == nil && !ok {
			err = errRefused
		}
		return err
	}
}

func redisRateOp(l *redis_rate.Limiter, key string) op {
	limit := redis_rate.Limit{Rate: highRate, Burst: highRate, Period: time.Minute}
	return func(ctx context.Context) error {
		res, err := l.Allow(ctx, key, limit)
		if err == nil && res.Allowed == 0 {
			err = errRefused
		}
		return err
	}
}

// tokenPairs verifies one preview token and one bearer token the kit's way
// and with golang-jwt's jwt.Parse (HS256 only, the same key), the
// baseline the kit's verifiers add their checks and any cache to.
func tokenPairs(ctx context.Context) ([]pair, error) {
	keys := previewsec.NewMemoryKeyStore()
	ring, err := previewsec.NewKeyRing(keys)
	if err != nil {
		return nil, err
	}
	revs, err := previewsec.NewRevocationList(keys)
	if err != nil {
		return nil, err
	}
	issuer, err := previewsec.NewIssuer(ring)
	if err != nil {
		return nil, err
	}
	verifier, err := previewsec.NewVerifier(ring, previewsec.WithRevocations(revs))
	if err != nil {
		return nil, err
	}
	if err := errors.Join(ring.Refresh(ctx), revs.Refresh(ctx)); err != nil {
		return nil, err
	}
	preview, _, _, err := issuer.Mint(ctx, previewsec.Grant{UserID: "loaduser", TenantID: string(tenant),
		PreviewID: "pv_peers", SystemID: "sys_load", Device: "desktop"}, 0)
	if err != nil {
		return nil, err
	}
	key, err := ring.SigningKey(ctx)
	if err != nil {
		return nil, err
	}

	secret := []byte("loadtest-peers-bearer-secret-0123456789")
	auth, err := streamauth.NewJWT(secret, streamauth.WithAudience("hub"), streamauth.WithIssuer("hub"))
	if err != nil {
		return nil, err
	}
	now := time.Now()
	bearer, err := auth.Sign(streamauth.Claims{Tenant: string(tenant), RegisteredClaims: jwt.RegisteredClaims{
		Subject: "loaduser", Issuer: "hub", Audience: jwt.ClaimStrings{"hub"},
		IssuedAt: jwt.NewNumericDate(now), ExpiresAt: jwt.NewNumericDate(now.Add(24 * time.Hour)),
	}})
	if err != nil {
		return nil, err
	}
	return []pair{
		{Name: "token-preview", Kit: "previewsec.Verifier.Verify (key ring, revocations)", Peer: "jwt.Parse, HS256, same key",
			kit: func(ctx context.Context) error {
				_, err := verifier.Verify(ctx, preview)
				return err
			}, peer: jwtParseOp(preview, key.Secret)},
		{Name: "token-bearer", Kit: "streamauth.JWTAuthenticator.AuthenticateToken", Peer: "jwt.Parse, HS256, same key",
			kit: func(ctx context.Context) error {
				_, err := auth.AuthenticateToken(ctx, bearer)
				return err
			}, peer: jwtParseOp(bearer, secret)},
	}, nil
}

// jwtParseOp is golang-jwt alone: jwt.Parse into its default MapClaims,
// HS256 required, exp and nbf checked by the library's defaults.
func jwtParseOp(token string, secret []byte) op {
	var key any = secret
	keyFunc := func(*jwt.Token) (any, error) { return key, nil }
	return func(context.Context) error {
		t, err := jwt.Parse(token, keyFunc, jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}))
		if err == nil && !t.Valid {
			err = fmt.Errorf("jwt.Parse: token not valid")
		}
		return err
	}
}
