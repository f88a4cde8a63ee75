// Package redisstore keeps idempotency records in Redis, shared by every
// replica that uses the same server or cluster.
//
// Each record is one hash at <prefix>{<scoped key>}: the scoped key is its
// own hash tag, so records spread over a Redis Cluster and every script
// touches one slot. Each state change is one Lua script (one round trip):
// a first request costs two round trips (claim, complete) and a replay one.
// Expiry decisions use the caller's clock passed as an argument (so every
// replica and test agrees with the middleware's clock); Redis key expiry
// (PEXPIRE) frees the memory, so no sweeper is needed.
package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/systembuilderhub/hardening/idempotency"
	"github.com/systembuilderhub/hardening/idempotency/internal/hdrcache"
)

// DefaultPrefix starts every key of the store.
const DefaultPrefix = "hardening:idempotency:"

// Option configures New. Invalid values make New return an error.
type Option interface{ apply(*config) }

type config struct{ prefix string }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

// WithPrefix sets the key prefix (default DefaultPrefix; "" means none).
// New refuses a prefix containing '{' or '}', which would change the
// records' Redis Cluster hash slot.
func WithPrefix(p string) Option { return optionFunc(func(c *config) { c.prefix = p }) }

// Store is an idempotency.Store on Redis. Create it with New.
type Store struct {
	rdb     redis.UniversalClient
	prefix  string
	headers hdrcache.Cache // decoded header sets of replays
}

var (
	_ idempotency.Store       = (*Store)(nil)
	_ idempotency.StatsReader = (*Store)(nil)
)

// New returns a Store on rdb (a client, a cluster client or a ring).
func New(rdb redis.UniversalClient, opts ...Option) (*Store, error) {
	if rdb == nil {
		return nil, errors.New("redisstore: nil client")
	}
	cfg := config{prefix: DefaultPrefix}
	for _, o := range opts {
		if o == nil {
			return nil, errors.New("redisstore: nil option")
		}
		o.apply(&cfg)
	}
	if strings.ContainsAny(cfg.prefix, "{}") {
		return nil, fmt.Errorf("redisstore: prefix %q must not contain braces", cfg.prefix)
	}
	return &Store{rdb: rdb, prefix: cfg.prefix}, nil
}

// String returns "redis", the store's kind.
func (s *Store) String() string { return "redis" }

func (s *Store) key(k string) string { return s.prefix + "{" + k + "}" }

// claimScript: KEYS[1] record; ARGV fingerprint, owner, now, lease_until,
// expires_at, ttl_ms (all times in Unix ms).
var claimScript = redis.NewScript(`
local r = redis.call('HMGET', KEYS[1], 'fp', 'state', 'lease', 'exp', 'status', 'hdr', 'body', 'omit')
local now = tonumber(ARGV[3])
if r[1] == false or tonumber(r[4]) <= now then
  if r[1] ~= false then redis.call('DEL', KEYS[1]) end
  redis.call('HSET', KEYS[1], 'fp', ARGV[1], 'state', 'in_flight', 'owner', ARGV[2],
    'lease', ARGV[4], 'exp', ARGV[5], 'created', ARGV[3])
  redis.call('PEXPIRE', KEYS[1], ARGV[6])
  return {'claimed'}
end
if r[1] ~= ARGV[1] then return {'mismatch'} end
if r[2] == 'completed' then return {'completed', r[5], r[6], r[7], r[8]} end
if tonumber(r[3]) > now then return {'in_flight', r[3]} end
redis.call('HSET', KEYS[1], 'owner', ARGV[2], 'lease', ARGV[4])
return {'took_over'}
`)

// completeScript: KEYS[1]; ARGV owner, status, headers, body, omit,
// expires_at, ttl_ms.
var completeScript = redis.NewScript(`
local r = redis.call('HMGET', KEYS[1], 'state', 'owner')
if r[1] ~= 'in_flight' or r[2] ~= ARGV[1] then
  return 0
end
redis.call('HSET', KEYS[1], 'state', 'completed', 'status', ARGV[2], 'hdr', ARGV[3], 'body', ARGV[4],
  'omit', ARGV[5], 'exp', ARGV[6])
redis.call('HDEL', KEYS[1], 'owner', 'lease')
redis.call('PEXPIRE', KEYS[1], ARGV[7])
return 1
`)

// releaseScript: KEYS[1]; ARGV owner.
var releaseScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'state') ~= 'in_flight' or redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then
  return 0
end
return redis.call('DEL', KEYS[1])
`)

// renewScript: KEYS[1]; ARGV owner, now, lease_until, lease_ms. The
// record's expiry moves to the lease end when that is later.
var renewScript = redis.NewScript(`
local r = redis.call('HMGET', KEYS[1], 'state', 'owner', 'exp')
if r[1] ~= 'in_flight' or r[2] ~= ARGV[1] or tonumber(r[3]) <= tonumber(ARGV[2]) then
  return 0
end
redis.call('HSET', KEYS[1], 'lease', ARGV[3])
if tonumber(r[3]) < tonumber(ARGV[3]) then
  redis.call('HSET', KEYS[1], 'exp', ARGV[3])
  redis.call('PEXPIRE', KEYS[1], ARGV[4])
end
return 1
`)

// Claim implements idempotency.Store in one round trip.
func (s *Store) Claim(ctx context.Context, req idempotency.ClaimRequest) (idempotency.ClaimResult, error) {
	now := req.Now.UnixMilli()
	v, err := claimScript.Run(ctx, s.rdb, []string{s.key(req.Key)},
		req.Fingerprint, req.Owner, now, req.Now.Add(req.LockTimeout).UnixMilli(),
		req.Now.Add(req.TTL).UnixMilli(), ttlMillis(req.TTL)).Slice()
	if err != nil {
		return idempotency.ClaimResult{}, fmt.Errorf("redisstore: claim: %w", err)
	}
	if len(v) == 0 {
		return idempotency.ClaimResult{}, errors.New("redisstore: claim: empty reply")
	}
	switch v[0] {
	case "claimed":
		return idempotency.ClaimResult{Status: idempotency.Claimed}, nil
	case "took_over":
		return idempotency.ClaimResult{Status: idempotency.Claimed, TookOver: true}, nil
	case "mismatch":
		return idempotency.ClaimResult{Status: idempotency.Mismatch}, nil
	case "in_flight":
		if len(v) == 2 {
			if ms, err := strconv.ParseInt(str(v[1]), 10, 64); err == nil {
				return idempotency.ClaimResult{Status: idempotency.InFlight, LeaseExpiresAt: time.UnixMilli(ms)}, nil
			}
		}
	case "completed":
		if len(v) == 5 {
			rec, err := s.decodeRecord(str(v[1]), str(v[2]), str(v[3]), str(v[4]))
			if err != nil {
				return idempotency.ClaimResult{}, err
			}
			return idempotency.ClaimResult{Status: idempotency.Completed, Record: &rec}, nil
		}
	}
	return idempotency.ClaimResult{}, fmt.Errorf("redisstore: claim: unexpected reply %v", v)
}

func str(v any) string {
	s, _ := v.(string)
	return s
}

func (s *Store) decodeRecord(status, hdr, body, omit string) (idempotency.Record, error) {
	code, err := strconv.Atoi(status)
	if err != nil {
		return idempotency.Record{}, fmt.Errorf("redisstore: bad status %q", status)
	}
	rec := idempotency.Record{StatusCode: code, BodyOmitted: omit == "1"}
	if hdr != "" {
		if rec.Header, err = s.headers.Decode(hdr); err != nil {
			return rec, fmt.Errorf("redisstore: decode headers: %w", err)
		}
	}
	if rec.Header == nil {
		rec.Header = http.Header{}
	}
	if !rec.BodyOmitted && body != "" {
		rec.Body = []byte(body)
	}
	return rec, nil
}

func ttlMillis(d time.Duration) int64 { return max(d.Milliseconds(), 1) }

// Complete implements idempotency.Store in one round trip.
func (s *Store) Complete(ctx context.Context, req idempotency.CompleteRequest) (bool, error) {
	var hdr []byte
	if len(req.Record.Header) > 0 {
		var err error
		if hdr, err = json.Marshal(req.Record.Header); err != nil {
			return false, fmt.Errorf("redisstore: encode headers: %w", err)
		}
	}
	body, omit := req.Record.Body, "0"
	if req.Record.BodyOmitted {
		body, omit = nil, "1"
	}
	n, err := completeScript.Run(ctx, s.rdb, []string{s.key(req.Key)},
		req.Owner, req.Record.StatusCode, hdr, body, omit,
		req.Now.Add(req.TTL).UnixMilli(), ttlMillis(req.TTL)).Int()
	if err != nil {
		return false, fmt.Errorf("redisstore: complete: %w", err)
	}
	return n == 1, nil
}

// Release implements idempotency.Store in one round trip.
func (s *Store) Release(ctx context.Context, key, owner string) (bool, error) {
	n, err := releaseScript.Run(ctx, s.rdb, []string{s.key(key)}, owner).Int()
	if err != nil {
		return false, fmt.Errorf("redisstore: release: %w", err)
	}
	return n == 1, nil
}

// Renew implements idempotency.Store in one round trip.
func (s *Store) Renew(ctx context.Context, req idempotency.RenewRequest) (bool, error) {
	n, err := renewScript.Run(ctx, s.rdb, []string{s.key(req.Key)}, req.Owner, req.Now.UnixMilli(),
		req.Now.Add(req.LockTimeout).UnixMilli(), ttlMillis(req.LockTimeout)).Int()
	if err != nil {
		return false, fmt.Errorf("redisstore: renew: %w", err)
	}
	return n == 1, nil
}

// Stats implements idempotency.StatsReader by scanning the prefix (on a
// cluster, every master). It costs O(records): meant for admin status
// pages and the periodic gauge refresh, not for the request path.
func (s *Store) Stats(ctx context.Context, now time.Time) (idempotency.Stats, error) {
	var st idempotency.Stats
	ms := now.UnixMilli()
	scan := func(ctx context.Context, c redis.Cmdable) (idempotency.Stats, error) {
		var part idempotency.Stats
		iter := c.Scan(ctx, 0, globEscape(s.prefix)+"{*", 500).Iterator()
		var batch []string
		flush := func() error {
			if len(batch) == 0 {
				return nil
			}
			cmds, err := c.Pipelined(ctx, func(p redis.Pipeliner) error {
				for _, k := range batch {
					p.HMGet(ctx, k, "state", "lease", "exp")
				}
				return nil
			})
			if err != nil && !errors.Is(err, redis.Nil) {
				return err
			}
			for _, cmd := range cmds {
				vals := cmd.(*redis.SliceCmd).Val()
				if len(vals) != 3 || vals[2] == nil {
					continue
				}
				exp, _ := strconv.ParseInt(str(vals[2]), 10, 64)
				if exp <= ms {
					continue
				}
				part.Keys++
				lease, _ := strconv.ParseInt(str(vals[1]), 10, 64)
				if str(vals[0]) == "in_flight" && lease > ms {
					part.InFlight++
				}
			}
			batch = batch[:0]
			return nil
		}
		for iter.Next(ctx) {
			batch = append(batch, iter.Val())
			if len(batch) == 500 {
				if err := flush(); err != nil {
					return part, err
				}
			}
		}
		if err := iter.Err(); err != nil {
			return part, err
		}
		return part, flush()
	}
	if cc, ok := s.rdb.(*redis.ClusterClient); ok {
		var mu = make(chan struct{}, 1)
		err := cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error {
			part, err := scan(ctx, c)
			mu <- struct{}{}
			st.Keys += part.Keys
			st.InFlight += part.InFlight
			<-mu
			return err
		})
		if err != nil {
			return st, fmt.Errorf("redisstore: stats: %w", err)
		}
		return st, nil
	}
	part, err := scan(ctx, s.rdb)
	if err != nil {
		return st, fmt.Errorf("redisstore: stats: %w", err)
	}
	return part, nil
}

// globEscape escapes the SCAN MATCH metacharacters of s.
func globEscape(s string) string {
	var b strings.Builder
	for _, c := range s {
		switch c {
		case '*', '?', '[', ']', '\\':
			b.WriteByte('\\')
		}
		b.WriteRune(c)
	}
	return b.String()
}
