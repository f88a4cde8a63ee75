// Package redisstore is the Redis flags.Store, for any
// redis.UniversalClient (single node, Sentinel, Cluster).
//
// Keys (all under one prefix, default "hardening:"; all share the hash tag
// {flags}, so the toggle script runs on Redis Cluster):
//
//	<prefix>{flags}:state    hash  "<flag>|<tenant>" -> "0" / "1" (tenant empty = global)
//	<prefix>{flags}:version  string, incremented by every toggle
//	<prefix>{flags}:audit    list, one record per toggle, appended only; a record's ID is its 1-based position
//
// Flag state is small, global configuration, not per-tenant data, so one
// hash tag for the flag namespace keeps every toggle a single-slot script
// without concentrating tenant data on one node.
//
// A toggle is one Lua script: read the old value, write the new one, append
// the audit record, bump the version and PUBLISH the flag's name on
// <prefix>flags:changed. The store implements flags.Notifier on that
// channel, so every replica's client reloads at once.
package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/systembuilderhub/hardening/flags"
)

// DefaultPrefix is the key and channel prefix when WithPrefix is not given.
const DefaultPrefix = "hardening:"

// Store is the Redis flags.Store; it also implements flags.Notifier.
type Store struct {
	rdb                            redis.UniversalClient
	stateKey, versionKey, auditKey string
	channel                        string
}

var (
	_ flags.Store    = (*Store)(nil)
	_ flags.Notifier = (*Store)(nil)
)

type config struct{ prefix string }

// Option configures New, the package's only constructor: an interface with
// an unexported method, as every option of the kit. A nil option is
// ignored; New reports invalid values.
type Option interface{ apply(*config) }

type optionFunc func(*config)

func (f optionFunc) apply(c *config) { f(c) }

// WithPrefix sets the prefix of every key and of the change channel
// (default DefaultPrefix). Replicas that share flags must use the same one.
// A prefix with '{' or '}' is an error: it would change the keys' hash tag.
func WithPrefix(p string) Option { return optionFunc(func(c *config) { c.prefix = p }) }

// New returns a store on rdb.
func New(rdb redis.UniversalClient, opts ...Option) (*Store, error) {
	if rdb == nil {
		return nil, errors.New("flags/redisstore: nil client")
	}
	cfg := config{prefix: DefaultPrefix}
	for _, o := range opts {
		if o != nil {
			o.apply(&cfg)
		}
	}
	p := cfg.prefix
	if strings.ContainsAny(p, "{}") {
		return nil, fmt.Errorf("flags/redisstore: prefix %q has a brace: it would change the keys' {flags} hash tag", p)
	}
	return &Store{
		rdb:        rdb,
		stateKey:   p + "{flags}:state",
		versionKey: p + "{flags}:version",
		auditKey:   p + "{flags}:audit",
		channel:    p + "flags:changed",
	}, nil
}

// Channel returns the pub/sub channel toggles are published on.
func (s *Store) Channel() string { return s.channel }

// toggleScript: KEYS state, version, audit; ARGV field, value ("0"/"1"),
// record body (JSON), channel, flag. Returns {old ("" = none), id, version}.
var toggleScript = redis.NewScript(`
local old = redis.call('HGET', KEYS[1], ARGV[1])
if not old then old = '' end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
local ver = redis.call('INCR', KEYS[2])
local mark = old
if mark == '' then mark = '-' end
local id = redis.call('RPUSH', KEYS[3], mark .. ARGV[3])
redis.call('PUBLISH', ARGV[4], ARGV[5])
return {old, id, ver}
`)

// body is the JSON part of a stored audit record.
type body struct {
	Flag   string `json:"f"`
	Tenant string `json:"t,omitempty"`
	New    bool   `json:"n"`
	By     string `json:"b"`
	At     int64  `json:"at"`
	Reason string `json:"r,omitempty"`
}

func field(flag, tenant string) string { return flag + "|" + tenant }

func bit(v bool) string {
	if v {
		return "1"
	}
	return "0"
}

// Toggle implements flags.Store with one Lua script.
func (s *Store) Toggle(ctx context.Context, req flags.ToggleRequest) (flags.Record, error) {
	at := req.At.UnixMilli()
	b, err := json.Marshal(body{Flag: req.Flag, Tenant: req.TenantID, New: req.Value, By: req.By, At: at, Reason: req.Reason})
	if err != nil {
		return flags.Record{}, fmt.Errorf("flags/redisstore: toggle: %w", err)
	}
	res, err := toggleScript.Run(ctx, s.rdb,
		[]string{s.stateKey, s.versionKey, s.auditKey},
		field(req.Flag, req.TenantID), bit(req.Value), string(b), s.channel, req.Flag).Slice()
	if err != nil {
		return flags.Record{}, fmt.Errorf("flags/redisstore: toggle: %w", err)
	}
	if len(res) != 3 {
		return flags.Record{}, fmt.Errorf("flags/redisstore: toggle: unexpected reply %v", res)
	}
	old, _ := res[0].(string)
	id, _ := res[1].(int64)
	rec := flags.Record{
		ID:        id,
		Flag:      req.Flag,
		TenantID:  req.TenantID,
		NewValue:  req.Value,
		ChangedBy: req.By,
		ChangedAt: time.UnixMilli(at).UTC(),
		Reason:    req.Reason,
	}
	if old != "" {
		v := old == "1"
		rec.OldValue = &v
	}
	return rec, nil
}

// Version implements flags.Store: one GET.
func (s *Store) Version(ctx context.Context) (int64, error) {
	v, err := s.rdb.Get(ctx, s.versionKey).Int64()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("flags/redisstore: version: %w", err)
	}
	return v, nil
}

// Load implements flags.Store: version and values in one MULTI/EXEC on
// one slot, so they are consistent.
func (s *Store) Load(ctx context.Context) (flags.State, error) {
	var ver *redis.StringCmd
	var all *redis.MapStringStringCmd
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		ver = p.Get(ctx, s.versionKey)
		all = p.HGetAll(ctx, s.stateKey)
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return flags.State{}, fmt.Errorf("flags/redisstore: load: %w", err)
	}
	var st flags.State
	if v, err := ver.Int64(); err == nil {
		st.Version = v
	} else if !errors.Is(err, redis.Nil) {
		return flags.State{}, fmt.Errorf("flags/redisstore: load: %w", err)
	}
	for f, v := range all.Val() {
		name, tenant, ok := strings.Cut(f, "|")
		if !ok {
			continue
		}
		st.Values = append(st.Values, flags.Value{Flag: name, TenantID: tenant, Value: v == "1"})
	}
	return st, nil
}

// auditBatch is how many records one LRANGE reads while scanning.
const auditBatch = 256

// Audit implements flags.Store. Records are read newest first in batches
// from the list and filtered here; a page costs at most
// ceil(scanned/256) round trips.
func (s *Store) Audit(ctx context.Context, q flags.AuditQuery) (flags.AuditPage, error) {
	before, err := q.Normalize()
	if err != nil {
		return flags.AuditPage{}, err
	}
	n, err := s.rdb.LLen(ctx, s.auditKey).Result()
	if err != nil {
		return flags.AuditPage{}, fmt.Errorf("flags/redisstore: audit: %w", err)
	}
	hi := n - 1 // index of the newest record to consider; ID = index+1
	if before > 0 && before-2 < hi {
		hi = before - 2
	}
	var page flags.AuditPage
	for hi >= 0 {
		lo := max(hi-auditBatch+1, 0)
		items, err := s.rdb.LRange(ctx, s.auditKey, lo, hi).Result()
		if err != nil {
			return flags.AuditPage{}, fmt.Errorf("flags/redisstore: audit: %w", err)
		}
		for i := len(items) - 1; i >= 0; i-- {
			r, err := decode(lo+int64(i)+1, items[i])
			if err != nil {
				return flags.AuditPage{}, err
			}
			if !q.Match(&r) {
				continue
			}
			if len(page.Entries) == q.Limit {
				page.NextCursor = flags.EncodeCursor(page.Entries[q.Limit-1].ID)
				return page, nil
			}
			page.Entries = append(page.Entries, r)
		}
		hi = lo - 1
	}
	return page, nil
}

func decode(id int64, item string) (flags.Record, error) {
	if len(item) < 2 {
		return flags.Record{}, fmt.Errorf("flags/redisstore: audit record %d is malformed", id)
	}
	var b body
	if err := json.Unmarshal([]byte(item[1:]), &b); err != nil {
		return flags.Record{}, fmt.Errorf("flags/redisstore: audit record %d: %w", id, err)
	}
	r := flags.Record{
		ID:        id,
		Flag:      b.Flag,
		TenantID:  b.Tenant,
		NewValue:  b.New,
		ChangedBy: b.By,
		ChangedAt: time.UnixMilli(b.At).UTC(),
		Reason:    b.Reason,
	}
	switch item[0] {
	case '0', '1':
		v := item[0] == '1'
		r.OldValue = &v
	case '-':
	default:
		return flags.Record{}, fmt.Errorf("flags/redisstore: audit record %d is malformed", id)
	}
	return r, nil
}

// Subscribe implements flags.Notifier: it calls fn with the flag's name for
// every toggle published on the change channel, by any replica, until ctx
// is done.
func (s *Store) Subscribe(ctx context.Context, fn func(flag string)) error {
	ps := s.rdb.Subscribe(ctx, s.channel)
	defer ps.Close()
	if _, err := ps.Receive(ctx); err != nil {
		return fmt.Errorf("flags/redisstore: subscribe %s: %w", s.channel, err)
	}
	ch := ps.Channel()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case m, ok := <-ch:
			if !ok {
				return errors.New("flags/redisstore: subscription closed")
			}
			fn(m.Payload)
		}
	}
}
