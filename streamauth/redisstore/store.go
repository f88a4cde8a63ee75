// Package redisstore is the Redis streamauth.RevocationStore, for any
// redis.UniversalClient (single node, Sentinel, Cluster).
//
// Keys (under one prefix, default "hardening:"; all share the hash tag
// {streamauth}, so each script runs on Redis Cluster):
//
//	<prefix>{streamauth}:revocations            set of members, one per revoked user / tenant
//	<prefix>{streamauth}:revocation:<member>    string "<revoked_at ms> <expires_at ms>"
//
// A member is the JSON array ["<user>","<tenant>"]. Every revocation key
// carries a Redis TTL of its revocation memory (ExpiresAt - RevokedAt), so
// it expires with the credentials it refuses; the set's TTL is the longest
// of them, and Load removes the members whose key has expired. Revocations
// are few (one per Registry.Revoke of a user or tenant), so one set for the
// namespace keeps each change a single-slot script.
package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/systembuilderhub/hardening/streamauth"
)

// DefaultPrefix is the key prefix when WithPrefix is not given.
const DefaultPrefix = "hardening:"

// Store is the Redis streamauth.RevocationStore.
type Store struct {
	rdb      redis.UniversalClient
	index    string
	entryPfx string
}

var _ streamauth.RevocationStore = (*Store)(nil)

type config struct{ prefix string }

// Option configures a Store.
type Option interface{ apply(*config) }

type option func(*config)

func (f option) apply(c *config) { f(c) }

// WithPrefix sets the prefix of every key (default DefaultPrefix).
// Replicas that share revocations must use the same one.
func WithPrefix(p string) Option { return option(func(c *config) { c.prefix = p }) }

// New returns a store on rdb.
func New(rdb redis.UniversalClient, opts ...Option) (*Store, error) {
	if rdb == nil {
		return nil, errors.New("streamauth/redisstore: nil client")
	}
	cfg := config{prefix: DefaultPrefix}
	for _, o := range opts {
		if o != nil {
			o.apply(&cfg)
		}
	}
	return &Store{rdb: rdb, index: cfg.prefix + "{streamauth}:revocations", entryPfx: cfg.prefix + "{streamauth}:revocation:"}, nil
}

// addScript: KEYS index, entry; ARGV member, revoked_at, expires_at (ms),
// ttl (ms). It keeps the later times and the longer TTL of the entry and
// the longest TTL of the index.
var addScript = redis.NewScript(`
local at, exp, ttl = ARGV[2], ARGV[3], tonumber(ARGV[4])
local cur = redis.call('GET', KEYS[2])
if cur then
  local cat, cexp = string.match(cur, '^(%-?%d+) (%-?%d+)$')
  if cat and tonumber(cat) > tonumber(at) then at = cat end
  if cexp and tonumber(cexp) > tonumber(exp) then exp = cexp end
end
local pttl = redis.call('PTTL', KEYS[2])
if pttl > ttl then ttl = pttl end
redis.call('SET', KEYS[2], at .. ' ' .. exp, 'PX', ttl)
redis.call('SADD', KEYS[1], ARGV[1])
if redis.call('PTTL', KEYS[1]) < ttl then redis.call('PEXPIRE', KEYS[1], ttl) end
return 1
`)

// loadScript: KEYS index, entries...; ARGV their members. Returns the
// entries' values, false for the expired ones, whose members it removes.
var loadScript = redis.NewScript(`
local out = {}
for i = 2, #KEYS do
  local v = redis.call('GET', KEYS[i])
  if not v then redis.call('SREM', KEYS[1], ARGV[i-1]) end
  out[i-1] = v
end
return out
`)

func member(user, tenant string) string {
	b, _ := json.Marshal([2]string{user, tenant}) // strings always marshal
	return string(b)
}

// Add implements streamauth.RevocationStore with one script.
func (s *Store) Add(ctx context.Context, rev streamauth.Revocation) error {
	if err := rev.Validate(); err != nil {
		return err
	}
	m := member(rev.Subject, rev.Tenant)
	ttl := max(rev.ExpiresAt.Sub(rev.RevokedAt).Milliseconds(), 1)
	err := addScript.Run(ctx, s.rdb, []string{s.index, s.entryPfx + m}, m,
		rev.RevokedAt.UnixMilli(), rev.ExpiresAt.UnixMilli(), ttl).Err()
	if err != nil {
		return fmt.Errorf("streamauth/redisstore: add: %w", err)
	}
	return nil
}

// Load implements streamauth.RevocationStore: the members of the index,
// then one script reading their entries.
func (s *Store) Load(ctx context.Context, now time.Time) ([]streamauth.Revocation, error) {
	members, err := s.rdb.SMembers(ctx, s.index).Result()
	if err != nil {
		return nil, fmt.Errorf("streamauth/redisstore: load: %w", err)
	}
	if len(members) == 0 {
		return nil, nil
	}
	keys := make([]string, 0, len(members)+1)
	keys = append(keys, s.index)
	args := make([]any, 0, len(members))
	for _, m := range members {
		keys = append(keys, s.entryPfx+m)
		args = append(args, m)
	}
	vals, err := loadScript.Run(ctx, s.rdb, keys, args...).Slice()
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("streamauth/redisstore: load: %w", err)
	}
	var out []streamauth.Revocation
	for i, v := range vals {
		str, ok := v.(string)
		if !ok || i >= len(members) {
			continue // expired
		}
		rev, err := parse(members[i], str)
		if err != nil {
			return nil, fmt.Errorf("streamauth/redisstore: load: %w", err)
		}
		if rev.ExpiresAt.After(now) {
			out = append(out, rev)
		}
	}
	return out, nil
}

// parse reads a member and its entry's value.
func parse(m, v string) (streamauth.Revocation, error) {
	var who [2]string
	if err := json.Unmarshal([]byte(m), &who); err != nil {
		return streamauth.Revocation{}, fmt.Errorf("malformed member %q", m)
	}
	atS, expS, ok := strings.Cut(v, " ")
	at, err1 := strconv.ParseInt(atS, 10, 64)
	exp, err2 := strconv.ParseInt(expS, 10, 64)
	if !ok || err1 != nil || err2 != nil {
		return streamauth.Revocation{}, fmt.Errorf("malformed revocation %q", v)
	}
	return streamauth.Revocation{Subject: who[0], Tenant: who[1],
		RevokedAt: time.UnixMilli(at).UTC(), ExpiresAt: time.UnixMilli(exp).UTC()}, nil
}
