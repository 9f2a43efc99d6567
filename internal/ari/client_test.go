package ari

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// A request whose keep-alive connection the server closed under it may be
// sent again on a fresh one (Idempotency-Key), except a DTMF digit.
func TestIdempotencyKey(t *testing.T) {
	var keys []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		keys = append(keys, r.Method+" "+r.URL.Path+" "+r.Header.Get("Idempotency-Key"))
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	c := New(Options{URL: srv.URL + "/ari", User: "u", Password: "p", App: "a"})
	ctx := context.Background()
	if err := c.Dial(ctx, "leg1", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := c.SendDTMF(ctx, "leg1", "1", time.Millisecond, 100*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	if len(keys) != 2 || strings.HasSuffix(keys[0], " ") || !strings.HasSuffix(keys[1], " ") {
		t.Errorf("requests %q; want a key on the dial and none on the digit", keys)
	}
}

// addChannel's options are query parameters, sent only when set.
func TestAddToBridgeWith(t *testing.T) {
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.URL.Path+"?"+r.URL.RawQuery)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	c := New(Options{URL: srv.URL + "/ari", User: "u", Password: "p", App: "a"})
	ctx := context.Background()
	for _, tc := range []struct {
		o    BridgeJoin
		want string
	}{
		{BridgeJoin{}, "/ari/bridges/br/addChannel?channel=c1%2Cc2"},
		{BridgeJoin{AbsorbDTMF: true}, "/ari/bridges/br/addChannel?absorbDTMF=true&channel=c1%2Cc2"},
		{BridgeJoin{InhibitConnectedLine: true}, "/ari/bridges/br/addChannel?channel=c1%2Cc2&inhibitConnectedLineUpdates=true"},
		{BridgeJoin{AbsorbDTMF: true, InhibitConnectedLine: true}, "/ari/bridges/br/addChannel?absorbDTMF=true&channel=c1%2Cc2&inhibitConnectedLineUpdates=true"},
	} {
		got = nil
		if err := c.AddToBridgeWith(ctx, "br", tc.o, "c1", "c2"); err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0] != tc.want {
			t.Errorf("%+v: requests %q, want %q", tc.o, got, tc.want)
		}
	}
}
