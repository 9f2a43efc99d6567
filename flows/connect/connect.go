// Package connect imports Amazon Connect flows: it reads the flow
// language's JSON exports (one flow, a directory of them, or an instance
// export), maps each action to ariflow blocks through the mapping files
// (Lambda functions, queues, prompts, Lex bots, flows imported before),
// writes the YAML flows, validates them as one set with package flows, and
// reports by action what became of each one or why it was refused, every
// problem in one pass. It depends on flows, never the reverse.
package connect

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/ariflow/ariflow/flows"
)

// Amazon Connect flow language (its JSON export: Version, StartAction,
// Metadata, Actions with Identifier, Type, Parameters, Transitions).
type connectFlow struct {
	Version     string          `json:"Version"`
	StartAction string          `json:"StartAction"`
	Metadata    json.RawMessage `json:"Metadata"`
	Actions     []connectAction `json:"Actions"`
}

type connectTransition struct {
	NextAction string `json:"NextAction"`
	ErrorType  string `json:"ErrorType"`
	Condition  struct {
		Operator string   `json:"Operator"`
		Operands []string `json:"Operands"`
	} `json:"Condition"`
}

type connectAction struct {
	Identifier  string                     `json:"Identifier"`
	Type        string                     `json:"Type"`
	Parameters  map[string]json.RawMessage `json:"Parameters"`
	Transitions struct {
		NextAction string              `json:"NextAction"`
		Errors     []connectTransition `json:"Errors"`
		Conditions []connectTransition `json:"Conditions"`
	} `json:"Transitions"`
}

// describedFlow is a flow as the API describes it (DescribeContactFlow's
// ContactFlow, and the entries of an instance export): the flow language
// as a string in Content.
type describedFlow struct {
	Arn     string `json:"Arn"`
	ID      string `json:"Id"`
	Name    string `json:"Name"`
	Type    string `json:"Type"`
	Content string `json:"Content"`
}

// Input is one exported file: a flow as the designer exports it, a
// DescribeContactFlow answer, or an instance export holding several flows
// ({"ContactFlows": [...]}, or a list).
type Input struct {
	File string
	Data []byte
}

// Result is one imported flow.
type Result struct {
	File   string // the input it came from
	YAML   []byte
	Flow   *flows.Flow // nil when the import failed
	Report *Report
}

// SetResult is every flow of a set import, and the flows it left out.
type SetResult struct {
	Flows   []*Result
	Skipped []Skipped
}

// Skipped is a flow a set import did not import, and why.
type Skipped struct {
	File, Name, Type, Why string
}

// Problem is one reason an import failed: an action that cannot be
// carried over, or a block the loader refuses, named by the Connect action
// it came from.
type Problem struct {
	File   string // the input, for problems with the file itself
	Flow   string // the ariflow flow name
	Action string // the Connect action's identifier, if the problem is one action's
	Type   string // its type
	Msg    string
}

func (p Problem) String() string {
	where := "flow " + p.Flow
	switch {
	case p.Flow == "" && p.File != "":
		where = p.File
	case p.Flow == "":
		where = "import"
	}
	if p.Action != "" {
		return fmt.Sprintf("%s: action %s (%s): %s", where, p.Action, p.Type, p.Msg)
	}
	return where + ": " + p.Msg
}

// Error is every problem of an import, found in one pass.
type Error struct {
	Problems []Problem
}

func (e *Error) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// Import converts one Amazon Connect flow into a validated Flow, with no
// mapping files (see Convert).
func Import(data []byte) (*flows.Flow, error) {
	imp, err := Convert(data, Options{})
	if err != nil {
		return nil, err
	}
	return imp.Flow, nil
}

// Convert converts one Amazon Connect flow (the designer's export, or the
// DescribeContactFlow answer) into ariflow's YAML, validates it, and
// reports how each action was mapped. A TransferToFlow in it must name a
// flow of the -flow-map file (Options.Flows); to import flows that hand
// calls to each other, use ConvertSet. The result (with its report) is
// returned whenever the JSON could be read, also with an error; the error
// is an *Error listing every problem when the flow was read.
func Convert(data []byte, opts Options) (*Result, error) {
	srcs, err := decodeInput("", data)
	if err != nil {
		return nil, err
	}
	if len(srcs) != 1 {
		return nil, fmt.Errorf("connect flow: the file holds %d flows; import them as a set", len(srcs))
	}
	res, err := convertSources(srcs, opts)
	if len(res.Flows) == 1 {
		return res.Flows[0], err
	}
	if err == nil && len(res.Skipped) == 1 {
		s := res.Skipped[0]
		err = &Error{Problems: []Problem{{Flow: s.Name, Msg: "not imported: " + s.Why}}}
	}
	return nil, err
}

// ConvertSet converts a set of Connect flows, which may hand calls to each
// other (TransferToFlow): each input holds one flow or an instance export
// of several. Every flow is converted and the YAML flows are validated
// together, so a TransferToFlow is checked against the flow it continues
// in. Flows that run inside Connect's queues and calls (customer queue,
// hold and whisper flows) are skipped and listed. The result is returned
// also with an error, which is an *Error listing every problem of every
// flow.
func ConvertSet(in []Input, opts Options) (*SetResult, error) {
	var srcs []*source
	var probs []Problem
	for _, i := range in {
		s, err := decodeInput(i.File, i.Data)
		if err != nil {
			probs = append(probs, Problem{File: i.File, Msg: err.Error()})
			continue
		}
		srcs = append(srcs, s...)
	}
	res, err := convertSources(srcs, opts)
	var e *Error
	switch {
	case errors.As(err, &e):
		probs = append(probs, e.Problems...)
	case err != nil:
		return res, err
	}
	if len(probs) > 0 {
		return res, &Error{Problems: probs}
	}
	if len(res.Flows) == 0 {
		return res, fmt.Errorf("connect flows: nothing to import")
	}
	return res, nil
}

// source is one Connect flow read from an input.
type source struct {
	file  string
	title string // Connect's name for it
	id    string // its ID and ARN, when the export has them
	arn   string
	typ   string // its type (CONTACT_FLOW, contactFlow, …), when known
	name  string // the ariflow flow name
	flow  connectFlow
	meta  map[string]actionMeta
	// queues are the queues' names the designer shows, by queue ARN, from
	// any action's metadata (it keeps them beside the transfer, too).
	queues map[string]string
}

// actionMeta is what the flow designer keeps about an action beside the
// flow language: the names it shows for the queue, flow, prompt or bot an
// action refers to by ARN.
type actionMeta struct {
	Queue struct {
		ID   string `json:"id"`
		Text string `json:"text"`
	} `json:"queue"`
	ContactFlow struct {
		ID   string `json:"id"`
		Text string `json:"text"`
	} `json:"contactFlow"`
	PromptName   string                     `json:"promptName"`
	LexV2BotName string                     `json:"lexV2BotName"`
	Parameters   map[string]json.RawMessage `json:"parameters"`
}

// display is the name the designer shows for a parameter: its own field
// (promptName, queue.text, …) or parameters.<param>.displayName.
func (m actionMeta) display(param string) string {
	var d struct {
		DisplayName string `json:"displayName"`
	}
	if raw, ok := m.Parameters[param]; ok && json.Unmarshal(raw, &d) == nil {
		return d.DisplayName
	}
	return ""
}

// decodeInput reads the flows of one input.
func decodeInput(file string, data []byte) ([]*source, error) {
	var probe any
	if err := json.Unmarshal(data, &probe); err != nil {
		return nil, fmt.Errorf("connect flow: %w", err)
	}
	var items []json.RawMessage
	switch v := probe.(type) {
	case []any:
		if err := json.Unmarshal(data, &items); err != nil {
			return nil, fmt.Errorf("connect flow: %w", err)
		}
	case map[string]any:
		if _, ok := v["ContactFlows"]; ok {
			var all struct {
				ContactFlows []json.RawMessage `json:"ContactFlows"`
			}
			if err := json.Unmarshal(data, &all); err != nil {
				return nil, fmt.Errorf("connect flow: ContactFlows: %w", err)
			}
			items = all.ContactFlows
		} else {
			items = []json.RawMessage{data}
		}
	default:
		return nil, fmt.Errorf("connect flow: want a JSON object or list, got %T", probe)
	}
	var out []*source
	for i, raw := range items {
		s, err := decodeFlow(raw)
		if err != nil {
			if len(items) > 1 {
				return nil, fmt.Errorf("connect flow #%d: %w", i+1, err)
			}
			return nil, err
		}
		s.file = file
		if s.title == "" && file != "" {
			s.title = strings.TrimSuffix(filepath.Base(file), filepath.Ext(file))
		}
		s.name = flowName(s.title)
		out = append(out, s)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("connect flow: no flows")
	}
	return out, nil
}

// decodeFlow reads one flow: the flow language itself, a
// DescribeContactFlow answer ({"ContactFlow": …}), or a described flow.
func decodeFlow(raw []byte) (*source, error) {
	s := &source{}
	var wrapped struct {
		ContactFlow *describedFlow `json:"ContactFlow"`
		describedFlow
	}
	if err := json.Unmarshal(raw, &wrapped); err != nil {
		return nil, fmt.Errorf("connect flow: %w", err)
	}
	d := wrapped.ContactFlow
	if d == nil && wrapped.Content != "" {
		d = &wrapped.describedFlow
	}
	content := raw
	if d != nil {
		if d.Content == "" {
			return nil, fmt.Errorf("connect flow: %s has no Content", d.Name)
		}
		content = []byte(d.Content)
		s.title, s.id, s.arn, s.typ = d.Name, d.ID, d.Arn, d.Type
		where := "ContactFlow.Content"
		if wrapped.ContactFlow == nil {
			where = "Content"
		}
		if err := json.Unmarshal(content, &s.flow); err != nil {
			return nil, fmt.Errorf("connect flow: %s: %w", where, err)
		}
	} else if err := json.Unmarshal(content, &s.flow); err != nil {
		return nil, fmt.Errorf("connect flow: %w", err)
	}
	if len(s.flow.Actions) == 0 {
		return nil, fmt.Errorf("connect flow: no Actions")
	}
	var meta struct {
		Name           string                     `json:"name"`
		Type           string                     `json:"type"`
		ActionMetadata map[string]json.RawMessage `json:"ActionMetadata"`
	}
	_ = json.Unmarshal(s.flow.Metadata, &meta) // optional
	if s.title == "" {
		s.title = meta.Name
	}
	if s.typ == "" {
		s.typ = meta.Type
	}
	s.meta = map[string]actionMeta{}
	s.queues = map[string]string{}
	for id, raw := range meta.ActionMetadata {
		var m actionMeta
		if json.Unmarshal(raw, &m) == nil {
			s.meta[id] = m
			if m.Queue.ID != "" && m.Queue.Text != "" {
				s.queues[m.Queue.ID] = m.Queue.Text
			}
		}
	}
	return s, nil
}

// flowName makes a Connect flow's name an ariflow flow name.
func flowName(title string) string {
	name := strings.Trim(unsafeNameChars.ReplaceAllString(strings.ToLower(title), "_"), "_")
	if name == "" {
		name = "imported"
	}
	return name
}

var unsafeNameChars = regexp.MustCompile(`[^a-z0-9_-]`)

// skippedTypes are the Connect flow types that run inside Connect's own
// queue, hold and whisper handling: ariflow's queues are the dialplan's,
// so these have nothing to run.
var skippedTypes = map[string]string{
	"customer_queue":   "a customer queue flow plays to callers waiting in Connect's queue; the dialplan queue plays what they hear",
	"customer_hold":    "a hold flow runs while an agent holds the caller in Connect",
	"customer_whisper": "a whisper flow runs when a Connect agent answers",
	"agent_hold":       "a hold flow runs while an agent holds the caller in Connect",
	"agent_whisper":    "a whisper flow runs when a Connect agent answers",
	"outbound_whisper": "a whisper flow runs on Connect's outbound calls",
	"campaign":         "a campaign flow runs Connect's outbound campaigns",
}

// typeKey folds CUSTOMER_QUEUE and customerQueue to customer_queue.
func typeKey(t string) string {
	var b strings.Builder
	for i, r := range t {
		if r >= 'A' && r <= 'Z' && i > 0 && t[i-1] >= 'a' && t[i-1] <= 'z' {
			b.WriteByte('_')
		}
		b.WriteRune(r)
	}
	return strings.ToLower(b.String())
}

// set is what the flows of one import know of each other.
type set struct {
	opts    Options
	sources []*source
	// external are the ariflow flows a TransferToFlow continues in that
	// this import does not hold (named by the -flow-map file).
	external map[string]bool
}

// flowFor finds the flow a TransferToFlow names by ARN or ID (display is
// the name the designer shows for it): in the -flow-map file, then among
// the flows of this import. external is true for a flow of the map that
// this import does not hold.
func (s *set) flowFor(ref, display string) (name string, external bool, ok bool) {
	if n, ok := lookup(s.opts.Flows, ref, display); ok {
		for _, src := range s.sources {
			if src.name == n {
				return n, false, true
			}
		}
		return n, true, true
	}
	last := ref
	if i := strings.LastIndex(ref, "/"); i >= 0 {
		last = ref[i+1:]
	}
	for _, src := range s.sources {
		if ref != "" && (src.arn == ref || src.id == ref || src.id == last) {
			return src.name, false, true
		}
	}
	for _, src := range s.sources {
		if display != "" && strings.EqualFold(src.title, display) {
			return src.name, false, true
		}
	}
	return "", false, false
}

// convertSources converts the flows, then validates the YAML flows as one
// set and maps what the loader refuses back to the actions.
func convertSources(srcs []*source, opts Options) (*SetResult, error) {
	res := &SetResult{}
	s := &set{opts: opts, external: map[string]bool{}}
	names := newIDs()
	for _, src := range srcs {
		if why, skip := skippedTypes[typeKey(src.typ)]; skip {
			res.Skipped = append(res.Skipped, Skipped{File: src.file, Name: src.title, Type: src.typ, Why: why})
			continue
		}
		src.name = names.unique(src.name)
		s.sources = append(s.sources, src)
	}
	var probs []Problem
	if len(opts.Entries) > 0 {
		if len(s.sources) != 1 {
			probs = append(probs, Problem{Msg: fmt.Sprintf("entries %s given for %d flows: name the flow each starts (FLOW=NUMBERS)", strings.Join(opts.Entries, ","), len(s.sources))})
		} else {
			fe := map[string][]string{s.sources[0].name: opts.Entries}
			for k, v := range opts.FlowEntries {
				fe[k] = v
			}
			s.opts.FlowEntries = fe
		}
	}
	for name := range opts.FlowEntries {
		found := false
		for _, src := range s.sources {
			found = found || src.name == name
		}
		if !found {
			probs = append(probs, Problem{Msg: fmt.Sprintf("entries given for flow %s, which this import does not hold", name)})
		}
	}
	convs := make([]*converter, 0, len(s.sources))
	for _, src := range s.sources {
		c := newConverter(s, src)
		r := c.run()
		res.Flows = append(res.Flows, r)
		convs = append(convs, c)
		probs = append(probs, c.problems...)
	}
	probs = append(probs, validate(s, convs)...)
	if len(probs) > 0 {
		for _, r := range res.Flows {
			r.Flow = nil
		}
		return res, &Error{Problems: probs}
	}
	return res, nil
}

// validate loads the YAML of every flow as one set (with a stand-in for
// each flow of the -flow-map file this import does not hold) and turns
// the loader's complaints into problems of the actions the blocks came
// from. Complaints about the stand-ins of refused actions, and about
// blocks left unreachable by them, say nothing new and are dropped.
func validate(s *set, convs []*converter) []Problem {
	byFile := map[string]*converter{}
	var files []flows.File
	for _, c := range convs {
		if c.yaml == nil {
			continue
		}
		file := c.src.name + ".yaml"
		byFile[file] = c
		files = append(files, flows.File{Name: file, Data: c.yaml})
	}
	if len(files) == 0 {
		return nil
	}
	ext := make([]string, 0, len(s.external))
	for n := range s.external {
		ext = append(ext, n)
	}
	sort.Strings(ext)
	for _, n := range ext {
		files = append(files, flows.File{Name: "(-flow-map) " + n,
			Data: fmt.Appendf(nil, "name: %s\nversion: \"0\"\nentry: [\"-flow-map-%s\"]\nstart: end\nblocks:\n  end: {type: Disconnect}\n", n, n)})
	}
	loaded, err := flows.ParseSet(flows.LoadOptions{DefaultRegion: s.opts.DefaultRegion, EndpointTechs: s.opts.EndpointTechs}, files...)
	var list flows.ErrorList
	if err != nil && !errors.As(err, &list) {
		return []Problem{{Msg: err.Error()}}
	}
	var probs []Problem
	for _, e := range list {
		c := byFile[e.File]
		if c == nil {
			continue // a stand-in
		}
		p := Problem{Flow: c.src.name, Msg: e.Msg}
		if m := quotedBlockRE.FindStringSubmatch(e.Msg); m != nil {
			if c.placeholder[m[1]] {
				continue
			}
			if a := c.actionOf[m[1]]; a != nil {
				p.Action, p.Type = a.Identifier, a.Type
			}
		}
		if len(c.problems) > 0 && strings.Contains(e.Msg, "is not reachable from start block") {
			continue
		}
		probs = append(probs, p)
	}
	if loaded != nil {
		for _, c := range convs {
			c.result.Flow, _ = loaded.Flow(c.src.name)
		}
	}
	return probs
}

var quotedBlockRE = regexp.MustCompile(`block "([^"]+)"`)

// marshal writes a flow's YAML.
func marshal(doc *orderedMap) ([]byte, error) {
	out, err := yaml.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("connect flow: %w", err)
	}
	return out, nil
}
