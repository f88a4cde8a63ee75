// Package redisstore is the Redis previewsec.KeyStore and
// previewsec.RevocationStore, for replicas that share a Redis (or Redis
// Cluster) instead of a database file.
//
// Layout (P is the key prefix, default "hardening:"):
//
//	P{previewsec:keys}:keys  hash  period start (Unix ms) -> "kid|created|expires|base64(secret)"
//	P{previewsec:keys}:exp   zset  period start, scored by expiry (Unix ms)
//	P{previewsec:rev}:data   hash  "kind:value" -> "revoked|expires"
//	P{previewsec:rev}:exp    zset  "kind:value", scored by expiry
//
// Each state change is one Lua script over the two keys of one hash tag, so
// it is atomic and runs on Redis Cluster. The key ring holds a handful of
// keys and the revocation list only unexpired entries, so one hash tag per
// structure is enough; neither holds per-tenant data.
package redisstore

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/systembuilderhub/hardening/previewsec"
	"github.com/systembuilderhub/hardening/previewsec/internal/keyrules"
)

// DefaultPrefix is the default key prefix.
const DefaultPrefix = "hardening:"

// Store is the Redis store.
type Store struct {
	c               redis.UniversalClient
	keysHash, keysZ string
	revHash, revZ   string
}

var (
	_ previewsec.KeyStore        = (*Store)(nil)
	_ previewsec.RevocationStore = (*Store)(nil)
)

// Option configures New.
type Option interface{ apply(*config) }

type config struct{ prefix string }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

// WithKeyPrefix sets the prefix of every Redis key (default DefaultPrefix).
// It must not contain '{' or '}' (New reports it): the store sets the hash
// tags.
func WithKeyPrefix(p string) Option {
	return optionFunc(func(c *config) { c.prefix = p })
}

func (s *Store) setPrefix(p string) {
	kt, rt := p+"{previewsec:keys}", p+"{previewsec:rev}"
	s.keysHash, s.keysZ = kt+":keys", kt+":exp"
	s.revHash, s.revZ = rt+":data", rt+":exp"
}

// New returns a store on c (a client, cluster client or ring).
func New(c redis.UniversalClient, opts ...Option) (*Store, error) {
	if c == nil {
		return nil, errors.New("previewsec/redisstore: nil client")
	}
	cfg := config{prefix: DefaultPrefix}
	for _, o := range opts {
		if o != nil {
			o.apply(&cfg)
		}
	}
	if strings.ContainsAny(cfg.prefix, "{}") {
		return nil, errors.New("previewsec/redisstore: key prefix must not contain { or }")
	}
	s := &Store{c: c}
	s.setPrefix(cfg.prefix)
	return s, nil
}

// createKeyScript: create-if-absent of one period's key.
// KEYS: hash, zset. ARGV: field (period ms), value, expires ms, kid.
// Returns {1, value} when created, {0, existing} when the period had a key,
// {-1, other} when the kid belongs to another period.
var createKeyScript = redis.NewScript(`
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if cur then return {0, cur} end
local prefix = ARGV[4] .. '|'
for _, v in ipairs(redis.call('HVALS', KEYS[1])) do
  if string.sub(v, 1, string.len(prefix)) == prefix then return {-1, v} end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
return {1, ARGV[2]}
`)

// deleteExpiredScript removes hash fields whose zset score is <= now.
// KEYS: hash, zset. ARGV: now ms. Returns the number deleted.
var deleteExpiredScript = redis.NewScript(`
local old = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ARGV[1])
for _, f in ipairs(old) do redis.call('HDEL', KEYS[1], f) end
if #old > 0 then redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[1]) end
return #old
`)

// revokeScript upserts a revocation keeping the later times.
// KEYS: hash, zset. ARGV: member, revoked ms, expires ms.
var revokeScript = redis.NewScript(`
local rev, exp = ARGV[2], ARGV[3]
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if cur then
  local r, e = string.match(cur, '^(%d+)|(%d+)$')
  if r and tonumber(r) > tonumber(rev) then rev = r end
  if e and tonumber(e) > tonumber(exp) then exp = e end
end
redis.call('HSET', KEYS[1], ARGV[1], rev .. '|' .. exp)
redis.call('ZADD', KEYS[2], exp, ARGV[1])
return 1
`)

func keyEncode(k previewsec.Key) string {
	return k.ID + "|" + strconv.FormatInt(k.CreatedAt.UnixMilli(), 10) + "|" +
		strconv.FormatInt(k.ExpiresAt.UnixMilli(), 10) + "|" + base64.RawStdEncoding.EncodeToString(k.Secret)
}

func keyDecode(field, v string) (previewsec.Key, error) {
	parts := strings.Split(v, "|")
	if len(parts) != 4 {
		return previewsec.Key{}, fmt.Errorf("previewsec/redisstore: corrupt key entry %q", field)
	}
	period, err1 := strconv.ParseInt(field, 10, 64)
	created, err2 := strconv.ParseInt(parts[1], 10, 64)
	expires, err3 := strconv.ParseInt(parts[2], 10, 64)
	secret, err4 := base64.RawStdEncoding.DecodeString(parts[3])
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		return previewsec.Key{}, fmt.Errorf("previewsec/redisstore: corrupt key entry %q: %w", field, err)
	}
	return previewsec.Key{ID: parts[0], PeriodStart: time.UnixMilli(period).UTC(), Secret: secret,
		CreatedAt: time.UnixMilli(created).UTC(), ExpiresAt: time.UnixMilli(expires).UTC()}, nil
}

// CreateKey implements previewsec.KeyStore.
func (s *Store) CreateKey(ctx context.Context, k previewsec.Key) (previewsec.KeyCreateResult, error) {
	if err := keyrules.CheckKey(k.ID, k.Secret, k.PeriodStart, k.ExpiresAt); err != nil {
		return previewsec.KeyCreateResult{}, err
	}
	field := strconv.FormatInt(k.PeriodStart.UnixMilli(), 10)
	res, err := createKeyScript.Run(ctx, s.c, []string{s.keysHash, s.keysZ},
		field, keyEncode(k), k.ExpiresAt.UnixMilli(), k.ID).Slice()
	if err != nil {
		return previewsec.KeyCreateResult{}, fmt.Errorf("previewsec/redisstore: create key: %w", err)
	}
	if len(res) != 2 {
		return previewsec.KeyCreateResult{}, fmt.Errorf("previewsec/redisstore: create key: unexpected reply %v", res)
	}
	status, _ := res[0].(int64)
	val, _ := res[1].(string)
	if status == -1 {
		return previewsec.KeyCreateResult{}, previewsec.ErrKeyConflict
	}
	key, err := keyDecode(field, val)
	if err != nil {
		return previewsec.KeyCreateResult{}, err
	}
	return previewsec.KeyCreateResult{Key: key, Created: status == 1}, nil
}

// Keys implements previewsec.KeyStore.
func (s *Store) Keys(ctx context.Context, now time.Time) ([]previewsec.Key, error) {
	m, err := s.c.HGetAll(ctx, s.keysHash).Result()
	if err != nil {
		return nil, fmt.Errorf("previewsec/redisstore: keys: %w", err)
	}
	keys := make([]previewsec.Key, 0, len(m))
	for f, v := range m {
		k, err := keyDecode(f, v)
		if err != nil {
			return nil, err
		}
		if k.ExpiresAt.After(now) {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, func(a, b previewsec.Key) int { return a.PeriodStart.Compare(b.PeriodStart) })
	return keys, nil
}

// DeleteExpiredKeys implements previewsec.KeyStore.
func (s *Store) DeleteExpiredKeys(ctx context.Context, now time.Time) (int, error) {
	n, err := deleteExpiredScript.Run(ctx, s.c, []string{s.keysHash, s.keysZ}, now.UnixMilli()).Int()
	if err != nil {
		return 0, fmt.Errorf("previewsec/redisstore: delete expired keys: %w", err)
	}
	return n, nil
}

// Revoke implements previewsec.RevocationStore.
func (s *Store) Revoke(ctx context.Context, rev previewsec.Revocation) error {
	if err := keyrules.CheckRevocation(string(rev.Kind), rev.Value, rev.ExpiresAt); err != nil {
		return err
	}
	err := revokeScript.Run(ctx, s.c, []string{s.revHash, s.revZ},
		string(rev.Kind)+":"+rev.Value, max(rev.RevokedAt.UnixMilli(), 0), rev.ExpiresAt.UnixMilli()).Err()
	if err != nil {
		return fmt.Errorf("previewsec/redisstore: revoke: %w", err)
	}
	return nil
}

// Revocations implements previewsec.RevocationStore.
func (s *Store) Revocations(ctx context.Context, now time.Time) ([]previewsec.Revocation, error) {
	m, err := s.c.HGetAll(ctx, s.revHash).Result()
	if err != nil {
		return nil, fmt.Errorf("previewsec/redisstore: revocations: %w", err)
	}
	out := make([]previewsec.Revocation, 0, len(m))
	for member, v := range m {
		kind, value, ok1 := strings.Cut(member, ":")
		r, e, ok2 := strings.Cut(v, "|")
		revoked, err1 := strconv.ParseInt(r, 10, 64)
		expires, err2 := strconv.ParseInt(e, 10, 64)
		if !ok1 || !ok2 || err1 != nil || err2 != nil {
			return nil, fmt.Errorf("previewsec/redisstore: corrupt revocation entry %q", member)
		}
		rev := previewsec.Revocation{Kind: previewsec.RevocationKind(kind), Value: value,
			RevokedAt: time.UnixMilli(revoked).UTC(), ExpiresAt: time.UnixMilli(expires).UTC()}
		if rev.ExpiresAt.After(now) {
			out = append(out, rev)
		}
	}
	return out, nil
}

// DeleteExpiredRevocations implements previewsec.RevocationStore.
func (s *Store) DeleteExpiredRevocations(ctx context.Context, now time.Time) (int, error) {
	n, err := deleteExpiredScript.Run(ctx, s.c, []string{s.revHash, s.revZ}, now.UnixMilli()).Int()
	if err != nil {
		return 0, fmt.Errorf("previewsec/redisstore: delete expired revocations: %w", err)
	}
	return n, nil
}
