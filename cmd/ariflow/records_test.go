package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/alicebob/miniredis/v2"
	"github.com/redis/go-redis/v9"

	"github.com/ariflow/ariflow/callrecord"
	"github.com/ariflow/ariflow/record"
)

func TestRecordsCommand(t *testing.T) {
	mr := miniredis.RunT(t)
	rdb := redis.NewClient(&redis.Options{Addr: mr.Addr()})
	defer rdb.Close()
	s := callrecord.NewRedisStream(rdb, callrecord.RedisOptions{})
	t0 := time.Now().Add(-time.Minute)
	for i, caller := range []string{"+4917600000001", "+4917600000002", "+4917600000001"} {
		r := &callrecord.Record{Schema: callrecord.Schema, Version: callrecord.Version, CallID: "c" + string(rune('0'+i)),
			Caller: caller, Dialed: "+4930555000", Started: t0, Ended: t0.Add(5 * time.Second), DurationS: 5,
			End:       callrecord.End{Reason: callrecord.EndCallerHangup},
			Blocks:    []record.Visit{{Block: "greet", Type: "PlayPrompt", At: t0, Branch: "Next"}},
			Transfers: []record.TransferOutcome{{Block: "to_shipper", Outcome: "call-failed", Numbers: []record.NumberTried{{Number: "+4930123456", Outcome: "call-failed", SIPCode: 486}}}},
			Processes: []record.Served{{Owner: "p1", From: t0}}}
		s.Send(context.Background(), r)
	}
	if err := s.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	url := "redis://" + mr.Addr() + "/0"
	if code := run([]string{"records", "-redis-url", url, "-caller", "+4917600000001"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	text := out.String()
	if strings.Count(text, "call c") != 2 || strings.Index(text, "call c2") > strings.Index(text, "call c0") ||
		!strings.Contains(text, "greet") || !strings.Contains(text, "+4930123456 call-failed 486") {
		t.Errorf("output:\n%s", text)
	}
	out.Reset()
	if code := run([]string{"records", "-redis-url", url, "-call", "c1", "-json"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	var r callrecord.Record
	if err := json.Unmarshal(bytes.TrimSpace(out.Bytes()), &r); err != nil || r.CallID != "c1" || r.Caller != "+4917600000002" {
		t.Errorf("-json: %s (%v)", out.String(), err)
	}
	errb.Reset()
	if code := run([]string{"records", "-redis-url", url, "-call", "nope"}, &out, &errb); code != 1 || !strings.Contains(errb.String(), "no record") {
		t.Errorf("no match: exit %d, %q", code, errb.String())
	}
	if code := run([]string{"records", "-n", "0"}, &out, &errb); code != 2 {
		t.Errorf("-n 0: exit %d", code)
	}
}

func TestObserveConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"unknown sink", []string{"-records", "kafka"}, "unknown sink"},
		{"webhook without URL", []string{"-records", "webhook"}, "-records-webhook"},
		{"URL without webhook", []string{"-records-webhook", "https://x.example/r"}, "does not name webhook"},
		{"bad number mode", []string{"-trace-numbers", "partly"}, "-trace-numbers"},
		{"hashed without key", []string{"-trace-numbers", "hashed"}, "-trace-hash-key-file"},
		{"bad maxlen", []string{"-records", "redis", "-records-maxlen", "0"}, "-records-maxlen"},
		{"bad invite header", []string{"-trace-invite-header", "trace parent"}, "-trace-invite-header"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clearEnv(t)
			t.Setenv("ARIFLOW_ARI_PASSWORD", testPassword)
			var stderr bytes.Buffer
			_, err := parseConfig(tc.args, &stderr)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want one naming %s", err, tc.want)
			}
		})
	}
}
