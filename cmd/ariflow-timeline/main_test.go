package main

import (
	"strings"
	"testing"
)

// line builds one capture line: the time, then field=value pairs.
func line(at string, kv ...string) string {
	f := make([]string, len(Fields))
	f[0] = at
	for i := 0; i+1 < len(kv); i += 2 {
		for j, name := range Fields {
			if name == kv[i] {
				f[j] = kv[i+1]
			}
		}
	}
	return strings.Join(f, "|")
}

var ports = Ports{CarrierSIP: "27070", ARI: "27088", Redis: "27079"}

func TestTimeline(t *testing.T) {
	capture := strings.Join([]string{
		// dialplan's side: BYE, then the agent's INVITE 1.5 ms later
		line("100.0000", "udp.srcport", "27070", "sip.Method", "BYE"),
		line("100.0015", "udp.srcport", "27060", "sip.Method", "INVITE", "sip.to.user", "+4930111009"),
		// ariflow's side
		line("200.0000", "udp.srcport", "27070", "sip.Method", "BYE"),
		line("200.0008", "tcp.srcport", "27088", "websocket.payload.text", `{"cause":16,"type":"ChannelHangupRequest","x":"a|b"}`),
		line("200.0016", "tcp.dstport", "27088", "http.request.method", "POST", "http.request.uri", "/ari/channels/create?x=1"),
		line("200.0020", "tcp.dstport", "27079", "tcp.len", "120"),
		line("200.0025", "tcp.srcport", "27079", "tcp.len", "4"),
		line("200.0027", "tcp.srcport", "27088", "http.response.code", "200"),
		line("200.0030", "tcp.dstport", "27088", "http.request.method", "POST", "http.request.uri", "/ari/channels/ariflow-leg-1/dial"),
		line("200.0031", "udp.srcport", "27060", "sip.Method", "INVITE", "sip.to.user", "+4930123459"), // not the agent
		line("200.0040", "udp.srcport", "27060", "sip.Method", "INVITE", "sip.to.user", "+4930111009"),
		// a BYE with no INVITE after it within the limit
		line("300.0000", "udp.srcport", "27070", "sip.Method", "BYE"),
		"not a line",
	}, "\n")
	pk, err := parse(strings.NewReader(capture), ports)
	if err != nil {
		t.Fatal(err)
	}
	ws := windows(pk, "+4930111009", 0.5e9)
	if len(ws) != 2 || ws[0].ariflow() || !ws[1].ariflow() {
		t.Fatalf("windows: %+v", ws)
	}
	var b strings.Builder
	report(&b, ws)
	want := []string{
		"dialplan BYE -> agent's INVITE: median 1.50 ms over 1 calls",
		"ariflow  BYE -> agent's INVITE: median 4.00 ms over 1 calls",
		"  0.80  event ChannelHangupRequest #1 (1)",
		"  1.60  POST /ari/channels/create #1 (1)",
		"  2.00  Redis request #1 (1)",
		"  2.50  Redis answer #1 (1)",
		"  2.70  answer 200 #1 (1)",
		"  3.00  POST /ari/channels/{id}/dial #1 (1)",
	}
	for _, w := range want {
		if !strings.Contains(b.String(), w+"\n") {
			t.Errorf("report lacks %q:\n%s", w, b.String())
		}
	}
	if strings.Contains(b.String(), "INVITE #") {
		t.Errorf("the leg's own INVITE is a step:\n%s", b.String())
	}
}

func TestMedian(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		want float64
	}{{nil, 0}, {[]float64{3}, 3}, {[]float64{4, 1, 3}, 3}, {[]float64{4, 1, 3, 2}, 2.5}} {
		if got := median(tc.in); got != tc.want {
			t.Errorf("median(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
}
