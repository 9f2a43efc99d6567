package ari

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestVariable(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/ari/channels/c1/variable" {
			http.NotFound(w, r)
			return
		}
		if v := r.URL.Query().Get("variable"); v != "PJSIP_HEADER(read,traceparent)" {
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"message":"Provided variable was not found"}`))
			return
		}
		_, _ = w.Write([]byte(`{"value":"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}`))
	}))
	defer srv.Close()
	c := New(Options{URL: srv.URL + "/ari", App: "a"})
	v, err := c.Variable(context.Background(), "c1", "PJSIP_HEADER(read,traceparent)")
	if err != nil || v != "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01" {
		t.Errorf("Variable = %q, %v", v, err)
	}
	if _, err := c.Variable(context.Background(), "c1", "NOPE"); !IsNotFound(err) {
		t.Errorf("an unset variable: %v, want 404", err)
	}
}
