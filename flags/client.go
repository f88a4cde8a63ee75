package flags

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/systembuilderhub/hardening"
	"github.com/systembuilderhub/hardening/internal/background"
)

// Source says where an evaluated value came from.
type Source uint8

// Sources of an evaluation, in order of precedence.
const (
	// SourceOverride: the tenant's override.
	SourceOverride Source = iota
	// SourceGlobal: the flag's global value.
	SourceGlobal
	// SourceDefault: the default the flag was registered with.
	SourceDefault
	// SourceUnknown: the flag is not registered; the caller's default.
	SourceUnknown
	// SourceStale: the store has been unreachable for longer than the
	// maximum staleness; the registered default.
	SourceStale
	numSources
)

// String returns the source's name, as used in the
// hardening_flags_evaluations_total result label.
func (s Source) String() string {
	switch s {
	case SourceOverride:
		return "override"
	case SourceGlobal:
		return "global"
	case SourceDefault:
		return "default"
	case SourceUnknown:
		return "unknown"
	case SourceStale:
		return "stale"
	}
	return "invalid"
}

// MarshalText encodes s as its name (String), so a Source is "override",
// "global", "default", "unknown" or "stale" in JSON. An out-of-range value
// is an error.
func (s Source) MarshalText() ([]byte, error) {
	if s >= numSources {
		return nil, fmt.Errorf("flags: invalid source %d", uint8(s))
	}
	return []byte(s.String()), nil
}

// UnmarshalText is MarshalText's inverse; an unknown name is an error.
func (s *Source) UnmarshalText(b []byte) error {
	for v := range numSources {
		if v.String() == string(b) {
			*s = v
			return nil
		}
	}
	return fmt.Errorf("flags: unknown source %q", b)
}

// Evaluation is the result of evaluating one flag.
type Evaluation struct {
	Value  bool
	Source Source
}

// Status is a registered flag with its effective value for one tenant.
type Status struct {
	Flag
	// Value is the effective value and Source where it came from.
	Value  bool
	Source Source
}

// Client evaluates registered flags from an in-process cache and changes
// them through a Store. It is safe for concurrent use. Create it with New,
// register flags, call Start to load the cache and keep it fresh, and Close
// when done.
type Client struct {
	store Store
	cfg   config
	m     *metrics

	view    atomic.Pointer[view]
	unknown atomic.Uint64

	mu       sync.Mutex // guards defs, state, loaded, lastOK
	defs     map[string]Flag
	order    []string // registration order: view.list and Handle index it
	state    State
	loaded   bool
	lastOK   time.Time
	failing  bool       // the last refresh failed (logged once per outage)
	syncMu   sync.Mutex // serializes refreshes
	hooksMu  sync.RWMutex
	hookID   int
	onChange map[int]func(Record)
	onUpdate map[int]func([]string)

	lifeMu  sync.Mutex // guards started and closed
	started bool
	closed  bool
	bg      background.Loop
}

// view is the immutable cache the hot path reads.
type view struct {
	flags map[string]*entry
	list  []*entry // in registration order
	stale bool
}

type entry struct {
	def       Flag
	hasGlobal bool
	global    bool
	tenants   map[string]bool
}

// New returns a client on store. It does no I/O: until Start, flags
// evaluate to their registered defaults.
func New(store Store, opts ...Option) (*Client, error) {
	if store == nil {
		return nil, errors.New("flags: nil store")
	}
	cfg, err := newConfig(opts)
	if err != nil {
		return nil, err
	}
	m, err := newMetrics(cfg.reg)
	if err != nil {
		return nil, fmt.Errorf("flags: metrics: %w", err)
	}
	c := &Client{
		store:    store,
		cfg:      cfg,
		m:        m,
		defs:     make(map[string]Flag),
		onChange: make(map[int]func(Record)),
		onUpdate: make(map[int]func([]string)),
	}
	c.view.Store(&view{flags: map[string]*entry{}})
	if err := c.Register(cfg.flags...); err != nil {
		return nil, err
	}
	return c, nil
}

// Register adds flags. A name that is invalid or already registered is an
// error and registers none of flags.
func (c *Client) Register(flags ...Flag) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	seen := make(map[string]bool, len(flags))
	for _, f := range flags {
		if err := ValidateName(f.Name); err != nil {
			return err
		}
		if _, dup := c.defs[f.Name]; dup || seen[f.Name] {
			return fmt.Errorf("%w: %q", ErrDuplicateFlag, f.Name)
		}
		seen[f.Name] = true
	}
	for _, f := range flags {
		c.defs[f.Name] = f
		c.order = append(c.order, f.Name)
	}
	if len(flags) > 0 {
		c.view.Store(c.buildLocked(c.view.Load().stale))
	}
	return nil
}

// buildLocked builds a view from defs and state; c.mu must be held.
func (c *Client) buildLocked(stale bool) *view {
	v := &view{flags: make(map[string]*entry, len(c.defs)), list: make([]*entry, len(c.order)), stale: stale}
	for i, name := range c.order {
		e := &entry{def: c.defs[name]}
		v.flags[name] = e
		v.list[i] = e
	}
	if stale {
		return v
	}
	for _, val := range c.state.Values {
		e, ok := v.flags[val.Flag]
		if !ok {
			continue // stored but not registered here: ignored
		}
		if val.TenantID == "" {
			e.hasGlobal, e.global = true, val.Value
			continue
		}
		if e.tenants == nil {
			e.tenants = make(map[string]bool)
		}
		e.tenants[val.TenantID] = val.Value
	}
	return v
}

// Evaluate returns the value of flag name for tenantID (empty: no tenant,
// so no override applies) and where it came from. An unregistered flag
// returns def with SourceUnknown. It reads only the in-process cache and
// does not allocate.
func (c *Client) Evaluate(name, tenantID string, def bool) Evaluation {
	v := c.view.Load()
	e, ok := v.flags[name]
	var ev Evaluation
	switch {
	case !ok:
		ev = Evaluation{def, SourceUnknown}
		c.unknown.Add(1)
		if c.m != nil {
			c.m.unknown.Inc()
		}
	case v.stale:
		ev = Evaluation{e.def.Default, SourceStale}
	default:
		ev = e.eval(tenantID)
	}
	if c.m != nil {
		c.m.evals[ev.Source].Inc()
	}
	return ev
}

func (e *entry) eval(tenantID string) Evaluation {
	if tenantID != "" && e.tenants != nil {
		if val, ok := e.tenants[tenantID]; ok {
			return Evaluation{val, SourceOverride}
		}
	}
	if e.hasGlobal {
		return Evaluation{e.global, SourceGlobal}
	}
	return Evaluation{e.def.Default, SourceDefault}
}

// Handle is a registered flag bound to its client: evaluating through it
// skips the lookup by name (one map lookup for the tenant instead of two).
// Obtain it once, at startup, with Client.Handle. The zero Handle is not
// usable.
type Handle struct {
	c   *Client
	idx int
}

// Handle returns a handle on the registered flag name, or an error
// wrapping ErrUnknownFlag.
func (c *Client) Handle(name string) (Handle, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, n := range c.order {
		if n == name {
			return Handle{c: c, idx: i}, nil
		}
	}
	return Handle{}, fmt.Errorf("%w: %q", ErrUnknownFlag, name)
}

// Evaluate is Client.Evaluate for the handle's flag (never SourceUnknown).
func (h Handle) Evaluate(tenantID string) Evaluation {
	v := h.c.view.Load()
	e := v.list[h.idx]
	var ev Evaluation
	if v.stale {
		ev = Evaluation{e.def.Default, SourceStale}
	} else {
		ev = e.eval(tenantID)
	}
	if h.c.m != nil {
		h.c.m.evals[ev.Source].Inc()
	}
	return ev
}

// Enabled is Evaluate's value.
func (h Handle) Enabled(tenantID string) bool { return h.Evaluate(tenantID).Value }

// Name returns the handle's flag name.
func (h Handle) Name() string { return h.c.view.Load().list[h.idx].def.Name }

// Enabled is Evaluate's value.
func (c *Client) Enabled(name, tenantID string, def bool) bool {
	return c.Evaluate(name, tenantID, def).Value
}

// Stale reports whether the cache has given up on stored values because
// the store has been unreachable for longer than the maximum staleness
// (flags then evaluate to their registered defaults).
func (c *Client) Stale() bool { return c.view.Load().stale }

// Unknown returns how many evaluations named an unregistered flag.
func (c *Client) Unknown() uint64 { return c.unknown.Load() }

// Lookup returns the registered flag called name.
func (c *Client) Lookup(name string) (Flag, bool) {
	e, ok := c.view.Load().flags[name]
	if !ok {
		return Flag{}, false
	}
	return e.def, true
}

// List returns every registered flag with its effective value for
// tenantID, sorted by name. It does not count as evaluations.
func (c *Client) List(tenantID string) []Status {
	v := c.view.Load()
	out := make([]Status, 0, len(v.flags))
	for _, e := range v.flags {
		s := Status{Flag: e.def}
		if v.stale {
			s.Value, s.Source = e.def.Default, SourceStale
		} else {
			ev := e.eval(tenantID)
			s.Value, s.Source = ev.Value, ev.Source
		}
		out = append(out, s)
	}
	slices.SortFunc(out, func(a, b Status) int {
		if a.Name < b.Name {
			return -1
		}
		if a.Name > b.Name {
			return 1
		}
		return 0
	})
	return out
}

// Toggle sets flag name to value for ch.TenantID (empty: the global value)
// and appends the audit record, atomically, then refreshes this client's
// cache and calls the OnChange hooks. A toggle to the current value is
// recorded too. Errors wrap ErrInvalidName (a malformed name),
// ErrUnknownFlag (an unregistered flag), ErrInvalidChange (a bad Change) or
// ErrUnavailable (the store failed; its error is wrapped too); each is a
// hardening.Error, so hardening.WriteError answers it with its status.
func (c *Client) Toggle(ctx context.Context, name string, value bool, ch Change) (Record, error) {
	if err := ValidateName(name); err != nil {
		return Record{}, err
	}
	c.mu.Lock()
	_, known := c.defs[name]
	c.mu.Unlock()
	if !known {
		return Record{}, fmt.Errorf("%w: %q", ErrUnknownFlag, name)
	}
	if ch.By == "" {
		if caller, ok := hardening.CallerFrom(ctx); ok {
			ch.By = caller.Subject // who changes it: the caller, by default
		}
	}
	if err := ch.validate(); err != nil {
		return Record{}, err
	}
	rec, err := c.store.Toggle(ctx, ToggleRequest{
		Flag:     name,
		TenantID: ch.TenantID,
		Value:    value,
		By:       ch.By,
		Reason:   ch.Reason,
		At:       c.cfg.now().UTC().Truncate(time.Millisecond),
	})
	if err != nil {
		return Record{}, unavailable(fmt.Sprintf("toggle %q", name), err)
	}
	if c.m != nil {
		c.m.changes.WithLabelValues(name).Inc()
	}
	c.cfg.log.LogAttrs(ctx, slog.LevelInfo, "flag toggled",
		slog.String("flag", rec.Flag),
		slog.String("tenant_id", rec.TenantID),
		slog.Any("old_value", rec.OldValue),
		slog.Bool("new_value", rec.NewValue),
		slog.String("changed_by", rec.ChangedBy),
		slog.String("reason", rec.Reason),
		slog.Int64("audit_id", rec.ID))
	// Read-your-writes: a failure here is logged by Refresh; the poll
	// retries.
	_ = c.Refresh(ctx)
	c.hooksMu.RLock()
	hooks := slices.Collect(maps.Values(c.onChange))
	c.hooksMu.RUnlock()
	for _, h := range hooks {
		c.callHook(func() { h(rec) })
	}
	return rec, nil
}

// Audit returns one page of audit records matching q, newest first.
// Errors wrap ErrInvalidName, ErrInvalidChange or ErrInvalidCursor (a bad
// query) or ErrUnavailable (the store failed), each a hardening.Error.
func (c *Client) Audit(ctx context.Context, q AuditQuery) (AuditPage, error) {
	if q.Flag != "" {
		if err := ValidateName(q.Flag); err != nil {
			return AuditPage{}, err
		}
	}
	if !validText(q.TenantID, MaxTenantIDLen) || !validText(q.ChangedBy, MaxActorLen) {
		return AuditPage{}, fmt.Errorf("%w: bad tenant or actor filter", ErrInvalidChange)
	}
	if _, err := q.Normalize(); err != nil {
		return AuditPage{}, err
	}
	page, err := c.store.Audit(ctx, q)
	if err != nil {
		return AuditPage{}, unavailable("audit", err)
	}
	return page, nil
}

// OnChange calls fn with the audit record of every toggle made through this
// client, after it is stored, in the toggling goroutine. Use it to forward
// records to a webhook or a SIEM (do slow work asynchronously). A panic in
// fn is recovered and logged. The returned func removes fn.
func (c *Client) OnChange(fn func(Record)) (remove func()) {
	c.hooksMu.Lock()
	defer c.hooksMu.Unlock()
	c.hookID++
	id := c.hookID
	c.onChange[id] = fn
	return func() {
		c.hooksMu.Lock()
		delete(c.onChange, id)
		c.hooksMu.Unlock()
	}
}

// OnUpdate calls fn with the names of the registered flags whose cached
// values changed, after the cache has changed, whichever replica made the
// change (and when the cache turns stale or fresh again). fn runs in the
// refreshing goroutine and must not block. The returned func removes fn.
func (c *Client) OnUpdate(fn func(flags []string)) (remove func()) {
	c.hooksMu.Lock()
	defer c.hooksMu.Unlock()
	c.hookID++
	id := c.hookID
	c.onUpdate[id] = fn
	return func() {
		c.hooksMu.Lock()
		delete(c.onUpdate, id)
		c.hooksMu.Unlock()
	}
}

func (c *Client) callHook(fn func()) {
	defer func() {
		if p := recover(); p != nil {
			c.cfg.log.Error("flags: hook panicked", slog.Any("panic", p))
		}
	}()
	fn()
}

// Refresh brings the cache up to date now: it checks the store's version
// and reloads the values when it changed. A store failure is an error
// wrapping ErrUnavailable and the store's error. The background loop started by
// Start calls it every poll interval and on each change notification.
func (c *Client) Refresh(ctx context.Context) error {
	c.syncMu.Lock()
	defer c.syncMu.Unlock()
	ver, err := c.store.Version(ctx)
	if err == nil {
		c.mu.Lock()
		current := c.loaded && ver == c.state.Version
		c.mu.Unlock()
		if current {
			c.markFresh(nil)
			return nil
		}
		var st State
		if st, err = c.store.Load(ctx); err == nil {
			c.markFresh(&st)
			return nil
		}
	}
	c.markFailed(err)
	return unavailable("refresh", err)
}

// markFresh records a successful sync, installing st when not nil.
func (c *Client) markFresh(st *State) {
	c.mu.Lock()
	old := c.view.Load()
	c.lastOK = c.cfg.now()
	if c.failing {
		c.failing = false
		c.cfg.log.Info("flags: store reachable again; flag cache refreshed")
	}
	if st == nil && !old.stale {
		c.mu.Unlock()
		return
	}
	if st != nil {
		c.state, c.loaded = *st, true
	}
	nv := c.buildLocked(false)
	c.view.Store(nv)
	c.mu.Unlock()
	c.fireUpdate(diff(old, nv))
}

func (c *Client) markFailed(err error) {
	if c.m != nil {
		c.m.refreshErrors.Inc()
	}
	c.mu.Lock()
	old := c.view.Load()
	age := c.cfg.now().Sub(c.lastOK)
	first := !c.failing
	c.failing = true
	if !c.loaded || old.stale || age <= c.cfg.maxStaleness {
		c.mu.Unlock()
		if first { // once per outage, not every poll
			c.cfg.log.Warn("flags: cannot refresh the flag cache; serving cached values", slog.Any("error", err),
				slog.Duration("max_staleness", c.cfg.maxStaleness))
		}
		return
	}
	nv := c.buildLocked(true)
	c.view.Store(nv)
	c.mu.Unlock()
	c.cfg.log.Error("flags: store unreachable beyond the maximum staleness; serving registered defaults",
		slog.Any("error", err), slog.Duration("max_staleness", c.cfg.maxStaleness))
	c.fireUpdate(diff(old, nv))
}

func (c *Client) fireUpdate(changed []string) {
	if len(changed) == 0 {
		return
	}
	c.hooksMu.RLock()
	hooks := slices.Collect(maps.Values(c.onUpdate))
	c.hooksMu.RUnlock()
	for _, h := range hooks {
		c.callHook(func() { h(slices.Clone(changed)) })
	}
}

// diff returns the sorted names of the flags of b whose values differ from a.
func diff(a, b *view) []string {
	var out []string
	for name, eb := range b.flags {
		ea, ok := a.flags[name]
		if !ok || a.stale != b.stale || ea.hasGlobal != eb.hasGlobal || ea.global != eb.global || !maps.Equal(ea.tenants, eb.tenants) {
			if ok && a.stale && b.stale {
				continue
			}
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// Start loads the cache from the store (an error if it cannot) and starts
// the goroutine that keeps it fresh until Close or until ctx is done.
// Calling Start twice is an error.
func (c *Client) Start(ctx context.Context) error {
	c.lifeMu.Lock()
	defer c.lifeMu.Unlock()
	if c.closed {
		return ErrClosed
	}
	if c.started {
		return errors.New("flags: client already started")
	}
	if err := c.Refresh(ctx); err != nil {
		return err
	}
	if err := c.bg.Start(ctx, c.loop); err != nil {
		return err
	}
	c.started = true
	return nil
}

func (c *Client) loop(ctx context.Context) {
	notify := make(chan struct{}, 1)
	var wg sync.WaitGroup
	if n, ok := c.store.(Notifier); ok {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.subscribe(ctx, n, notify)
		}()
	}
	defer wg.Wait()
	t := time.NewTicker(c.cfg.pollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-notify:
		}
		rctx, cancel := context.WithTimeout(ctx, max(c.cfg.pollInterval, 5*time.Second))
		_ = c.Refresh(rctx)
		cancel()
	}
}

// subscribe keeps a subscription to n open until ctx is done, retrying
// after a failure every poll interval, at most every second.
func (c *Client) subscribe(ctx context.Context, n Notifier, notify chan<- struct{}) {
	retry := min(c.cfg.pollInterval, time.Second)
	for {
		err := n.Subscribe(ctx, func(string) {
			select {
			case notify <- struct{}{}:
			default: // a refresh is already pending
			}
		})
		if ctx.Err() != nil {
			return
		}
		c.cfg.log.Warn("flags: change subscription failed; polling only until it is back", slog.Any("error", err))
		select {
		case <-ctx.Done():
			return
		case <-time.After(retry):
		}
		// Changes may have been missed while unsubscribed.
		select {
		case notify <- struct{}{}:
		default:
		}
	}
}

// Close stops the background refresh and waits for it (or for ctx). The
// cache keeps serving its last values. Close is idempotent.
func (c *Client) Close(ctx context.Context) error {
	c.lifeMu.Lock()
	if c.closed {
		c.lifeMu.Unlock()
		return nil
	}
	c.closed = true
	c.lifeMu.Unlock()
	return c.bg.Stop(ctx)
}
