package tts

import (
	"bytes"
	"context"
	"encoding/binary"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// wavAt writes a 16-bit PCM WAV of a sine at freq Hz.
func wavAt(rate, channels int, freq float64, seconds float64) []byte {
	n := int(float64(rate) * seconds)
	pcm := make([]int16, n*channels)
	for i := 0; i < n; i++ {
		v := int16(10000 * math.Sin(2*math.Pi*freq*float64(i)/float64(rate)))
		for c := 0; c < channels; c++ {
			pcm[i*channels+c] = v
		}
	}
	var b bytes.Buffer
	le := binary.LittleEndian
	b.WriteString("RIFF")
	binary.Write(&b, le, uint32(36+len(pcm)*2))
	b.WriteString("WAVEfmt ")
	binary.Write(&b, le, uint32(16))
	binary.Write(&b, le, uint16(1))
	binary.Write(&b, le, uint16(channels))
	binary.Write(&b, le, uint32(rate))
	binary.Write(&b, le, uint32(rate*channels*2))
	binary.Write(&b, le, uint16(channels*2))
	binary.Write(&b, le, uint16(16))
	b.WriteString("data")
	binary.Write(&b, le, uint32(len(pcm)*2))
	binary.Write(&b, le, pcm)
	return b.Bytes()
}

func rms(pcm []int16) float64 {
	s := 0.0
	for _, v := range pcm[len(pcm)/4 : 3*len(pcm)/4] { // away from the edges
		s += float64(v) * float64(v)
	}
	return math.Sqrt(s / float64(len(pcm)/2))
}

// fakeEngine is a TTS command that copies a fixture to {out} and counts
// its runs in a file.
func fakeEngine(t *testing.T, fixture []byte) (cmd []string, runs func() int) {
	dir := t.TempDir()
	fx := filepath.Join(dir, "fixture.wav")
	count := filepath.Join(dir, "runs")
	if err := os.WriteFile(fx, fixture, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd = []string{"sh", "-c", `cat >/dev/null; echo x >>"$2"; cp "$1" "$0"`, "{out}", fx, count}
	return cmd, func() int {
		b, _ := os.ReadFile(count)
		return strings.Count(string(b), "x")
	}
}

func TestTTSRenderAndCache(t *testing.T) {
	cmd, runs := fakeEngine(t, wavAt(22050, 1, 440, 0.5))
	dir := t.TempDir()
	tts := &Renderer{Command: cmd, Dir: dir, PlayDir: "/instance/tts", MaxFiles: 2}
	ctx := context.Background()
	for i, tc := range []struct {
		text, voice, lang string
		runs              int
		files             int
	}{
		{"Hello", "", "", 1, 1},
		{"Hello", "", "", 1, 1},         // cached
		{" Hello\n", "", "en-us", 1, 1}, // the same text, voice and language
		{"Hello", "Hans", "", 2, 2},     // another voice: its own file (language de-de)
		{"Goodbye", "", "", 3, 2},       // third file: the oldest goes
		{"Hello", "Hans", "", 3, 2},     // still cached
	} {
		uri, err := tts.Render(ctx, tc.text, tc.voice, tc.lang)
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if !strings.HasPrefix(uri, "sound:/instance/tts/tts-") || strings.HasSuffix(uri, ".wav") {
			t.Errorf("step %d: uri %q", i, uri)
		}
		if got := runs(); got != tc.runs {
			t.Errorf("step %d: engine ran %d times, want %d", i, got, tc.runs)
		}
		files, _ := filepath.Glob(filepath.Join(dir, "tts-*.wav"))
		if len(files) != tc.files {
			t.Errorf("step %d: %d cached files, want %d", i, len(files), tc.files)
		}
		b, err := os.ReadFile(filepath.Join(dir, filepath.Base(strings.TrimPrefix(uri, "sound:"))+".wav"))
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		pcm, rate, err := readWAV(b)
		if err != nil || rate != 8000 || len(pcm) < 3900 || len(pcm) > 4100 {
			t.Errorf("step %d: cached file %d Hz, %d samples, %v; want 8000 Hz, 0.5 s", i, rate, len(pcm), err)
		}
	}
	if tmp, _ := filepath.Glob(filepath.Join(dir, ".*")); len(tmp) != 0 {
		t.Errorf("temporary files left: %v", tmp)
	}
}

func TestTTSRenderFails(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name        string
		cmd         []string
		text, voice string
		want        string
	}{
		{"engine fails", []string{"sh", "-c", "echo no such voice >&2; exit 1"}, "Hi", "", "no such voice"},
		{"engine missing", []string{"/nonexistent/tts"}, "Hi", "", "/nonexistent/tts"},
		{"not a WAV", []string{"sh", "-c", `echo hello >"$0"`, "{out}"}, "Hi", "", "no WAV file"},
		{"no text", []string{"true"}, " \n ", "", "no text"},
		{"too long", []string{"true"}, strings.Repeat("a", maxSpokenText+1), "", "at most"},
		{"voice option", []string{"true"}, "Hi", "-x", "not a plain name"},
		{"no command", nil, "Hi", "", "no command"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tts := &Renderer{Command: tc.cmd, Dir: t.TempDir()}
			_, err := tts.Render(ctx, tc.text, tc.voice, "")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want %q", err, tc.want)
			}
		})
	}
}

func TestResample(t *testing.T) {
	for _, tc := range []struct {
		rate, channels int
		freq           float64
		pass           bool // within the telephone band: kept; above 4 kHz: filtered out
	}{
		{22050, 1, 1000, true},
		{22050, 2, 1000, true},
		{16000, 1, 3000, true},
		{22050, 1, 6000, false},
		{8000, 1, 1000, true},
	} {
		pcm, rate, err := readWAV(wavAt(tc.rate, tc.channels, tc.freq, 0.2))
		if err != nil || rate != tc.rate {
			t.Fatalf("readWAV: %v %d", err, rate)
		}
		out := resample(pcm, rate, 8000)
		if want := int(0.2 * 8000); len(out) < want-2 || len(out) > want+2 {
			t.Errorf("%d Hz: %d samples, want %d", tc.rate, len(out), want)
		}
		ratio := rms(out) / rms(pcm)
		if tc.pass && (ratio < 0.9 || ratio > 1.1) || !tc.pass && ratio > 0.1 {
			t.Errorf("%d Hz %.0f Hz tone: level ratio %.2f", tc.rate, tc.freq, ratio)
		}
	}
}

// With Debian's espeak-ng installed, the default command renders real
// speech Asterisk can play.
func TestTTSEspeak(t *testing.T) {
	if _, err := exec.LookPath("espeak-ng"); err != nil {
		t.Skip("espeak-ng not installed")
	}
	dir := t.TempDir()
	tts := &Renderer{Command: DefaultCommand, Dir: dir}
	for _, v := range []struct{ voice, lang string }{{"", ""}, {"Hans", ""}, {"", "fr-FR"}} {
		uri, err := tts.Render(context.Background(), "Welcome to ACME. Press 1.", v.voice, v.lang)
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(strings.TrimPrefix(uri, "sound:") + ".wav")
		if err != nil {
			t.Fatal(err)
		}
		pcm, rate, err := readWAV(b)
		if err != nil || rate != 8000 || len(pcm) < 8000 || rms(pcm) < 100 {
			t.Errorf("%+v: %d Hz, %d samples, %v", v, rate, len(pcm), err)
		}
	}
}
