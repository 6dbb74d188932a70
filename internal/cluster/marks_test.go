package cluster

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/ptrace/ptraceotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protowire"
)

// decisionsGateway is a gateway that takes handed-over decisions: of this
// version, or (older) of a version before the kept decisions' marks, which
// refuses a control with flagMarks as that version's decoder does
// (unknown flags, INVALID_ARGUMENT).
type decisionsGateway struct {
	ptraceotlp.UnimplementedGRPCServer
	older bool

	mu      sync.Mutex
	refused int
	got     []Decisions
}

func (g *decisionsGateway) Export(_ context.Context, req ptraceotlp.ExportRequest) (ptraceotlp.ExportResponse, error) {
	buf, err := req.MarshalProto()
	if err != nil {
		return ptraceotlp.NewExportResponse(), err
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.older && controlFlags(buf)&flagMarks != 0 {
		g.refused++
		return ptraceotlp.NewExportResponse(), status.Errorf(codes.InvalidArgument,
			"malformed tailsift.cluster control: unknown flags %#x", controlFlags(buf))
	}
	c, _, ok, err := SplitControl(buf)
	if !ok || err != nil {
		return ptraceotlp.NewExportResponse(), status.Errorf(codes.InvalidArgument, "not a control: %v", err)
	}
	g.got = append(g.got, c.Decisions)
	return ptraceotlp.NewExportResponse(), nil
}

// decisions returns the decisions taken so far, and the refusals.
func (g *decisionsGateway) decisions() ([]Decisions, int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]Decisions(nil), g.got...), g.refused
}

// controlFlags returns the flags byte of the control at the head of buf.
func controlFlags(buf []byte) byte {
	if p := controlBytes(buf); len(p) >= 2 {
		return p[1]
	}
	return 0
}

// controlBytes returns the payload of the control at the head of buf.
func controlBytes(buf []byte) []byte {
	_, _, n := protowire.ConsumeTag(buf)
	if n < 0 {
		return nil
	}
	rs, _ := protowire.ConsumeBytes(buf[n:])
	p, _ := controlPayload(rs)
	return p
}

// markedBuffer remembers kept decisions with marks of traces it no longer
// owns.
type markedBuffer struct {
	fakeBuffer
	kept []Kept
}

func (b *markedBuffer) ForeignDecisions(context.Context, int, func(uint64) bool) (Decisions, error) {
	return Decisions{Kept: b.kept}, nil
}

// TestHandOverMarkedDecisions: a kept decision carries its mark (the rv
// a trace was kept on, or its supplement) to the new owner. A gateway of
// a version before the marks refuses the flag that announces them; during
// an upgrade it gets the decisions again with their threshold only, as
// before the marks, rather than lose them. A gateway of this version
// takes them with their marks.
func TestHandOverMarkedDecisions(t *testing.T) {
	kept := []Kept{
		{ID: [16]byte{1}, Threshold: 1 << 55, RV: 0xabcdef, HasRV: true},
		{ID: [16]byte{2}, Threshold: 0, Supplement: 1},
		{ID: [16]byte{3}, Threshold: 7},
	}
	for _, older := range []bool{false, true} {
		name := "this version"
		if older {
			name = "older gateway"
		}
		t.Run(name, func(t *testing.T) {
			l, err := net.Listen("tcp", "127.0.0.1:0")
			require.NoError(t, err)
			gw := &decisionsGateway{older: older}
			srv := grpc.NewServer()
			ptraceotlp.RegisterGRPCServer(srv, gw)
			go func() { _ = srv.Serve(l) }()
			t.Cleanup(srv.Stop)

			cfg := NewDefaultConfig()
			cfg.Self, cfg.Members.Static, cfg.Drain = "127.0.0.1:1", []string{"127.0.0.1:1", l.Addr().String()}, 0
			cfg.Handover.BytesPerSecond = 1 << 40
			buf := &markedBuffer{kept: kept}
			n, _ := runNode(t, cfg, buf, nil)
			n.BeginDrain() // owns nothing: every decision goes
			n.HandOver(context.Background())
			var got []Decisions
			var refused int
			require.Eventually(t, func() bool { got, refused = gw.decisions(); return len(got) > 0 }, 10*time.Second, 5*time.Millisecond,
				"the decisions reach the other gateway")
			require.Len(t, got, 1)
			want := kept
			if older {
				want = []Kept{{ID: [16]byte{1}, Threshold: 1 << 55}, {ID: [16]byte{2}}, {ID: [16]byte{3}, Threshold: 7}}
				assert.Equal(t, 1, refused, "refused once, then taken without the marks")
			} else {
				assert.Zero(t, refused)
			}
			assert.ElementsMatch(t, want, got[0].Kept)
			buf.mu.Lock()
			defer buf.mu.Unlock()
			assert.Empty(t, buf.decisions, "nothing taken back")
		})
	}
}

func TestDowngrade(t *testing.T) {
	marked := Decisions{Kept: []Kept{{ID: [16]byte{1}, Threshold: 5, RV: 9, HasRV: true}}, Dropped: []uint64{4}}
	tests := []struct {
		name string
		c    Control
		want *Control // nil: no older form
	}{
		{name: "forwarded", c: Control{Forwarded: true}},
		{name: "unmarked decisions", c: Control{Forwarded: true, Decisions: Decisions{Kept: []Kept{{ID: [16]byte{1}, Threshold: 5}}}}},
		{name: "handed over", c: Control{Forwarded: true, HandedOver: true}, want: &Control{Forwarded: true}},
		{
			name: "marked decisions", c: Control{Forwarded: true, Relayed: true, Decisions: marked},
			want: &Control{Forwarded: true, Relayed: true, Decisions: Decisions{Kept: []Kept{{ID: [16]byte{1}, Threshold: 5}}, Dropped: []uint64{4}}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := downgrade(AppendControl(nil, &tt.c))
			if tt.want == nil {
				assert.Nil(t, got)
				return
			}
			c, rest, ok, err := SplitControl(got)
			require.NoError(t, err)
			require.True(t, ok)
			assert.Empty(t, rest)
			assert.Equal(t, *tt.want, c)
			assert.Zero(t, controlFlags(got)&(flagMarks|flagHandedOver), "the form every version reads")
		})
	}
	assert.Equal(t, Kept{ID: [16]byte{1}, Threshold: 5, RV: 9, HasRV: true}, marked.Kept[0], "the caller's decisions unchanged")
}
