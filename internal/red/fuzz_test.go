package red

import (
	"testing"

	"go.opentelemetry.io/collector/pdata/ptrace"
	"google.golang.org/protobuf/encoding/protowire"

	"github.com/tailsift/tailsift/internal/wire"
)

// FuzzServiceName checks, for every request wire.Scan accepts, that
// serviceName reads each resource's service.name as pdata does, and that
// Observe does not panic.
//
//	go test -run='^$' -fuzz=FuzzServiceName -fuzztime=30s ./internal/red/
func FuzzServiceName(f *testing.F) {
	var reqs [][]byte
	for _, svc := range []string{"cart", "", "later"} {
		td := ptrace.NewTraces()
		rs := td.ResourceSpans().AppendEmpty()
		rs.Resource().Attributes().PutStr("service.name", svc)
		rs.Resource().Attributes().PutStr("host.name", "h")
		sp := rs.ScopeSpans().AppendEmpty().Spans().AppendEmpty()
		sp.SetTraceID([16]byte{1})
		sp.SetSpanID([8]byte{1})
		buf, err := (&ptrace.ProtoMarshaler{}).MarshalTraces(td)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(buf)
		reqs = append(reqs, buf)
	}
	// Two ResourceSpans messages concatenated are one, whose resource
	// has service.name twice: "cart", then "later".
	first, _ := protowire.ConsumeBytes(reqs[0][1:])
	second, _ := protowire.ConsumeBytes(reqs[2][1:])
	f.Add(protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), append(append([]byte(nil), first...), second...)))
	f.Fuzz(func(t *testing.T, req []byte) {
		var b wire.Batch
		if wire.Scan(req, &b) != nil {
			return
		}
		NewTable(DefaultConfig(), 0).Observe(&b)
		for _, sc := range b.Scopes {
			got, ok := serviceName(sc.Resource)
			// The resource alone, as the one ResourceSpans of a request.
			rs := protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), sc.Resource)
			td, err := (&ptrace.ProtoUnmarshaler{}).UnmarshalTraces(protowire.AppendBytes(protowire.AppendTag(nil, 1, protowire.BytesType), rs))
			if err != nil {
				t.Fatalf("pdata refuses a resource Scan accepted: %v", err)
			}
			v, want := td.ResourceSpans().At(0).Resource().Attributes().Get("service.name")
			if ok != want || (ok && string(got) != v.Str()) {
				t.Fatalf("serviceName = %q, %v; pdata has %q, %v", got, ok, v.Str(), want)
			}
		}
	})
}
