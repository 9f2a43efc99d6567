// Package tts renders "text:" prompts to audio Asterisk can play, through
// a text-to-speech command and a cache directory. It knows nothing of calls.
package tts

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/ariflow/ariflow/flows"
)

// Renderer renders "text:" prompts to audio Asterisk can play: it runs a
// text-to-speech command that writes a WAV file, converts that to 8 kHz
// mono 16-bit WAV (what Asterisk's format_wav reads), and keeps it in a
// cache directory named by a hash of text, voice and language.
//
// The cache may be shared by several ariflow processes (a directory on
// shared storage, such as NFS, mounted where each process and Asterisk
// see it): files are written under a temporary name and renamed into
// place, so a reader never sees half a file, and two processes rendering
// the same text at once both write the same bytes.
type Renderer struct {
	// Command is the engine's command line, run without a shell; the text
	// is on its standard input. {out} is the WAV file to write, {voice} and
	// {language} the prompt's voice and language (lower case, "en-us").
	Command []string
	// Dir is the cache directory as ariflow sees it; PlayDir the same
	// directory as Asterisk sees it (default Dir), e.g. "/instance/tts"
	// when Asterisk runs in a chroot where Dir is bind-mounted there.
	Dir, PlayDir string
	// MaxFiles bounds the cache; beyond it the least recently played
	// files are removed (default 2000).
	MaxFiles int
	// Timeout bounds one synthesis (default 10 s).
	Timeout time.Duration
	// Language is used when the call sets none (default "en-us").
	Language string

	mu sync.Mutex // one eviction at a time in this process
}

// DefaultCommand is Debian's espeak-ng.
var DefaultCommand = []string{"espeak-ng", "-v", "{language}", "-w", "{out}", "--stdin"}

// FromEnv configures text-to-speech from the environment:
// ARIFLOW_TTS_COMMAND (the command template, split on spaces),
// ARIFLOW_TTS_DIR (default /var/lib/ariflow/tts), ARIFLOW_TTS_PLAY_DIR,
// ARIFLOW_TTS_MAX_FILES, ARIFLOW_TTS_LANGUAGE.
func FromEnv() *Renderer {
	t := &Renderer{Command: DefaultCommand, Dir: "/var/lib/ariflow/tts"}
	if v := os.Getenv("ARIFLOW_TTS_COMMAND"); v != "" {
		t.Command = strings.Fields(v)
	}
	if v := os.Getenv("ARIFLOW_TTS_DIR"); v != "" {
		t.Dir = v
	}
	t.PlayDir = os.Getenv("ARIFLOW_TTS_PLAY_DIR")
	t.MaxFiles, _ = strconv.Atoi(os.Getenv("ARIFLOW_TTS_MAX_FILES"))
	t.Language = os.Getenv("ARIFLOW_TTS_LANGUAGE")
	return t
}

// maxSpokenText bounds a text prompt after its attributes are filled in.
const maxSpokenText = 2 * flows.MaxTextPrompt

// Render returns "sound:<path>" for the text spoken with the voice and
// language, synthesising it unless it is cached.
func (t *Renderer) Render(ctx context.Context, text, voice, language string) (string, error) {
	text = strings.Join(strings.FieldsFunc(text, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }), " ")
	if text == "" {
		return "", errors.New("text-to-speech: no text to speak")
	}
	if len(text) > maxSpokenText {
		return "", fmt.Errorf("text-to-speech: %d bytes of text, at most %d", len(text), maxSpokenText)
	}
	language = strings.ToLower(language)
	if language == "" {
		language = strings.ToLower(pollyLanguage[voice])
	}
	if language == "" {
		language = strings.ToLower(t.Language)
	}
	if language == "" {
		language = "en-us"
	}
	if !safeName(language) || voice != "" && !safeName(voice) {
		return "", fmt.Errorf("text-to-speech: voice %q or language %q is not a plain name", voice, language)
	}
	sum := sha256.Sum256([]byte(text + "\x00" + voice + "\x00" + language))
	key := "tts-" + hex.EncodeToString(sum[:16])
	file := filepath.Join(t.Dir, key+".wav")
	play := t.PlayDir
	if play == "" {
		play = t.Dir
	}
	uri := "sound:" + filepath.Join(play, key)
	now := time.Now()
	if os.Chtimes(file, now, now) == nil { // cached: mark it recently used
		return uri, nil
	}
	if err := t.synthesise(ctx, text, voice, language, file); err != nil {
		return "", err
	}
	t.evict()
	return uri, nil
}

func (t *Renderer) synthesise(ctx context.Context, text, voice, language, file string) error {
	if len(t.Command) == 0 {
		return errors.New("text-to-speech: no command configured")
	}
	if err := os.MkdirAll(t.Dir, 0o755); err != nil {
		return fmt.Errorf("text-to-speech: %w", err)
	}
	raw, err := os.CreateTemp(t.Dir, ".engine-*.wav")
	if err != nil {
		return fmt.Errorf("text-to-speech: %w", err)
	}
	raw.Close()
	defer os.Remove(raw.Name())
	timeout := t.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	r := strings.NewReplacer("{out}", raw.Name(), "{voice}", voice, "{language}", language)
	args := make([]string, len(t.Command))
	for i, a := range t.Command {
		args[i] = r.Replace(a)
	}
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Stdin = strings.NewReader(text)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("text-to-speech: %s: %v: %.200s", args[0], err, strings.TrimSpace(stderr.String()))
	}
	in, err := os.ReadFile(raw.Name())
	if err != nil {
		return fmt.Errorf("text-to-speech: %w", err)
	}
	pcm, rate, err := readWAV(in)
	if err != nil {
		return fmt.Errorf("text-to-speech: %s wrote %w", args[0], err)
	}
	out, err := os.CreateTemp(t.Dir, ".tts-*.wav")
	if err != nil {
		return fmt.Errorf("text-to-speech: %w", err)
	}
	_, werr := out.Write(wav8k(resample(pcm, rate, 8000)))
	if cerr := out.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Chmod(out.Name(), 0o644) // Asterisk may run as another user
	}
	if werr == nil {
		werr = os.Rename(out.Name(), file)
	}
	if werr != nil {
		os.Remove(out.Name())
		return fmt.Errorf("text-to-speech: %w", werr)
	}
	return nil
}

// evict removes the least recently used files beyond MaxFiles.
func (t *Renderer) evict() {
	max := t.MaxFiles
	if max <= 0 {
		max = 2000
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	entries, err := os.ReadDir(t.Dir)
	if err != nil {
		return
	}
	type f struct {
		name string
		mod  time.Time
	}
	var files []f
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), "tts-") || !strings.HasSuffix(e.Name(), ".wav") {
			continue
		}
		if info, err := e.Info(); err == nil {
			files = append(files, f{e.Name(), info.ModTime()})
		}
	}
	if len(files) <= max {
		return
	}
	sort.Slice(files, func(i, j int) bool { return files[i].mod.Before(files[j].mod) })
	for _, x := range files[:len(files)-max] {
		os.Remove(filepath.Join(t.Dir, x.name))
	}
}

func safeName(s string) bool {
	if s == "" || s[0] == '-' { // never an option to the engine
		return false
	}
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '+') {
			return false
		}
	}
	return len(s) <= 64
}

// readWAV returns a PCM WAV's samples as mono 16-bit and its rate.
func readWAV(b []byte) ([]int16, int, error) {
	if len(b) < 12 || string(b[:4]) != "RIFF" || string(b[8:12]) != "WAVE" {
		return nil, 0, errors.New("no WAV file")
	}
	var channels, bits, format int
	rate := 0
	for p := 12; p+8 <= len(b); {
		id, size := string(b[p:p+4]), int(binary.LittleEndian.Uint32(b[p+4:p+8]))
		body := b[p+8:]
		if size > len(body) || size < 0 { // streamed WAV: size unknown
			size = len(body)
		}
		switch id {
		case "fmt ":
			if size < 16 {
				return nil, 0, errors.New("a short WAV fmt chunk")
			}
			format = int(binary.LittleEndian.Uint16(body[0:2]))
			channels = int(binary.LittleEndian.Uint16(body[2:4]))
			rate = int(binary.LittleEndian.Uint32(body[4:8]))
			bits = int(binary.LittleEndian.Uint16(body[14:16]))
		case "data":
			if format != 1 || bits != 16 || channels < 1 || rate < 4000 {
				return nil, 0, fmt.Errorf("WAV format %d, %d bits, %d channels, %d Hz: want 16-bit PCM", format, bits, channels, rate)
			}
			n := size / 2 / channels
			out := make([]int16, n)
			for i := range out {
				sum := 0
				for c := 0; c < channels; c++ {
					sum += int(int16(binary.LittleEndian.Uint16(body[(i*channels+c)*2:])))
				}
				out[i] = int16(sum / channels)
			}
			return out, rate, nil
		}
		p += 8 + size + size%2
	}
	return nil, 0, errors.New("a WAV file without data")
}

// resample converts the rate with a windowed-sinc low-pass below the new
// Nyquist frequency (no aliasing of the engine's 11 kHz band into the
// telephone band).
func resample(in []int16, from, to int) []int16 {
	if from == to {
		return in
	}
	ratio := float64(from) / float64(to)
	cutoff := 0.5 * math.Min(1, 1/ratio) * 0.92 // of the input rate
	const half = 16                             // taps each side, in output-rate units
	width := float64(half) * math.Max(1, ratio)
	n := int(float64(len(in)) / ratio)
	out := make([]int16, n)
	for i := range out {
		centre := float64(i) * ratio
		lo, hi := int(math.Ceil(centre-width)), int(math.Floor(centre+width))
		sum, norm := 0.0, 0.0
		for j := max(lo, 0); j <= hi && j < len(in); j++ {
			x := float64(j) - centre
			w := 2 * cutoff
			if x != 0 {
				w = math.Sin(2*math.Pi*cutoff*x) / (math.Pi * x)
			}
			w *= 0.5 + 0.5*math.Cos(math.Pi*x/width) // Hann window
			sum += w * float64(in[j])
			norm += w
		}
		if norm != 0 {
			sum /= norm
		}
		out[i] = int16(math.Max(-32768, math.Min(32767, math.Round(sum))))
	}
	return out
}

// wav8k writes 8 kHz mono 16-bit PCM as a WAV file.
func wav8k(pcm []int16) []byte {
	var b bytes.Buffer
	data := len(pcm) * 2
	le := binary.LittleEndian
	b.WriteString("RIFF")
	binary.Write(&b, le, uint32(36+data))
	b.WriteString("WAVEfmt ")
	binary.Write(&b, le, uint32(16))
	binary.Write(&b, le, uint16(1))
	binary.Write(&b, le, uint16(1))
	binary.Write(&b, le, uint32(8000))
	binary.Write(&b, le, uint32(16000))
	binary.Write(&b, le, uint16(2))
	binary.Write(&b, le, uint16(16))
	b.WriteString("data")
	binary.Write(&b, le, uint32(data))
	binary.Write(&b, le, pcm)
	return b.Bytes()
}

// pollyLanguage gives the language of Amazon Polly's voices that Connect
// flows name most, so a flow that sets only the voice is spoken in its
// language.
var pollyLanguage = map[string]string{
	"Joanna": "en-US", "Matthew": "en-US", "Ivy": "en-US", "Kendra": "en-US", "Kimberly": "en-US", "Salli": "en-US",
	"Joey": "en-US", "Justin": "en-US", "Kevin": "en-US", "Ruth": "en-US", "Stephen": "en-US", "Danielle": "en-US", "Gregory": "en-US",
	"Amy": "en-GB", "Brian": "en-GB", "Emma": "en-GB", "Arthur": "en-GB",
	"Nicole": "en-AU", "Russell": "en-AU", "Olivia": "en-AU",
	"Aditi": "en-IN", "Raveena": "en-IN", "Kajal": "en-IN",
	"Hans": "de-DE", "Marlene": "de-DE", "Vicki": "de-DE", "Daniel": "de-DE",
	"Celine": "fr-FR", "Céline": "fr-FR", "Lea": "fr-FR", "Léa": "fr-FR", "Mathieu": "fr-FR", "Remi": "fr-FR",
	"Chantal": "fr-CA", "Gabrielle": "fr-CA", "Liam": "fr-CA",
	"Conchita": "es-ES", "Enrique": "es-ES", "Lucia": "es-ES", "Sergio": "es-ES",
	"Lupe": "es-US", "Miguel": "es-US", "Penelope": "es-US", "Pedro": "es-US", "Mia": "es-MX", "Andres": "es-MX",
	"Carla": "it-IT", "Bianca": "it-IT", "Giorgio": "it-IT", "Adriano": "it-IT",
	"Camila": "pt-BR", "Vitoria": "pt-BR", "Ricardo": "pt-BR", "Thiago": "pt-BR", "Ines": "pt-PT", "Cristiano": "pt-PT",
	"Mizuki": "ja", "Takumi": "ja", "Kazuha": "ja", "Tomoko": "ja", "Zhiyu": "cmn",
}
