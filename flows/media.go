package flows

import (
	"errors"
	"fmt"
	"regexp"
)

// ErrInvalidMedia is wrapped by ValidateMediaURI.
var ErrInvalidMedia = errors.New("invalid media URI")

// mediaRE allows the ARI media schemes and a conservative character set:
// ARI splits its media parameter on ',', so a comma could smuggle in a
// second URI.
var mediaRE = regexp.MustCompile(`^(sound|recording|number|digits|characters|tone):[A-Za-z0-9_./;=+*#@-]{1,200}$`)

// ValidateMediaURI checks a prompt such as "sound:hello-world"; the
// controller uses it for prompts that come from attributes.
func ValidateMediaURI(s string) error {
	if !mediaRE.MatchString(s) {
		return fmt.Errorf("%w %q: want sound:, recording:, number:, digits:, characters: or tone: followed by A-Z a-z 0-9 _ . / ; = + * # @ -", ErrInvalidMedia, s)
	}
	return nil
}
