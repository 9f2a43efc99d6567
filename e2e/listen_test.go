package e2e

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"

	"github.com/CyCoreSystems/ari/v6"
)

// Recording is what the PBX sent a caller, recorded on the PBX from a
// snoop on the caller's channel (listenAtPBX) as 8 kHz signed linear: the
// PBX's own sound (a ringing tone) and what a bridge passes on alike.
type Recording struct {
	path string
	end  *sub // its RecordingFinished (or Failed), at the observer
}

// listenAtPBX records what the PBX sends the caller calling from until
// the call ends. The snoop channel waits in the observer's app.
func listenAtPBX(ctx context.Context, from string) (*Recording, error) {
	id, err := pbxCaller(from)
	if err != nil {
		return nil, err
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
	end := observer.hub.subscribe(func(ev ari.Event) bool {
		switch e := ev.(type) {
		case *ari.RecordingFinished:
			return e.Recording.Name == name
		case *ari.RecordingFailed:
			return e.Recording.Name == name
		}
		return false
	})
	q = url.Values{"name": {name}, "format": {"sln"}, "ifExists": {"overwrite"}}
	if code, body, err := pbxREST(ctx, http.MethodPost, "/channels/"+snoop+"/record?"+q.Encode(), nil); err != nil || code/100 != 2 {
		observer.hub.unsubscribe(end)
		return nil, fmt.Errorf("recording %s: %d %s %v", snoop, code, body, err)
	}
	return &Recording{path: filepath.Join(dir, name+".sln"), end: end}, nil
}

// pbxCaller is the PBX's channel of the caller calling from: the one with
// that number that is not one of ariflow's legs (a leg may show the
// caller's number).
func pbxCaller(from string) (string, error) {
	chans, err := stack.PBX.Channel().List(nil)
	if err != nil {
		return "", err
	}
	id := ""
	for _, k := range chans {
		if strings.HasPrefix(k.ID, "ariflow-") {
			continue
		}
		d, err := stack.PBX.Channel().Data(k)
		if err == nil && d.Caller.Number == from {
			id = k.ID
		}
	}
	if id == "" {
		return "", fmt.Errorf("no PBX channel of caller %s", from)
	}
	return id, nil
}

// Heard waits for the recording to be written out (the channel gone) and
// returns its sound level, 100 ms at a time.
func (r *Recording) Heard(ctx context.Context) (Heard, error) {
	defer observer.hub.unsubscribe(r.end)
	ev, err := r.end.next(ctx)
	if err != nil {
		return Heard{}, fmt.Errorf("recording %s never ended: %w", r.path, err)
	}
	if f, ok := ev.(*ari.RecordingFailed); ok {
		return Heard{}, fmt.Errorf("recording %s failed: %s", r.path, f.Recording.Cause)
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
