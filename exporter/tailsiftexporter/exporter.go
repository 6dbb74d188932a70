package tailsiftexporter

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/collector/pdata/ptrace"
	"go.uber.org/zap"

	"github.com/tailsift/tailsift/exporter/tailsiftexporter/internal/metadata"
	"github.com/tailsift/tailsift/internal/clock"
	"github.com/tailsift/tailsift/internal/membership"
	"github.com/tailsift/tailsift/internal/ring"
)

// state is one member set: its ring and, in the ring's member order, the
// members. It is replaced whole when the set changes.
type state struct {
	ring    *ring.Ring
	members []*member
}

func (s *state) down(i int) bool { return s.members[i].down.Load() }

type tailsiftExporter struct {
	cfg       *Config
	set       exporter.Settings
	telemetry *metadata.TelemetryBuilder
	watcher   *membership.Watcher
	host      component.Host

	state     atomic.Pointer[state]
	changeMu  sync.Mutex     // serializes member set changes and Shutdown
	closed    bool           // guarded by changeMu
	retiring  sync.WaitGroup // shutdowns of members no longer in the set
	splitters sync.Pool
}

func newTailsiftExporter(set exporter.Settings, cfg *Config) (*tailsiftExporter, error) {
	tb, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, fmt.Errorf("create the tailsift exporter's telemetry: %w", err)
	}
	return &tailsiftExporter{
		cfg:       cfg,
		set:       set,
		telemetry: tb,
		watcher:   membership.NewWatcher(cfg.Members, clock.Real{}, set.Logger),
		splitters: sync.Pool{New: func() any { return new(splitter) }},
	}, nil
}

func newExporter(ctx context.Context, set exporter.Settings, cfg *Config) (exporter.Traces, error) {
	e, err := newTailsiftExporter(set, cfg)
	if err != nil {
		return nil, err
	}
	// The members have their own queues and retries: the outer helper only
	// reports what came in.
	return exporterhelper.NewTraces(ctx, set, cfg, e.consumeTraces,
		exporterhelper.WithStart(e.start),
		exporterhelper.WithShutdown(e.shutdown),
		exporterhelper.WithCapabilities(consumer.Capabilities{MutatesData: false}),
		exporterhelper.WithTimeout(exporterhelper.TimeoutConfig{}),
	)
}

func (e *tailsiftExporter) start(ctx context.Context, host component.Host) error {
	e.host = host
	return e.watcher.Start(ctx, e.setMembers)
}

// setMembers makes addrs the member set: members that stay keep their
// connection and queue, new ones are started, and the ones that left drain
// their queues in the background (failing over to the new set).
func (e *tailsiftExporter) setMembers(addrs []string) {
	e.changeMu.Lock()
	defer e.changeMu.Unlock()
	if e.closed {
		return
	}
	old := map[string]*member{}
	prev := 0
	if st := e.state.Load(); st != nil {
		prev = len(st.members)
		for _, m := range st.members {
			old[m.addr] = m
		}
	}
	next := &state{ring: ring.New(addrs)}
	for _, addr := range next.ring.Members() {
		m, ok := old[addr]
		if ok {
			delete(old, addr)
		} else {
			var err error
			if m, err = e.newMember(context.Background(), addr); err != nil {
				e.set.Logger.Error("Cannot add member; its traces go to the next member", zap.Error(err))
				m = &member{addr: addr}
				m.down.Store(true)
			} else {
				e.telemetry.ExporterTailsiftMembersUp.Add(context.Background(), 1)
			}
		}
		next.members = append(next.members, m)
	}
	e.state.Store(next)
	e.telemetry.ExporterTailsiftMembers.Add(context.Background(), int64(len(next.members)-prev))
	for _, m := range old {
		e.retire(m)
	}
}

func (e *tailsiftExporter) retire(m *member) {
	if m.helper == nil {
		return
	}
	e.retiring.Add(1)
	go func() {
		defer e.retiring.Done()
		ctx, cancel := context.WithTimeout(context.Background(), e.cfg.Timeout.Timeout+e.cfg.Failover.ProbeInterval)
		defer cancel()
		if err := m.shutdown(ctx); err != nil {
			e.set.Logger.Warn("Draining a member that left", zap.String("member", m.addr), zap.Error(err))
		}
	}()
}

func (e *tailsiftExporter) consumeTraces(ctx context.Context, td ptrace.Traces) error {
	st := e.state.Load()
	if st == nil || st.ring.Len() == 0 {
		return errNoMembers
	}
	buf, err := (&ptrace.ProtoMarshaler{}).MarshalTraces(td)
	if err != nil {
		return consumererror.NewPermanent(fmt.Errorf("marshal traces: %w", err))
	}
	return e.route(ctx, st, buf, &targets{ring: st.ring, down: st.down})
}

// reroute sends the spans of a request that member from could not deliver to
// the members now up, in hash order. It fails, without sending anything, when
// some span has no member up.
func (e *tailsiftExporter) reroute(ctx context.Context, r *request, from *member) error {
	st := e.state.Load()
	down := func(i int) bool { return st.members[i] == from || st.down(i) }
	return e.route(ctx, st, r.data, &targets{ring: st.ring, down: down, strict: true})
}

func (e *tailsiftExporter) route(ctx context.Context, st *state, buf []byte, t *targets) error {
	s := e.splitters.Get().(*splitter)
	parts, ok, err := s.split(buf, t)
	e.splitters.Put(s)
	if err != nil {
		return consumererror.NewPermanent(fmt.Errorf("split traces by member: %w", err))
	}
	if !ok {
		return errAllDown
	}
	var errs []error
	for _, p := range parts {
		m := st.members[p.member]
		if m.helper == nil {
			errs = append(errs, fmt.Errorf("member %s did not start", m.addr))
			continue
		}
		if err := m.enqueue(ctx, &request{data: p.data, spans: p.spans}); err != nil {
			if cur := e.state.Load(); cur != st {
				// The member left while this batch was routed, and its
				// queue is closed: route its part on the new set.
				err = e.route(ctx, cur, p.data, &targets{ring: cur.ring, down: cur.down, strict: t.strict})
				if err == nil {
					continue
				}
			}
			errs = append(errs, fmt.Errorf("send to %s: %w", m.addr, err))
			continue
		}
		e.telemetry.ExporterTailsiftSpansRouted.Add(ctx, int64(p.spans), m.attrs)
		if p.rerouted > 0 {
			e.telemetry.ExporterTailsiftSpansRerouted.Add(ctx, int64(p.rerouted))
		}
	}
	return errors.Join(errs...)
}

func (e *tailsiftExporter) shutdown(ctx context.Context) error {
	err := e.watcher.Shutdown(ctx)
	e.changeMu.Lock()
	e.closed = true
	e.changeMu.Unlock()
	if st := e.state.Load(); st != nil {
		var wg sync.WaitGroup
		errs := make([]error, len(st.members))
		for i, m := range st.members {
			if m.helper == nil {
				continue
			}
			wg.Go(func() { errs[i] = m.shutdown(ctx) })
		}
		wg.Wait()
		err = errors.Join(append(errs, err)...)
	}
	e.retiring.Wait()
	e.telemetry.Shutdown()
	return err
}
