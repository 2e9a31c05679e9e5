package tenant

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/evidentsec/evident/internal/auth"
	"github.com/evidentsec/evident/internal/pipeline"
	"github.com/evidentsec/evident/internal/store"
)

// unit is a tenant's unit that keeps what it is sent.
type unit struct {
	tenant           string
	started, stopped bool
	got              []string
}

func (u *unit) Start(context.Context) error    { u.started = true; return nil }
func (u *unit) Shutdown(context.Context) error { u.stopped = true; return nil }

func (u *unit) consumer() pipeline.Consumer[[]string] {
	return pipeline.ConsumerFunc[[]string](func(_ context.Context, d []string) error {
		u.got = append(u.got, d...)
		return nil
	})
}

// storedNone is the Stored of a store that holds no tenant's state.
func storedNone(context.Context, string) (bool, error) { return false, nil }

func newRegistry(t *testing.T, cfg Config, reg prometheus.Registerer) (*Registry[*unit], *time.Time) {
	t.Helper()
	r, err := New(cfg, func(_ context.Context, id string) (*unit, error) { return &unit{tenant: id}, nil }, storedNone, nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	r.now = func() time.Time { return now }
	return r, &now
}

func route(r *Registry[*unit]) pipeline.Consumer[[]string] {
	return Route(r, (*unit).consumer, func(d []string) int { return len(d) })
}

func in(tenant string) context.Context { return auth.WithTenant(context.Background(), tenant) }

func TestRouteKeepsTenantsApart(t *testing.T) {
	r, _ := newRegistry(t, DefaultConfig(), nil)
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	c := route(r)
	for _, s := range []struct{ tenant, data string }{{"a", "a1"}, {"b", "b1"}, {"a", "a2"}, {store.DefaultTenant, "d1"}} {
		if err := c.Consume(in(s.tenant), []string{s.data}); err != nil {
			t.Fatal(err)
		}
	}
	// Without a guard's tenant, the default tenant's.
	if err := c.Consume(context.Background(), []string{"d2"}); err != nil {
		t.Fatal(err)
	}
	for tenant, want := range map[string][]string{"a": {"a1", "a2"}, "b": {"b1"}, store.DefaultTenant: {"d1", "d2"}} {
		u, err := r.Get(context.Background(), tenant)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(want, u.got); diff != "" || !u.started {
			t.Errorf("tenant %s got (-want +got):\n%s (started %v)", tenant, diff, u.started)
		}
	}
	if err := r.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	u, _ := r.Get(context.Background(), "a")
	if !u.stopped {
		t.Error("Shutdown did not stop tenant a")
	}
	if _, err := r.Get(context.Background(), "new"); err == nil {
		t.Error("Get of a new tenant after Shutdown succeeded")
	}
}

func TestMaxTenantsAndBadIDs(t *testing.T) {
	r, _ := newRegistry(t, Config{MaxTenants: 2}, nil)
	c := route(r)
	for _, id := range []string{"a", "b"} {
		if err := c.Consume(in(id), []string{"x"}); err != nil {
			t.Fatal(err)
		}
	}
	err := c.Consume(in("c"), []string{"x"})
	if !errors.Is(err, ErrTooManyTenants) || !pipeline.IsPermanent(err) {
		t.Errorf("third tenant = %v, want a permanent ErrTooManyTenants", err)
	}
	if err := c.Consume(in("a"), []string{"y"}); err != nil {
		t.Errorf("known tenant after the limit: %v", err)
	}
	if _, err := r.Get(context.Background(), "../etc"); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("Get of a bad ID = %v, want ErrInvalid", err)
	}
}

func TestIngestRateAndBurst(t *testing.T) {
	reg := prometheus.NewRegistry()
	r, now := newRegistry(t, Config{MaxTenants: 10, IngestRate: 10, IngestBurst: 20}, reg)
	c := route(r)
	if err := c.Consume(in("a"), make([]string, 20)); err != nil {
		t.Fatalf("a burst-sized batch: %v", err)
	}
	// a's bucket is empty; b's is full.
	err := c.Consume(in("a"), make([]string, 5))
	var fe *pipeline.FullError
	if !errors.As(err, &fe) || fe.RetryAfter != 500*time.Millisecond {
		t.Fatalf("over the rate = %v, want a FullError retrying after 500ms", err)
	}
	if err := c.Consume(in("b"), make([]string, 20)); err != nil {
		t.Errorf("tenant b, within its own burst: %v", err)
	}
	*now = now.Add(500 * time.Millisecond)
	if err := c.Consume(in("a"), make([]string, 5)); err != nil {
		t.Errorf("after the wait FullError said: %v", err)
	}
	if err := c.Consume(in("a"), make([]string, 21)); err == nil || !pipeline.IsPermanent(err) {
		t.Errorf("a batch larger than the burst = %v, want a permanent refusal", err)
	}
	for _, m := range []struct {
		c      *prometheus.CounterVec
		tenant string
		want   float64
	}{{r.accepted, "a", 25}, {r.accepted, "b", 20}, {r.refused, "a", 26}, {r.refused, "b", 0}} {
		if got := testutil.ToFloat64(m.c.WithLabelValues(m.tenant)); got != m.want {
			t.Errorf("tenant %s: counter %v, want %v", m.tenant, got, m.want)
		}
	}
}

func TestConfigValidate(t *testing.T) {
	for _, tt := range []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"Default", DefaultConfig(), true},
		{"NoTenants", Config{}, false},
		{"NegativeRate", Config{MaxTenants: 1, IngestRate: -1}, false},
		{"RateWithoutBurst", Config{MaxTenants: 1, IngestRate: 5}, false},
		{"RateAndBurst", Config{MaxTenants: 1, IngestRate: 5, IngestBurst: 10}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.cfg.Validate(); (err == nil) != tt.ok {
				t.Errorf("Validate = %v, want ok %v", err, tt.ok)
			}
		})
	}
}

// TestLookupCreatesNothing: a read of a tenant without a unit builds one
// only when the store holds the tenant's state; reads of any number of
// unknown tenants take no place among MaxTenants, so a new tenant's
// ingest still gets one.
func TestLookupCreatesNothing(t *testing.T) {
	errStore := errors.New("store down")
	stored := func(_ context.Context, id string) (bool, error) {
		switch {
		case id == "broken":
			return false, errStore
		case strings.HasPrefix(id, "kept"):
			return true, nil
		}
		return false, nil
	}
	var built []string
	reg := prometheus.NewRegistry()
	r, err := New(Config{MaxTenants: 3}, func(_ context.Context, id string) (*unit, error) {
		built = append(built, id)
		return &unit{tenant: id}, nil
	}, stored, nil, reg)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := route(r).Consume(in("written"), []string{"w1"}); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, tenant string
		wantOK       bool
		wantErr      error
		wantBuilt    []string // the units the lookup built
	}{
		{"Default", store.DefaultTenant, true, nil, nil},
		{"InMemory", "written", true, nil, nil},
		{"Unknown1", "x1", false, nil, nil},
		{"Unknown2", "x2", false, nil, nil},
		{"Unknown3", "x3", false, nil, nil},
		{"Unknown4", "x4", false, nil, nil},
		{"UnknownAgain", "x1", false, nil, nil},
		{"BadID", "bad/tenant", false, store.ErrInvalid, nil},
		{"StoreFails", "broken", false, errStore, nil},
		{"Stored", "kept", true, nil, []string{"kept"}},
		{"StoredAgain", "kept", true, nil, nil},
		{"StoredBeyondMax", "kept-2", false, ErrTooManyTenants, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			built = built[:0]
			before := testutil.ToFloat64(r.tenants)
			u, ok, err := r.Lookup(context.Background(), tt.tenant)
			if ok != tt.wantOK || !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
				t.Fatalf("Lookup(%q) = ok %v, %v; want ok %v, %v", tt.tenant, ok, err, tt.wantOK, tt.wantErr)
			}
			if ok && (u.tenant != tt.tenant || !u.started) {
				t.Errorf("Lookup(%q) = unit of %q (started %v)", tt.tenant, u.tenant, u.started)
			}
			if diff := cmp.Diff(tt.wantBuilt, built, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("units built (-want +got):\n%s", diff)
			}
			if got, want := testutil.ToFloat64(r.tenants), before+float64(len(tt.wantBuilt)); got != want {
				t.Errorf("evident_tenants %v, want %v", got, want)
			}
		})
	}
	// Three units (default, written, kept): the reads of x1..x4 took
	// none, so a new tenant's write is refused only for the one that was
	// built from the store.
	if err := route(r).Consume(in("real"), []string{"r1"}); !errors.Is(err, ErrTooManyTenants) {
		t.Errorf("write of a fourth tenant = %v, want ErrTooManyTenants", err)
	}
}

// TestLookupLeavesRoomForWrites is the defect this package had: with
// max_tenants 3, four reads of unknown tenants, then a new tenant's
// ingest, which must be admitted.
func TestLookupLeavesRoomForWrites(t *testing.T) {
	r, _ := newRegistry(t, Config{MaxTenants: 3}, nil)
	if err := r.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"x1", "x2", "x3", "x4"} {
		if _, ok, err := r.Lookup(context.Background(), id); ok || err != nil {
			t.Fatalf("Lookup(%q) = ok %v, %v; want not ok, nil", id, ok, err)
		}
	}
	if err := route(r).Consume(in("team-real"), []string{"s1"}); err != nil {
		t.Fatalf("ingest of a new tenant after four reads: %v", err)
	}
	if u, ok, err := r.Lookup(context.Background(), "team-real"); !ok || err != nil || !cmp.Equal(u.got, []string{"s1"}) {
		t.Errorf("Lookup of the written tenant = %v, ok %v, %v; want its spans", u, ok, err)
	}
}

// TestUnits lists the units built, in tenant order, and no tenant that
// was only looked up.
func TestUnits(t *testing.T) {
	r, _ := newRegistry(t, DefaultConfig(), nil)
	for _, id := range []string{"b", "a"} {
		if _, err := r.Get(context.Background(), id); err != nil {
			t.Fatal(err)
		}
	}
	if _, ok, err := r.Lookup(context.Background(), "c"); ok || err != nil {
		t.Fatalf("Lookup of an unknown tenant = %v, %v; want nothing", ok, err)
	}
	got := map[string]string{}
	for id, u := range r.Units() {
		got[id] = u.tenant
	}
	if diff := cmp.Diff(got, map[string]string{"a": "a", "b": "b"}); diff != "" {
		t.Errorf("Units (-got +want):\n%s", diff)
	}
}
