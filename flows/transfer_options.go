package flows

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Sentinel errors of the transfer options' validators; the controller maps
// any of them to the block's Error branch.
var (
	ErrInvalidKey    = errors.New("invalid return key")
	ErrInvalidHeader = errors.New("invalid SIP header")
	ErrInvalidMillis = errors.New("invalid milliseconds")
)

// Bounds of the transfer options.
const (
	MaxNumbers       = 5     // numbers in a list
	MaxReturnKey     = 4     // keys in return_key
	MaxTalkSeconds   = 86400 // max_talk
	MaxWarningBefore = 3600
	DefaultWarning   = 30 // warning_before, seconds
	MaxHeaders       = 10
	MaxHeaderName    = 64  // bytes
	MaxHeaderValue   = 256 // bytes

	// DTMF cadence: each tone lasts DTMFTone and is followed by DTMFGap of
	// silence. Asterisk plays no tone shorter than 100 ms (it lengthens
	// one asked for shorter: measured at the far end), and puts at least
	// 101 ms between tones sent one request each (it waits 100 ms before a
	// request's first tone and 1 ms after its last), so neither bound
	// could be kept below that.
	DefaultDTMFTone = 100
	MinDTMFTone     = 100
	MaxDTMFTone     = 500
	DefaultDTMFGap  = 100
	MinDTMFGap      = 100
	MaxDTMFGap      = 2000
)

// DTMF pauses: ',' is Amazon Connect's (750 ms in its current English
// documentation), 'w' and 'W' Asterisk's and Twilio's.
const (
	PauseComma = 750 // ms
	PauseW     = 500 // ms, 'w'
	PauseBigW  = 1000
)

// DTMFPause is how long a pause character of a DTMF string waits (0 for a
// digit).
func DTMFPause(ch byte) int {
	switch ch {
	case ',':
		return PauseComma
	case 'w':
		return PauseW
	case 'W':
		return PauseBigW
	}
	return 0
}

// ParseMillis parses whole milliseconds; "" gives def.
func ParseMillis(s string, def, min, max int) (int, error) {
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || len(s) > 6 || strings.TrimLeft(s, "0123456789") != "" {
		return 0, fmt.Errorf("%w: %q is not a whole number of milliseconds", ErrInvalidMillis, s)
	}
	if n < min || n > max {
		return 0, fmt.Errorf("%w: %d ms is outside %d..%d", ErrInvalidMillis, n, min, max)
	}
	return n, nil
}

// ParseReturnKey checks a return key: 1 to 4 of 0-9 * # A-D (lowercase
// a-d are upper-cased), such as "*" or "**".
func ParseReturnKey(s string) (string, error) {
	if s == "" {
		return "", fmt.Errorf("%w: empty", ErrInvalidKey)
	}
	if len(s) > MaxReturnKey {
		return "", fmt.Errorf("%w: %q is longer than %d keys", ErrInvalidKey, s, MaxReturnKey)
	}
	b := []byte(s)
	for i, c := range b {
		switch {
		case c >= '0' && c <= '9', c == '*', c == '#', c >= 'A' && c <= 'D':
		case c >= 'a' && c <= 'd':
			b[i] = c - 'a' + 'A'
		default:
			r, _ := utf8.DecodeRuneInString(s[i:])
			return "", fmt.Errorf("%w: character %q at position %d is not allowed (want 0-9 * # A-D)", ErrInvalidKey, r, i+1)
		}
	}
	return string(b), nil
}

// ReservedHeader is the header name ariflow marks its PJSIP legs with
// (added and removed at once, never sent; the transfer package's
// undialledMarker): a block may not add it.
const ReservedHeader = "X-Ariflow-Undialled"

// ValidateHeaderName checks an X- header name: "X-" and then RFC 3261
// token characters, except the quote and backquote (A-Z a-z 0-9 - . ! %
// * _ + ~), at most 64 bytes. Nothing else can be added: the name goes
// into PJSIP_HEADER(add,<name>), where ',' or ')' would change the call.
func ValidateHeaderName(s string) error {
	if len(s) < 3 || !strings.EqualFold(s[:2], "X-") {
		return fmt.Errorf("%w: name %q must start with X- and have more after it", ErrInvalidHeader, s)
	}
	if strings.EqualFold(s, ReservedHeader) {
		return fmt.Errorf("%w: name %q is ariflow's own (it tells a leg never dialled)", ErrInvalidHeader, s)
	}
	if len(s) > MaxHeaderName {
		return fmt.Errorf("%w: name %q is longer than %d bytes", ErrInvalidHeader, s, MaxHeaderName)
	}
	for i, r := range s {
		switch {
		case r >= 'A' && r <= 'Z', r >= 'a' && r <= 'z', r >= '0' && r <= '9', strings.ContainsRune("-.!%*_+~", r):
		default:
			return fmt.Errorf("%w: name %q: character %q at position %d is not allowed", ErrInvalidHeader, s, r, i+1)
		}
	}
	return nil
}

// ValidateHeaderValue checks a header value: valid UTF-8, at most 256
// bytes, no control characters (CR and LF would start a header of the
// caller's choosing) and no invisible format characters.
func ValidateHeaderValue(s string) error {
	if len(s) > MaxHeaderValue {
		return fmt.Errorf("%w: value of %d bytes, at most %d", ErrInvalidHeader, len(s), MaxHeaderValue)
	}
	if !utf8.ValidString(s) {
		return fmt.Errorf("%w: value is not valid UTF-8", ErrInvalidHeader)
	}
	pos := 0
	for _, r := range s {
		pos++
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' || unicode.Is(unicode.Cf, r) {
			return fmt.Errorf("%w: value: character %U at position %d is not allowed", ErrInvalidHeader, r, pos)
		}
	}
	return nil
}
