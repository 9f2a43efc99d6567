package connect

import (
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"
	"text/tabwriter"

	"gopkg.in/yaml.v3"
)

// Options are what an import needs to know that a Connect flow
// keeps outside itself.
type Options struct {
	// Lambdas maps a Lambda function (its ARN, or its name) to the URL of
	// the webhook that does its work.
	Lambdas map[string]string
	// Queues maps a queue (its ARN, its ID, or its name as the flow's
	// metadata shows it) to a dialplan place, "context[,extension[,priority]]".
	Queues map[string]string
	// Prompts maps a Connect prompt (its ARN, its ID, or its name; or an
	// S3 audio URI) to an Asterisk media URI ("sound:custom/welcome") or a
	// sound file under Asterisk's sounds directory ("custom/welcome.wav").
	Prompts map[string]string
	// Lex maps an Amazon Lex bot (its alias ARN, its bot ID or its name) to
	// the URL of a webhook that answers for it with IntentName and slots.
	Lex map[string]string
	// Flows maps a Connect flow not in this import (its ARN, ID or name) to
	// the ariflow flow a TransferToFlow continues in.
	Flows map[string]string
	// FlowEntries are the entries of the flows of a set import, by ariflow
	// flow name; a flow not listed gets its name.
	FlowEntries map[string][]string
	// Hours is how CheckHoursOfOperation is taken: "open" or "closed"
	// always; "" leaves it not mapped.
	Hours string
	// DefaultRegion and EndpointTechs are the loader's (flows.LoadOptions).
	DefaultRegion string
	EndpointTechs []string
	// Entries are the flow's entries (the called numbers or Stasis
	// arguments that start it); empty: the flow's name.
	Entries []string
}

// ParseMap reads a mapping file: a YAML (or JSON) mapping of
// strings to strings, such as
//
//	arn:aws:lambda:eu-central-1:123456789012:function:lookup: https://crm.example.com/lookup
//
// Errors name the file and line.
func ParseMap(file string, data []byte) (map[string]string, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	out := map[string]string{}
	if len(doc.Content) == 0 {
		return out, nil
	}
	m := doc.Content[0]
	if m.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s:%d: want a mapping of names to values", file, m.Line)
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		k, v := m.Content[i], m.Content[i+1]
		if k.Kind != yaml.ScalarNode || v.Kind != yaml.ScalarNode || k.Value == "" || v.Value == "" {
			return nil, fmt.Errorf("%s:%d: want \"name: value\" with two non-empty strings", file, k.Line)
		}
		if _, dup := out[k.Value]; dup {
			return nil, fmt.Errorf("%s:%d: %q is mapped twice", file, k.Line, k.Value)
		}
		out[k.Value] = v.Value
	}
	return out, nil
}

// lookup finds a Connect resource in a mapping: by its ARN or ID as
// written, then by the last part of the ARN (a function's name, a queue's
// ID), then by its display name.
func lookup(m map[string]string, arn, display string) (string, bool) {
	keys := []string{arn}
	if i := strings.LastIndexAny(arn, ":/"); i >= 0 && i+1 < len(arn) {
		keys = append(keys, arn[i+1:])
	}
	if display != "" {
		keys = append(keys, display)
	}
	for _, k := range keys {
		if v, ok := m[k]; ok {
			return v, true
		}
	}
	return "", false
}

// DialplanPlace is a place in the Asterisk dialplan.
type DialplanPlace struct {
	Context   string
	Extension string
	Priority  int
}

var dialplanNameRE = regexp.MustCompile(`^[A-Za-z0-9_.+*#-]{1,80}$`)

// ParseDialplanTarget reads "context[,extension[,priority]]"; the
// extension defaults to "s".
func ParseDialplanTarget(s string) (DialplanPlace, error) {
	parts := strings.Split(s, ",")
	if len(parts) > 3 {
		return DialplanPlace{}, fmt.Errorf("%q: want context[,extension[,priority]]", s)
	}
	t := DialplanPlace{Context: strings.TrimSpace(parts[0]), Extension: "s"}
	if len(parts) > 1 {
		t.Extension = strings.TrimSpace(parts[1])
	}
	if len(parts) > 2 {
		n, err := strconv.Atoi(strings.TrimSpace(parts[2]))
		if err != nil || n < 1 {
			return DialplanPlace{}, fmt.Errorf("%q: priority must be a whole number from 1", s)
		}
		t.Priority = n
	}
	if !dialplanNameRE.MatchString(t.Context) || !dialplanNameRE.MatchString(t.Extension) {
		return DialplanPlace{}, fmt.Errorf("%q: context and extension hold 1..80 of A-Z a-z 0-9 _ . + * # -", s)
	}
	return t, nil
}

// Report says how each action of a Connect flow was mapped.
type Report struct {
	Flow    string // the imported flow's name
	Title   string // Connect's name for it
	File    string // the input it came from
	Start   string // its start block, "" when the import could not tell
	Actions []Mapping
}

// Mapping is what became of one action.
type Mapping struct {
	Identifier string
	Type       string
	Reachable  bool
	Block      string   // the block it became, if any
	Result     string   // "block x (Type)", "no-op (why)", "not mapped: why" or "not reachable …"
	Notes      []string // what of the action was not carried over
}

// WriteText writes the report as a table, one action a line, with notes
// indented below.
func (r *Report) WriteText(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "# Amazon Connect import: flow %q", r.Flow)
	if r.Title != "" && r.Title != r.Flow {
		fmt.Fprintf(tw, " (Connect: %q)", r.Title)
	}
	if r.File != "" {
		fmt.Fprintf(tw, " from %s", r.File)
	}
	if r.Start != "" {
		fmt.Fprintf(tw, ", start block %q", r.Start)
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "IDENTIFIER\tTYPE\tMAPPING")
	for _, a := range r.Actions {
		fmt.Fprintf(tw, "%s\t%s\t%s\n", a.Identifier, a.Type, a.Result)
		for _, n := range a.Notes {
			fmt.Fprintf(tw, "\t\t  note: %s\n", n)
		}
	}
	return tw.Flush()
}

// WriteText writes the report of every flow, then the flows left out.
func (r *SetResult) WriteText(w io.Writer) error {
	for i, f := range r.Flows {
		if i > 0 {
			if _, err := fmt.Fprintln(w); err != nil {
				return err
			}
		}
		if err := f.Report.WriteText(w); err != nil {
			return err
		}
	}
	for _, s := range r.Skipped {
		if _, err := fmt.Fprintf(w, "# skipped: %q (%s) from %s: %s\n", s.Name, s.Type, s.File, s.Why); err != nil {
			return err
		}
	}
	return nil
}

// orderedMap is a YAML mapping that keeps its keys in insertion order (the
// generated file reads type first, branches last), with an optional head
// comment.
type orderedMap struct {
	keys    []string
	vals    map[string]any
	comment string
}

func (m *orderedMap) set(k string, v any) {
	if m.vals == nil {
		m.vals = map[string]any{}
	}
	if _, ok := m.vals[k]; !ok {
		m.keys = append(m.keys, k)
	}
	m.vals[k] = v
}

func (m *orderedMap) get(k string) any { return m.vals[k] }

func (m *orderedMap) MarshalYAML() (any, error) {
	n := &yaml.Node{Kind: yaml.MappingNode}
	for _, k := range m.keys {
		key := &yaml.Node{Kind: yaml.ScalarNode, Value: k}
		var inner *orderedMap
		switch x := m.vals[k].(type) {
		case *orderedMap:
			inner = x
		case *blockBuilder:
			inner = x.orderedMap
		}
		if inner != nil {
			// Directly, not through Node.Encode, which drops comments.
			v, err := inner.MarshalYAML()
			if err != nil {
				return nil, err
			}
			key.HeadComment = inner.comment
			n.Content = append(n.Content, key, v.(*yaml.Node))
			continue
		}
		var v yaml.Node
		if err := v.Encode(m.vals[k]); err != nil {
			return nil, err
		}
		n.Content = append(n.Content, key, &v)
	}
	return n, nil
}
