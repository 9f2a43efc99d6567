// Command ariflow-timeline prints the resume path's per-call timeline
// from a loopback capture of a benchmark run: for each far end's BYE, the
// time to the agent's INVITE leaving the PBX, on both sides, and on
// ariflow's side the median time of every step in between (websocket
// events, ARI requests and their answers, Redis writes and their answers).
// It reads the fields e2e/timeline.sh asks tshark for, one packet a line:
//
//	e2e/timeline.sh                      # capture one call at a time and print the timeline
//	tshark ... | ariflow-timeline        # the same from a capture of your own
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Fields is what tshark is asked for (-T fields -E separator='|'), in this
// order; the websocket text comes last as it may hold the separator.
var Fields = []string{
	"frame.time_epoch", "tcp.srcport", "tcp.dstport", "udp.srcport",
	"sip.Method", "sip.Status-Code", "sip.to.user",
	"http.request.method", "http.request.uri", "http.response.code",
	"tcp.len", "websocket.payload.text",
}

// Ports are the stack's ports that tell the packets apart.
type Ports struct {
	CarrierSIP, ARI, Redis string
}

// packet is one line of the capture, reduced to what the timeline names.
type packet struct {
	at   time.Time
	kind string // "BYE", "INVITE" (with to), "req", "resp", "ws", "redis>", "redis<"
	to   string // an INVITE's user
	what string // a request's method and path, a response's code, an event's type
}

var (
	// The first "type" is the event's: no nested object has one.
	eventType = regexp.MustCompile(`"type":"(\w+)"`)
	idInPath  = regexp.MustCompile(`/[^/?]*-[^/?]*`) // channel and bridge IDs
)

// parse reads the capture's lines; lines it cannot read are skipped.
func parse(r io.Reader, ports Ports) ([]packet, error) {
	var out []packet
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		f := strings.SplitN(sc.Text(), "|", len(Fields))
		if len(f) < len(Fields) {
			continue
		}
		secs, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			continue
		}
		p := packet{at: time.Unix(0, int64(secs*1e9))}
		tsrc, tdst, usrc := f[1], f[2], f[3]
		method, code, to := f[4], f[5], f[6]
		hmethod, huri, hcode, tlen, ws := f[7], f[8], f[9], f[10], f[11]
		switch {
		case method == "BYE" && (usrc == ports.CarrierSIP || tsrc == ports.CarrierSIP):
			p.kind = "BYE"
		case method == "INVITE" && usrc != ports.CarrierSIP && tsrc != ports.CarrierSIP:
			p.kind, p.to = "INVITE", to
		case method != "" || code != "":
			continue
		case hmethod != "":
			p.kind, p.what = "req", hmethod+" "+idInPath.ReplaceAllString(strings.SplitN(huri, "?", 2)[0], "/{id}")
		case hcode != "" && tsrc == ports.ARI:
			p.kind, p.what = "resp", hcode
		case ws != "":
			m := eventType.FindStringSubmatch(ws)
			if m == nil {
				continue
			}
			p.kind, p.what = "ws", m[1]
		case tlen != "" && tlen != "0" && tdst == ports.Redis:
			p.kind = "redis>"
		case tlen != "" && tlen != "0" && tsrc == ports.Redis:
			p.kind = "redis<"
		default:
			continue
		}
		out = append(out, p)
	}
	slices.SortStableFunc(out, func(a, b packet) int { return a.at.Compare(b.at) })
	return out, sc.Err()
}

// window is one resume: the far end's BYE to the agent's INVITE, and what
// happened in between. ariflow's side is the one with ARI requests in it.
type window struct {
	bye, invite time.Time
	steps       []packet
}

func (w window) ariflow() bool {
	return slices.ContainsFunc(w.steps, func(p packet) bool { return p.kind == "req" })
}

// windows pairs each BYE with the next INVITE to agent within limit.
func windows(pk []packet, agent string, limit time.Duration) []window {
	var out []window
	for i, p := range pk {
		if p.kind != "BYE" {
			continue
		}
		for j := i + 1; j < len(pk) && pk[j].at.Sub(p.at) <= limit; j++ {
			if q := pk[j]; q.kind == "INVITE" && q.to == agent {
				out = append(out, window{bye: p.at, invite: q.at, steps: pk[i+1 : j]})
				break
			}
		}
	}
	return out
}

// step is a named moment of ariflow's windows and its times from the BYE.
type step struct {
	name string
	ms   []float64
}

// steps names every moment of the windows by its kind and its rank among
// the window's moments of that kind ("POST /ari/channels/create #1").
func steps(ws []window) []step {
	byName := map[string]*step{}
	var order []*step
	for _, w := range ws {
		seen := map[string]int{}
		for _, p := range w.steps {
			if p.kind == "BYE" || p.kind == "INVITE" {
				continue // other calls' (more than one at a time)
			}
			name := p.kind
			switch p.kind {
			case "req":
				name = p.what
			case "resp":
				name = "answer " + p.what
			case "ws":
				name = "event " + p.what
			case "redis>":
				name = "Redis request"
			case "redis<":
				name = "Redis answer"
			}
			seen[name]++
			name += " #" + strconv.Itoa(seen[name])
			s := byName[name]
			if s == nil {
				s = &step{name: name}
				byName[name] = s
				order = append(order, s)
			}
			s.ms = append(s.ms, ms(p.at.Sub(w.bye)))
		}
	}
	out := make([]step, 0, len(order))
	for _, s := range order {
		out = append(out, *s)
	}
	return out
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// report writes both sides' medians and ariflow's steps that at least
// most windows share, in the order of their medians.
func report(w io.Writer, ws []window) {
	var af, dp []window
	for _, x := range ws {
		if x.ariflow() {
			af = append(af, x)
		} else {
			dp = append(dp, x)
		}
	}
	side := func(name string, v []window) {
		d := make([]float64, len(v))
		for i, x := range v {
			d[i] = ms(x.invite.Sub(x.bye))
		}
		fmt.Fprintf(w, "%-8s BYE -> agent's INVITE: median %.2f ms over %d calls\n", name, median(d), len(d))
	}
	side("dialplan", dp)
	side("ariflow", af)
	if len(af) == 0 {
		return
	}
	st := steps(af)
	st = slices.DeleteFunc(st, func(s step) bool { return 2*len(s.ms) < len(af) })
	slices.SortStableFunc(st, func(a, b step) int {
		ma, mb := median(a.ms), median(b.ms)
		switch {
		case ma < mb:
			return -1
		case ma > mb:
			return 1
		}
		return 0
	})
	fmt.Fprintln(w, "ariflow's side, ms after the BYE (median; in how many calls):")
	for _, s := range st {
		fmt.Fprintf(w, "%6.2f  %s (%d)\n", median(s.ms), s.name, len(s.ms))
	}
}

func main() {
	var ports Ports
	agent := flag.String("agent", "+4930111009", "the number of the agent the caller resumes to")
	flag.StringVar(&ports.CarrierSIP, "carrier-sip", "27070", "the carrier's SIP port")
	flag.StringVar(&ports.ARI, "ari", "27088", "the PBX's ARI port")
	flag.StringVar(&ports.Redis, "redis", "27079", "Redis's port")
	fields := flag.Bool("fields", false, "print the tshark fields to ask for, one per line, and exit")
	flag.Parse()
	if *fields {
		fmt.Println(strings.Join(Fields, "\n"))
		return
	}
	pk, err := parse(os.Stdin, ports)
	if err != nil {
		fmt.Fprintln(os.Stderr, "ariflow-timeline: reading the capture:", err)
		os.Exit(1)
	}
	ws := windows(pk, *agent, time.Second)
	if len(ws) == 0 {
		fmt.Fprintln(os.Stderr, "ariflow-timeline: no far end's BYE followed by an INVITE to", *agent, "in the capture")
		os.Exit(1)
	}
	report(os.Stdout, ws)
}
