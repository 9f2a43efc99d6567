package connect

import (
	"os"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// TestDocListsEveryAction keeps docs/connect-import.md's action tables and
// the importer in step: every type it names is one the importer knows, and
// every type the importer knows is in a table.
func TestDocListsEveryAction(t *testing.T) {
	data, err := os.ReadFile("../../docs/connect-import.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)
	start := strings.Index(doc, "## Every Connect action")
	end := strings.Index(doc, "## References")
	if start < 0 || end < start {
		t.Fatal("no action section")
	}
	documented := map[string]bool{}
	typeRE := regexp.MustCompile("`([A-Z][A-Za-z]+)`")
	for _, line := range strings.Split(doc[start:end], "\n") {
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		first := strings.Split(line, "|")[1]
		for _, m := range typeRE.FindAllStringSubmatch(first, -1) {
			documented[m[1]] = true
		}
	}
	known := map[string]bool{"CheckHoursOfOperation": true}
	for _, m := range []map[string]string{noops, refused} {
		for k := range m {
			known[k] = true
		}
	}
	for k := range converters {
		known[k] = true
	}
	var missing, unknown []string
	for k := range known {
		if !documented[k] {
			missing = append(missing, k)
		}
	}
	for k := range documented {
		if !known[k] {
			unknown = append(unknown, k)
		}
	}
	sort.Strings(missing)
	sort.Strings(unknown)
	if len(missing) > 0 {
		t.Errorf("the importer knows %v; the doc's tables do not name them", missing)
	}
	if len(unknown) > 0 {
		t.Errorf("the doc names %v; the importer does not know them", unknown)
	}
}
