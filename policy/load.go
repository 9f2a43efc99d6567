package policy

import (
	"fmt"
	"os"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/nyaruka/phonenumbers"
	"gopkg.in/yaml.v3"

	"github.com/ariflow/ariflow/internal/fileerr"
)

// Load reads and validates a policy file. Every problem is reported, as a
// fileerr.List of "file:line: message". Settings left out keep
// Default()'s values, so a file only says what it changes.
func Load(path string) (*Policy, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("dial policy: %w", err)
	}
	return Parse(path, data)
}

// Parse is Load for data already read; file names the errors.
func Parse(file string, data []byte) (*Policy, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fileerr.List{{File: file, Msg: strings.TrimPrefix(err.Error(), "yaml: ")}}
	}
	if len(doc.Content) == 0 {
		return Default(), nil // an empty file is the default policy
	}
	return parseNode(file, doc.Content[0], Default(), false)
}

// ParseFlow reads a flow file's dial_policy section, which narrows the
// operator's policy (see Policy.Narrow): destinations (allow, deny),
// transfers_per_call and endpoint_technologies. It starts from a policy
// that allows every destination and names no technology, so only what
// the flow states narrows anything. Rate limits and the concurrency cap
// belong to the operator alone: a flow that sets them gets an error, not
// a setting silently ignored.
func ParseFlow(file string, n *yaml.Node) (*Policy, error) {
	open := &Policy{}
	for _, t := range typeNames {
		open.AllowTypes = append(open.AllowTypes, t)
	}
	slices.Sort(open.AllowTypes)
	return parseNode(file, n, open, true)
}

func parseNode(file string, root *yaml.Node, start *Policy, flow bool) (*Policy, error) {
	l := &loader{file: file, p: start}
	techLine := 0
	if flow {
		l.prefix = "dial_policy: "
	}
	handlers := map[string]func(*yaml.Node){
		"allow": func(n *yaml.Node) {
			l.fields(n, "allow.", map[string]func(*yaml.Node){
				"countries": func(n *yaml.Node) { l.p.AllowCountries = l.countries(n) },
				"prefixes":  func(n *yaml.Node) { l.p.AllowPrefixes = l.prefixes(n, "allow.prefixes") },
				"types":     func(n *yaml.Node) { l.p.AllowTypes = l.types(n, "allow.types") },
			})
		},
		"deny": func(n *yaml.Node) {
			l.fields(n, "deny.", map[string]func(*yaml.Node){
				"prefixes": func(n *yaml.Node) { l.p.DenyPrefixes = l.prefixes(n, "deny.prefixes") },
				"families": func(n *yaml.Node) { l.p.DenyFamilies = l.families(n) },
				"types": func(n *yaml.Node) {
					denied := l.types(n, "deny.types")
					l.p.AllowTypes = slices.DeleteFunc(l.p.AllowTypes, func(t phonenumbers.PhoneNumberType) bool { return slices.Contains(denied, t) })
				},
			})
		},
		"transfers_per_call": func(n *yaml.Node) { l.p.TransfersPerCall = l.count(n, "transfers_per_call") },
		"concurrent":         func(n *yaml.Node) { l.p.Concurrent = l.count(n, "concurrent") },
		"rate": func(n *yaml.Node) {
			l.fields(n, "rate.", map[string]func(*yaml.Node){
				"per_caller": func(n *yaml.Node) { l.p.PerCaller = l.rate(n, "rate.per_caller") },
				"per_entry":  func(n *yaml.Node) { l.p.PerEntry = l.rate(n, "rate.per_entry") },
				"global":     func(n *yaml.Node) { l.p.Global = l.rate(n, "rate.global") },
			})
		},
		"endpoint_technologies": func(n *yaml.Node) { l.p.EndpointTechs = l.techs(n); techLine = n.Line },
		"local_contexts":        func(n *yaml.Node) { l.p.LocalContexts = l.contexts(n) },
	}
	if flow {
		for _, k := range []string{"rate", "concurrent"} {
			handlers[k] = func(n *yaml.Node) {
				l.errf(n.Line, "%s: rate limits and the concurrency cap are set in the operator's dial policy file; a flow can only narrow allow, deny, transfers_per_call and endpoint_technologies", k)
			}
		}
	}
	l.fields(root, "", handlers)
	if !flow && len(l.p.LocalContexts) == 0 && slices.ContainsFunc(l.p.EndpointTechs, func(t string) bool { return strings.EqualFold(t, "Local") }) {
		// A flow's dial_policy only narrows: the operator's contexts apply.
		l.errf(techLine, "endpoint_technologies names Local: name the dialplan contexts a Local endpoint may enter in local_contexts (like [agents]); Local into any context dials around this policy")
	}
	if len(l.errs) > 0 {
		return nil, l.errs
	}
	return l.p, nil
}

type loader struct {
	file   string
	prefix string // "dial_policy: " inside a flow file, for messages
	p      *Policy
	errs   fileerr.List
}

func (l *loader) errf(line int, format string, a ...any) {
	msg := fmt.Sprintf(format, a...)
	if l.prefix != "" && !strings.HasPrefix(msg, l.prefix) {
		msg = l.prefix + msg
	}
	l.errs = append(l.errs, &fileerr.Error{File: l.file, Line: line, Msg: msg})
}

// fields calls each known key's handler; unknown and repeated keys are errors.
func (l *loader) fields(n *yaml.Node, prefix string, handlers map[string]func(*yaml.Node)) {
	if n.Kind != yaml.MappingNode {
		switch name := strings.TrimSuffix(prefix, "."); {
		case name != "":
			l.errf(n.Line, "%s: want a mapping", name)
		case l.prefix != "":
			l.errf(n.Line, "want a mapping")
		default:
			l.errf(n.Line, "policy: want a mapping")
		}
		return
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		h, ok := handlers[k.Value]
		if !ok {
			names := make([]string, 0, len(handlers))
			for name := range handlers {
				names = append(names, prefix+name)
			}
			sort.Strings(names)
			l.errf(k.Line, "unknown setting %q (known: %s)", prefix+k.Value, strings.Join(names, ", "))
			continue
		}
		if seen[k.Value] {
			l.errf(k.Line, "%s%s is set twice", prefix, k.Value)
			continue
		}
		seen[k.Value] = true
		h(v)
	}
}

// list returns a sequence's items; a scalar or mapping is an error.
func (l *loader) list(n *yaml.Node, name string) []*yaml.Node {
	if n.Kind != yaml.SequenceNode {
		l.errf(n.Line, "%s: want a list", name)
		return nil
	}
	for _, it := range n.Content {
		if it.Kind != yaml.ScalarNode {
			l.errf(it.Line, "%s: want a list of plain values", name)
			return nil
		}
	}
	return n.Content
}

// countries accepts calling codes written as 49 or "+49".
func (l *loader) countries(n *yaml.Node) []int {
	out := []int{}
	for _, it := range l.list(n, "allow.countries") {
		cc, err := strconv.Atoi(strings.TrimPrefix(it.Value, "+"))
		if err != nil || cc <= 0 || phonenumbers.GetRegionCodeForCountryCode(cc) == "ZZ" {
			l.errf(it.Line, "allow.countries: %q is not a country calling code (like 49 or +1)", it.Value)
			continue
		}
		out = append(out, cc)
	}
	return out
}

var prefixRE = regexp.MustCompile(`^\+[1-9][0-9]{0,14}$`)

func (l *loader) prefixes(n *yaml.Node, name string) []string {
	out := []string{}
	for _, it := range l.list(n, name) {
		if !prefixRE.MatchString(it.Value) {
			l.errf(it.Line, "%s: %q is not an E.164 prefix (like +49900)", name, it.Value)
			continue
		}
		out = append(out, it.Value)
	}
	return out
}

func (l *loader) types(n *yaml.Node, name string) []phonenumbers.PhoneNumberType {
	out := []phonenumbers.PhoneNumberType{}
	for _, it := range l.list(n, name) {
		t, ok := typeNames[it.Value]
		if !ok {
			names := make([]string, 0, len(typeNames))
			for k := range typeNames {
				names = append(names, k)
			}
			sort.Strings(names)
			l.errf(it.Line, "%s: unknown number type %q (known: %s)", name, it.Value, strings.Join(names, ", "))
			continue
		}
		out = append(out, t)
	}
	return out
}

func (l *loader) count(n *yaml.Node, name string) int {
	v, err := strconv.Atoi(n.Value)
	if n.Kind != yaml.ScalarNode || err != nil || v < 0 || v > 1_000_000 {
		l.errf(n.Line, "%s: want a whole number 0..1000000 (0: no limit), got %q", name, n.Value)
		return 0
	}
	return v
}

// rate reads {count: 30, window: 1h}.
func (l *loader) rate(n *yaml.Node, name string) Rate {
	var r Rate
	var windowLine int
	l.fields(n, name+".", map[string]func(*yaml.Node){
		"count": func(n *yaml.Node) { r.Count = l.count(n, name+".count") },
		"window": func(n *yaml.Node) {
			windowLine = n.Line
			d, err := time.ParseDuration(n.Value)
			if n.Kind != yaml.ScalarNode || err != nil || d < time.Second || d > 7*24*time.Hour {
				l.errf(n.Line, "%s.window: want a duration from 1s to 168h (like 10m or 1h), got %q", name, n.Value)
				return
			}
			r.Window = d
		},
	})
	if r.Count > 0 && r.Window == 0 && windowLine == 0 {
		l.errf(n.Line, "%s: a count needs a window (like window: 1h)", name)
	}
	return r
}

func (l *loader) techs(n *yaml.Node) []string {
	out := []string{}
	for _, it := range l.list(n, "endpoint_technologies") {
		if !techRE.MatchString(it.Value) {
			l.errf(it.Line, "endpoint_technologies: %q is not a channel technology (like PJSIP or Local)", it.Value)
			continue
		}
		out = append(out, it.Value)
	}
	return out
}

var techRE = regexp.MustCompile(`^[A-Za-z0-9]{1,16}$`)

// contextRE is what flows.ParseEndpoint lets through as a Local context.
var contextRE = regexp.MustCompile(`^[A-Za-z0-9_.+-]{1,79}$`)

func (l *loader) contexts(n *yaml.Node) []string {
	out := []string{}
	for _, it := range l.list(n, "local_contexts") {
		if !contextRE.MatchString(it.Value) {
			l.errf(it.Line, "local_contexts: %q is not a dialplan context name (A-Z a-z 0-9 _ . + -)", it.Value)
			continue
		}
		out = append(out, it.Value)
	}
	return out
}

func (l *loader) families(n *yaml.Node) []string {
	out := []string{}
	for _, it := range l.list(n, "deny.families") {
		if !slices.Contains(Families, it.Value) {
			l.errf(it.Line, "deny.families: unknown family %q (known: %s)", it.Value, strings.Join(Families, ", "))
			continue
		}
		out = append(out, it.Value)
	}
	return out
}
