package flows

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// FuzzLoad: the loader must never panic, and whatever it accepts must be
// internally consistent (start and all branch targets exist).
func FuzzLoad(f *testing.F) {
	for _, glob := range []string{"examples/*.yaml", "testdata/broken/*.yaml"} {
		files, _ := filepath.Glob(glob)
		for _, file := range files {
			data, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(data)
		}
	}
	f.Add([]byte(validFlow))
	f.Add([]byte(strings.Replace(loopFlow, "COUNT", "3", 1)))
	f.Add([]byte(billingFlow))
	f.Add([]byte(mainFlow))
	f.Add([]byte(""))
	f.Add([]byte("{"))
	f.Add([]byte("a: &a [*a, *a]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, region := range []string{"", "DE"} {
			fl, err := Parse("fuzz.yaml", data, LoadOptions{DefaultRegion: region})
			if err != nil {
				continue
			}
			if _, ok := fl.Blocks[fl.Start]; !ok {
				t.Fatalf("accepted flow with missing start %q", fl.Start)
			}
			for id, b := range fl.Blocks {
				for br, to := range b.Branches {
					if _, ok := fl.Blocks[to]; !ok {
						t.Fatalf("accepted %s.%s -> missing %q", id, br, to)
					}
				}
			}
			_ = Mermaid(fl)
			_ = DOT(fl)
		}
	})
}

var acceptedNumber = regexp.MustCompile(`^\+[0-9]{6,15}$`)

func FuzzNormalizeNumber(f *testing.F) {
	for _, s := range []string{"+4930123456", "030123456", "004930123456", "123&PJSIP/999", "+49 30 123", "+", "", "\x00", "+441632960000", "+12025550123"} {
		f.Add(s, "DE")
		f.Add(s, "")
	}
	f.Fuzz(func(t *testing.T, raw, region string) {
		got, err := NormalizeNumber(raw, region)
		if err != nil {
			return
		}
		if !acceptedNumber.MatchString(got) {
			t.Fatalf("NormalizeNumber(%q, %q) = %q", raw, region, got)
		}
		// Idempotent: an accepted E.164 number stays the same.
		if again, err := NormalizeNumber(got, ""); err != nil || again != got {
			t.Fatalf("NormalizeNumber(%q) = %q, %v; want itself", got, again, err)
		}
	})
}
