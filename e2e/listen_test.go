package e2e

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/CyCoreSystems/ari/v6"
)

// Recording is what the PBX sent a caller, recorded on the PBX from a
// snoop on the caller's channel (listenAtPBX) as 8 kHz signed linear: the
// PBX's own sound (a ringing tone) and what a bridge passes on alike.
type Recording struct {
	path string
}

// listenAtPBX records what the PBX sends the caller calling from until
// the call ends. The snoop channel waits in the observer's app.
func listenAtPBX(ctx context.Context, from string) (*Recording, error) {
	code, body, err := pbxREST(ctx, http.MethodGet, "/channels", nil)
	if err != nil || code != http.StatusOK {
		return nil, fmt.Errorf("listing the PBX's channels: %d %v", code, err)
	}
	var chans []struct {
		ID     string `json:"id"`
		Caller struct {
			Number string `json:"number"`
		} `json:"caller"`
		Dialplan struct {
			AppName string `json:"app_name"`
		} `json:"dialplan"`
	}
	if err := json.Unmarshal(body, &chans); err != nil {
		return nil, err
	}
	id := ""
	for _, ch := range chans {
		if ch.Caller.Number == from && ch.Dialplan.AppName == "Stasis" {
			id = ch.ID
		}
	}
	if id == "" {
		return nil, fmt.Errorf("no caller %s on the PBX", from)
	}
	snoop, name := "snoop-"+id, "heard-"+id
	// Recorded once it is in the app: ARI refuses it until then.
	in := observer.hub.subscribe(func(ev ari.Event) bool {
		ss, ok := ev.(*ari.StasisStart)
		return ok && ss.Channel.ID == snoop
	})
	defer observer.hub.unsubscribe(in)
	q := url.Values{"spy": {"out"}, "app": {"e2e-observer"}, "snoopId": {snoop}}
	if code, body, err := pbxREST(ctx, http.MethodPost, "/channels/"+id+"/snoop?"+q.Encode(), nil); err != nil || code != http.StatusOK {
		return nil, fmt.Errorf("snooping on %s: %d %s %v", id, code, body, err)
	}
	if _, err := in.next(ctx); err != nil {
		return nil, fmt.Errorf("snoop %s never entered the app: %w", snoop, err)
	}
	dir := filepath.Join(stack.Env["ARIFLOW_STACK_DIR"], "pbx", "spool", "recording")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	q = url.Values{"name": {name}, "format": {"sln"}, "ifExists": {"overwrite"}}
	if code, body, err := pbxREST(ctx, http.MethodPost, "/channels/"+snoop+"/record?"+q.Encode(), nil); err != nil || code/100 != 2 {
		return nil, fmt.Errorf("recording %s: %d %s %v", snoop, code, body, err)
	}
	return &Recording{path: filepath.Join(dir, name+".sln")}, nil
}

// Heard waits for the recording to be written out (the channel gone) and
// returns its sound level, 100 ms at a time.
func (r *Recording) Heard(ctx context.Context) (Heard, error) {
	var last int64 = -1
	for {
		st, err := os.Stat(r.path)
		if err == nil && st.Size() == last {
			break
		}
		if err == nil {
			last = st.Size()
		}
		select {
		case <-time.After(200 * time.Millisecond):
		case <-ctx.Done():
			return Heard{}, fmt.Errorf("recording %s: %w", r.path, ctx.Err())
		}
	}
	b, err := os.ReadFile(r.path)
	if err != nil {
		return Heard{}, err
	}
	const window = 800 // samples: 100 ms
	var h Heard
	for i := 0; i+2*window <= len(b); i += 2 * window {
		var sum float64
		for j := 0; j < window; j++ {
			v := float64(int16(binary.LittleEndian.Uint16(b[i+2*j:])))
			sum += v * v
		}
		h.rms = append(h.rms, math.Sqrt(sum/window))
	}
	return h, nil
}

// Heard is a recording's sound level (RMS) per 100 ms.
type Heard struct {
	rms []float64
}

// loud is the level above which a window counts as sound (the tone and
// speech are far above it; silence is 0).
const loud = 300

// Segment is a stretch of a recording, loud or quiet, in 100 ms windows.
type Segment struct {
	Loud       bool
	Start, Len int
}

// Segments splits the recording into its loud and quiet stretches.
func (h Heard) Segments() []Segment {
	var out []Segment
	for i, v := range h.rms {
		l := v > loud
		if len(out) == 0 || out[len(out)-1].Loud != l {
			out = append(out, Segment{Loud: l, Start: i})
		}
		out[len(out)-1].Len++
	}
	return out
}
