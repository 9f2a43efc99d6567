package webhook

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// A request made within a traced call carries its traceparent; one
// without a span in its context carries none.
func TestPostCarriesTraceparent(t *testing.T) {
	otel.SetTextMapPropagator(propagation.TraceContext{})
	seen := make(chan string, 2)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen <- r.Header.Get("traceparent")
	}))
	defer srv.Close()
	c, err := New(Options{})
	if err != nil {
		t.Fatal(err)
	}
	tid, _ := trace.TraceIDFromHex("0af7651916cd43dd8448eb211c80319c")
	sid, _ := trace.SpanIDFromHex("b7ad6b7169203331")
	traced := trace.ContextWithSpanContext(context.Background(), trace.NewSpanContext(trace.SpanContextConfig{TraceID: tid, SpanID: sid, TraceFlags: trace.FlagsSampled}))
	for _, tc := range []struct {
		ctx  context.Context
		want string
	}{{traced, "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}, {context.Background(), ""}} {
		if _, _, err := c.Post(tc.ctx, srv.URL, []byte(`{}`), time.Second); err != nil {
			t.Fatal(err)
		}
		if got := <-seen; got != tc.want {
			t.Errorf("traceparent %q, want %q", got, tc.want)
		}
	}
}
