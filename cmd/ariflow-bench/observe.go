package main

import (
	"io"
	"net"
	"net/http"
	"os"
	"sync/atomic"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"
)

// spanSink is an OTLP/HTTP receiver on loopback that counts the spans it
// is sent: the tracing side of the A/B (-trace) exports to it, so that
// the figures include the export's cost and nothing of a real backend's.
type spanSink struct {
	ln    net.Listener
	spans atomic.Int64
}

func startSpanSink() (*spanSink, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &spanSink{ln: ln}
	go func() {
		_ = http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			b, err := io.ReadAll(r.Body)
			var req coltracepb.ExportTraceServiceRequest
			if err != nil || proto.Unmarshal(b, &req) != nil {
				http.Error(w, "bad request", http.StatusBadRequest)
				return
			}
			for _, rs := range req.ResourceSpans {
				for _, ss := range rs.ScopeSpans {
					s.spans.Add(int64(len(ss.Spans)))
				}
			}
		}))
	}()
	return s, nil
}

func (s *spanSink) Close() { s.ln.Close() }

// observeSetup turns tracing (-trace) and call records (-records) on for
// the ariflow the bench starts; it returns the span sink (nil without
// -trace).
func observeSetup(o options) (*spanSink, error) {
	if o.records {
		os.Setenv("ARIFLOW_RECORDS", "redis")
		os.Setenv("ARIFLOW_RECORDS_STREAM", "ariflow:records:bench")
	}
	if !o.trace {
		return nil, nil
	}
	s, err := startSpanSink()
	if err != nil {
		return nil, err
	}
	os.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://"+s.ln.Addr().String())
	return s, nil
}
