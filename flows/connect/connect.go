// Package connect imports Amazon Connect flows: it reads the flow
// language's JSON exports (one flow, a directory of them, or an instance
// export), maps each action to ariflow blocks through the mapping files
// (Lambda functions, queues, prompts, Lex bots), writes the YAML flows,
// validates them with package flows, and reports by action what became of
// each one or why it was refused. It depends on flows, never the reverse.
package connect

import (
	"github.com/ariflow/ariflow/flows"

	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Amazon Connect flow language (its JSON export: Version, StartAction,
// Actions with Identifier, Type, Parameters, Transitions), the subset
// ariflow imports. map.go holds the mapping files and the report.
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

// Import converts an Amazon Connect flow-language export into a
// validated flows.Flow, with no mapping files (see Convert).
func Import(data []byte) (*flows.Flow, error) {
	imp, err := Convert(data, Options{})
	if err != nil {
		return nil, err
	}
	return imp.Flow, nil
}

// ToYAML converts an Amazon Connect export into ariflow's YAML
// format, with no mapping files (see Convert).
func ToYAML(data []byte) ([]byte, error) {
	imp, err := Convert(data, Options{})
	if err != nil {
		return nil, err
	}
	return imp.YAML, nil
}

// Result is the result of Convert.
type Result struct {
	YAML   []byte
	Flow   *flows.Flow
	Report *Report
}

// Kinds of mapping of one Connect action.
const (
	mapBlock = iota // becomes a block
	mapNoop         // has no runtime effect in ariflow: its callers go to its next action
	mapNone         // cannot be mapped
)

type converter struct {
	opts    Options
	flow    connectFlow
	byID    map[string]*connectAction
	blockID map[string]string // action identifier -> block id
	kind    map[string]int
	reason  map[string]string // mapNone: why; mapNoop: what it is
	pass    map[string]string // mapNoop: the action its callers go to
	reached map[string]bool
	queues  map[string]map[string]bool // TransferContactToQueue: the target queues that reach it
	names   map[string]string          // queue ARN -> display name from the metadata
}

// Convert converts an Amazon Connect flow-language export (as the
// flow designer's "Export flow" writes it, or as the API's
// DescribeContactFlow returns it) into ariflow's YAML, validates it, and
// reports how each action was mapped. An action that cannot be mapped
// fails the import only when it can be reached from StartAction (it would
// run); unreachable actions are left out either way (the loader refuses
// unreachable blocks). The report is returned whenever the JSON could be
// read, also with an error.
func Convert(data []byte, opts Options) (*Result, error) {
	cf, name, err := decodeConnect(data)
	if err != nil {
		return nil, err
	}
	c := &converter{opts: opts, flow: cf, byID: map[string]*connectAction{}, blockID: map[string]string{},
		kind: map[string]int{}, reason: map[string]string{}, pass: map[string]string{},
		reached: map[string]bool{}, queues: map[string]map[string]bool{}, names: queueNames(cf.Metadata)}
	rep := &Report{Flow: name}
	imp := &Result{Report: rep}
	var errs []string
	ids := newIDs()
	for i := range cf.Actions {
		a := &cf.Actions[i]
		if a.Identifier == "" {
			return imp, fmt.Errorf("connect flow: action #%d (%s) has no Identifier", i+1, a.Type)
		}
		if _, dup := c.byID[a.Identifier]; dup {
			return imp, fmt.Errorf("connect flow: action %s: Identifier used twice", a.Identifier)
		}
		c.byID[a.Identifier] = a
		c.blockID[a.Identifier] = ids.unique(niceID(a))
		c.classify(a)
	}
	if _, ok := c.byID[cf.StartAction]; !ok {
		return imp, fmt.Errorf("connect flow: StartAction %q names no action", cf.StartAction)
	}
	c.reach()
	c.flowQueues()

	blocks := &orderedMap{}
	for i := range cf.Actions {
		a := &cf.Actions[i]
		m := Mapping{Identifier: a.Identifier, Type: a.Type, Reachable: c.reached[a.Identifier]}
		switch c.kind[a.Identifier] {
		case mapNoop:
			m.Result = "no-op (" + c.reason[a.Identifier] + ")"
		case mapNone:
			m.Result = "not mapped: " + c.reason[a.Identifier]
		case mapBlock:
			if !m.Reachable {
				m.Result = "not reachable from StartAction: left out"
				break
			}
			b, notes, err := c.convert(a)
			if err != nil {
				m.Result = "not mapped: " + err.Error()
				c.kind[a.Identifier] = mapNone
				break
			}
			m.Block, m.Notes = c.blockID[a.Identifier], notes
			m.Result = fmt.Sprintf("block %s (%s)", m.Block, b.get("type"))
			b.comment = fmt.Sprintf("# Connect %s %s", a.Type, a.Identifier)
			blocks.set(m.Block, b)
		}
		if !m.Reachable && c.kind[a.Identifier] != mapBlock {
			m.Result += "; not reachable from StartAction: left out"
		} else if c.kind[a.Identifier] == mapNone {
			errs = append(errs, fmt.Sprintf("action %s (%s): %s", a.Identifier, a.Type, strings.TrimPrefix(m.Result, "not mapped: ")))
		}
		rep.Actions = append(rep.Actions, m)
	}
	if len(errs) > 0 {
		return imp, fmt.Errorf("connect flow: %s", strings.Join(errs, "; "))
	}
	start, err := c.target(cf.StartAction)
	if err != nil {
		return imp, fmt.Errorf("connect flow: StartAction: %w", err)
	}
	rep.Start = start
	version := cf.Version
	if version == "" {
		version = "1"
	}
	doc := &orderedMap{}
	doc.set("name", name)
	doc.set("version", version)
	entries := opts.Entries
	if len(entries) == 0 {
		entries = []string{name}
	}
	doc.set("entry", entries)
	doc.set("start", start)
	doc.set("blocks", blocks)
	out, err := yaml.Marshal(doc)
	if err != nil {
		return imp, fmt.Errorf("connect flow: %w", err)
	}
	imp.YAML = out
	f, err := flows.Parse("connect-import.yaml", out, flows.LoadOptions{DefaultRegion: opts.DefaultRegion, EndpointTechs: opts.EndpointTechs})
	if err != nil {
		return imp, c.explain(err, f)
	}
	imp.Flow = f
	return imp, nil
}

// decodeConnect reads the flow and its name: the export itself, or the
// DescribeContactFlow answer that holds it as a string in
// ContactFlow.Content.
func decodeConnect(data []byte) (connectFlow, string, error) {
	var cf connectFlow
	if err := json.Unmarshal(data, &cf); err != nil {
		return cf, "", fmt.Errorf("connect flow: %w", err)
	}
	var meta struct {
		Name string `json:"name"`
	}
	if len(cf.Actions) == 0 {
		var wrapped struct {
			ContactFlow struct {
				Name    string `json:"Name"`
				Content string `json:"Content"`
			} `json:"ContactFlow"`
		}
		if json.Unmarshal(data, &wrapped) == nil && wrapped.ContactFlow.Content != "" {
			if err := json.Unmarshal([]byte(wrapped.ContactFlow.Content), &cf); err != nil {
				return cf, "", fmt.Errorf("connect flow: ContactFlow.Content: %w", err)
			}
			meta.Name = wrapped.ContactFlow.Name
		}
	}
	if len(cf.Actions) == 0 {
		return cf, "", fmt.Errorf("connect flow: no Actions")
	}
	if meta.Name == "" {
		_ = json.Unmarshal(cf.Metadata, &meta) // optional
	}
	name := strings.Trim(unsafeIDChars.ReplaceAllString(strings.ToLower(meta.Name), "_"), "_")
	if name == "" {
		name = "imported"
	}
	return cf, name, nil
}

// explain turns the loader's complaints about the generated YAML into
// errors that name the Connect action each block came from.
func (c *converter) explain(err error, _ *flows.Flow) error {
	byBlock := map[string]*connectAction{}
	for id, b := range c.blockID {
		byBlock[b] = c.byID[id]
	}
	var list flows.ErrorList
	if !errors.As(err, &list) {
		return fmt.Errorf("connect flow: %w", err)
	}
	var msgs []string
	for _, e := range list {
		msg := e.Msg
		if m := quotedBlockRE.FindStringSubmatch(msg); m != nil {
			if a := byBlock[m[1]]; a != nil {
				msg = fmt.Sprintf("action %s (%s): %s", a.Identifier, a.Type, msg)
			}
		}
		msgs = append(msgs, msg)
	}
	return fmt.Errorf("connect flow: the imported flow would not load: %s", strings.Join(msgs, "; "))
}

var quotedBlockRE = regexp.MustCompile(`block "([^"]+)"`)

// digitsRE is a GetCustomerInput value: digits, * and #.
var digitsRE = regexp.MustCompile(`^[0-9*#]+$`)

var (
	unsafeIDChars = regexp.MustCompile(`[^A-Za-z0-9_-]`)
	uuidRE        = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
)

// typeStem names blocks made from actions whose identifiers are UUIDs (as
// the flow designer writes them): "say_0218ffce" reads better than the
// UUID and still finds it.
var typeStem = map[string]string{
	"MessageParticipant": "say", "GetParticipantInput": "input", "UpdateContactAttributes": "set",
	"Compare": "check", "InvokeLambdaFunction": "lambda", "TransferParticipantToThirdParty": "transfer",
	"TransferContactToQueue": "queue", "DisconnectParticipant": "disconnect", "EndFlowExecution": "end",
	"UpdateContactTextToSpeechVoice": "voice", "UpdateContactData": "language",
}

func niceID(a *connectAction) string {
	if uuidRE.MatchString(a.Identifier) {
		stem := typeStem[a.Type]
		if stem == "" {
			stem = "action"
		}
		return stem + "_" + strings.ToLower(a.Identifier[:8])
	}
	return blockID(a.Identifier)
}

// ids hands out unique block ids. For each stem it remembers the last
// suffix it gave, so n actions with the same stem cost n steps, not n²/2
// (a large export of colliding ids used to take half a minute).
type ids struct {
	used   map[string]bool
	next   map[string]int // stem -> the suffix to try next
	probes int            // ids tried, for the test
}

func newIDs() *ids { return &ids{used: map[string]bool{}, next: map[string]int{}} }

// unique returns id, or id_2, id_3, … for the second and later uses of a
// stem; an id taken as written ("x_2" from an identifier) is skipped.
func (u *ids) unique(id string) string {
	if id == "" {
		id = "action"
	}
	out := id
	i := max(u.next[id], 2)
	for u.probes++; u.used[out]; u.probes++ {
		out = id + "_" + strconv.Itoa(i)
		i++
	}
	u.next[id] = i
	u.used[out] = true
	return out
}

func blockID(s string) string { return unsafeIDChars.ReplaceAllString(s, "_") }

// noops are the actions with no runtime effect for ariflow, and why.
var noops = map[string]string{
	"UpdateFlowLoggingBehavior":                  "flow logs are Connect's; ariflow logs every block",
	"UpdateContactRecordingBehavior":             "call recording is the PBX's, not the flow's",
	"UpdateContactRecordingAndAnalyticsBehavior": "call recording and analytics are the PBX's, not the flow's",
	"UpdateContactEventHooks":                    "Connect's queue, hold and whisper flows have no ariflow equivalent; the queue's dialplan plays what callers hear",
	"UpdateContactRoutingBehavior":               "queue priority belongs to the dialplan queue",
	"UpdateContactMediaProcessing":               "no media processing in ariflow",
	"UpdateContactCallbackNumber":                "used only by queued callbacks, which ariflow does not have",
	"UpdateContactTargetQueue":                   "sets the queue of the TransferContactToQueue that follows",
}

// classify decides what an action becomes, before any branch is resolved.
func (c *converter) classify(a *connectAction) {
	id, p := a.Identifier, params(a.Parameters)
	none := func(why string) { c.kind[id], c.reason[id] = mapNone, why }
	noop := func(why, next string) { c.kind[id], c.reason[id], c.pass[id] = mapNoop, why, next }
	if why, ok := noops[a.Type]; ok {
		if a.Type == "UpdateContactTargetQueue" && p.str("QueueId") == "" {
			none("only QueueId is supported (an agent's queue, AgentId, has no ariflow equivalent)")
			return
		}
		noop(why, a.Transitions.NextAction)
	}
	switch a.Type {
	case "UpdateContactData":
		if p.str("LanguageCode") == "" {
			noop("no field of ariflow's; a LanguageCode would set the text-to-speech language", a.Transitions.NextAction)
			return
		}
	case "CheckHoursOfOperation":
		want := map[string]string{"open": "True", "closed": "False"}[c.opts.Hours]
		if want == "" {
			none("hours of operation are kept in Connect: import with -hours open or -hours closed to always take that branch, or replace the action with a webhook")
			return
		}
		next := a.Transitions.NextAction
		for _, t := range a.Transitions.Conditions {
			if len(t.Condition.Operands) == 1 && strings.EqualFold(t.Condition.Operands[0], want) {
				next = t.NextAction
			}
		}
		noop("always "+c.opts.Hours+" (-hours "+c.opts.Hours+")", next)
		return
	case "ConnectParticipantWithLexBot":
		none("Amazon Lex bots (speech input) have no ariflow equivalent")
		return
	case "TransferToFlow", "InvokeFlowModule":
		none("it runs another Connect flow or module: import that one too and join them by hand")
		return
	}
	if _, ok := c.kind[id]; ok {
		return
	}
	if _, ok := converters[a.Type]; !ok {
		none(fmt.Sprintf("action type %s has no ariflow equivalent", a.Type))
		return
	}
	c.kind[id] = mapBlock
}

// edges are the actions an action can lead to.
func (c *converter) edges(a *connectAction) []string {
	if c.kind[a.Identifier] == mapNoop {
		return []string{c.pass[a.Identifier]}
	}
	out := []string{a.Transitions.NextAction}
	for _, t := range a.Transitions.Errors {
		out = append(out, t.NextAction)
	}
	for _, t := range a.Transitions.Conditions {
		out = append(out, t.NextAction)
	}
	return out
}

// reach marks the actions that can run, from StartAction.
func (c *converter) reach() {
	todo := []string{c.flow.StartAction}
	c.reached[c.flow.StartAction] = true
	for len(todo) > 0 {
		a := c.byID[todo[0]]
		todo = todo[1:]
		for _, n := range c.edges(a) {
			if _, ok := c.byID[n]; ok && !c.reached[n] {
				c.reached[n] = true
				todo = append(todo, n)
			}
		}
	}
}

// flowQueues works out which target queues can be set when each
// TransferContactToQueue runs: the QueueId of the UpdateContactTargetQueue
// actions on the paths that lead to it ("" when a path sets none).
func (c *converter) flowQueues() {
	in := map[string]map[string]bool{c.flow.StartAction: {"": true}}
	todo := []string{c.flow.StartAction}
	for len(todo) > 0 {
		a := c.byID[todo[0]]
		todo = todo[1:]
		out := in[a.Identifier]
		if a.Type == "UpdateContactTargetQueue" {
			out = map[string]bool{params(a.Parameters).str("QueueId"): true}
		}
		for _, n := range c.edges(a) {
			if _, ok := c.byID[n]; !ok {
				continue
			}
			if in[n] == nil {
				in[n] = map[string]bool{}
			}
			grew := false
			for q := range out {
				if !in[n][q] {
					in[n][q], grew = true, true
				}
			}
			if grew {
				todo = append(todo, n)
			}
		}
	}
	for id, a := range c.byID {
		if a.Type == "TransferContactToQueue" {
			c.queues[id] = in[id]
		}
	}
}

// target is the block a transition leads to: no-op actions are passed
// through to the action they lead to.
func (c *converter) target(id string) (string, error) {
	seen := map[string]bool{}
	for {
		if id == "" {
			return "", nil
		}
		if _, ok := c.byID[id]; !ok {
			return "", fmt.Errorf("transition to %q, which names no action", id)
		}
		if c.kind[id] != mapNoop {
			return c.blockID[id], nil
		}
		if seen[id] {
			return "", fmt.Errorf("the actions from %s loop without doing anything", id)
		}
		seen[id] = true
		id = c.pass[id]
	}
}

// blockBuilder is one block under construction.
type blockBuilder struct {
	*orderedMap
	branches *orderedMap
	notes    []string
}

func (b *blockBuilder) note(format string, args ...any) {
	b.notes = append(b.notes, fmt.Sprintf(format, args...))
}

// branch sets a branch to the block a Connect transition leads to.
func (c *converter) branch(b *blockBuilder, name, to string) error {
	t, err := c.target(to)
	if err != nil {
		return fmt.Errorf("branch %s: %w", name, err)
	}
	if t != "" {
		b.branches.set(name, t)
	}
	return nil
}

func errorTarget(a *connectAction, types ...string) string {
	for _, want := range types {
		for _, e := range a.Transitions.Errors {
			if e.ErrorType == want {
				return e.NextAction
			}
		}
	}
	return ""
}

type convertFunc func(c *converter, a *connectAction, p params, b *blockBuilder) error

var converters = map[string]convertFunc{
	"MessageParticipant":              convertMessage,
	"GetParticipantInput":             convertInput,
	"UpdateContactAttributes":         convertAttributes,
	"Compare":                         convertCompare,
	"InvokeLambdaFunction":            convertLambda,
	"TransferParticipantToThirdParty": convertThirdParty,
	"TransferContactToQueue":          convertQueue,
	"DisconnectParticipant":           convertDisconnect,
	"EndFlowExecution":                convertDisconnect,
	"UpdateContactTextToSpeechVoice":  convertVoice,
	"UpdateContactData":               convertLanguage,
}

// convert builds the block of a reachable action; the notes say what of
// the action was not carried over.
func (c *converter) convert(a *connectAction) (*blockBuilder, []string, error) {
	b := &blockBuilder{orderedMap: &orderedMap{}, branches: &orderedMap{}}
	if err := converters[a.Type](c, a, params(a.Parameters), b); err != nil {
		return nil, nil, err
	}
	if b.get("type") != flows.TypeDisconnect {
		if err := c.branch(b, flows.BranchError, errorTarget(a, "NoMatchingError")); err != nil {
			return nil, nil, err
		}
	}
	if len(b.branches.keys) > 0 {
		b.set("branches", b.branches)
	}
	return b, b.notes, nil
}

func convertMessage(c *converter, a *connectAction, p params, b *blockBuilder) error {
	prompt, err := p.prompt()
	if err != nil {
		return err
	}
	b.set("type", flows.TypePlayPrompt)
	b.set("prompts", []string{prompt})
	return c.branch(b, flows.BranchNext, a.Transitions.NextAction)
}

func convertInput(c *converter, a *connectAction, p params, b *blockBuilder) error {
	b.set("type", flows.TypeGetCustomerInput)
	if _, err := p.anyPrompt(); err == nil {
		prompt, err := p.prompt()
		if err != nil {
			return err
		}
		b.set("prompts", []string{prompt})
	}
	if t := p.str("InputTimeLimitSeconds"); t != "" {
		n, err := strconv.Atoi(t)
		if err != nil {
			return fmt.Errorf("InputTimeLimitSeconds %q: %w", t, err)
		}
		if n > 120 {
			b.note("InputTimeLimitSeconds %d shortened to ariflow's maximum of 120", n)
			n = 120
		}
		b.set("timeout", max(n, 1))
	}
	errT := errorTarget(a, "NoMatchingError")
	timeout := errorTarget(a, "InputTimeLimitExceeded")
	if timeout == "" && errT != "" {
		timeout = errT
		b.note("no InputTimeLimitExceeded transition: a timeout takes the error branch")
	}
	if strings.EqualFold(p.str("StoreInput"), "True") {
		// Stored input goes to $.StoredCustomerInput in Connect.
		b.set("max_digits", p.maxLength())
		if term := p.nested("DTMFConfiguration", "InputTerminationSequence"); term != "" {
			b.set("terminator", term)
		}
		b.set("store_as", "StoredCustomerInput")
		if err := c.branch(b, flows.BranchSuccess, a.Transitions.NextAction); err != nil {
			return err
		}
		return c.branch(b, flows.BranchTimeout, timeout)
	}
	var values []string
	type cond struct{ value, to string }
	var conds []cond
	for _, t := range a.Transitions.Conditions {
		if t.Condition.Operator != "Equals" || len(t.Condition.Operands) != 1 {
			return fmt.Errorf("input condition %s %v: only Equals with one operand is supported", t.Condition.Operator, t.Condition.Operands)
		}
		v := t.Condition.Operands[0]
		if !digitsRE.MatchString(v) {
			return fmt.Errorf("input condition Equals %q: not a digit string", v)
		}
		values = append(values, v)
		conds = append(conds, cond{v, t.NextAction})
	}
	if len(values) == 0 {
		return fmt.Errorf("no conditions and StoreInput is not True: nothing to branch on")
	}
	b.set("max_digits", max(1, maxLen(values)))
	b.set("values", values)
	for _, cd := range conds {
		if err := c.branch(b, cd.value, cd.to); err != nil {
			return err
		}
	}
	noMatch := errorTarget(a, "NoMatchingCondition")
	if noMatch == "" {
		noMatch = a.Transitions.NextAction
	}
	if noMatch == "" && errT != "" {
		noMatch = errT
		b.note("no NoMatchingCondition transition: other keys take the error branch")
	}
	if err := c.branch(b, flows.BranchNoMatch, noMatch); err != nil {
		return err
	}
	return c.branch(b, flows.BranchTimeout, timeout)
}

func convertAttributes(c *converter, a *connectAction, p params, b *blockBuilder) error {
	var attrs map[string]string
	if err := json.Unmarshal(a.Parameters["Attributes"], &attrs); err != nil {
		return fmt.Errorf("Attributes: %w", err)
	}
	keys := make([]string, 0, len(attrs))
	for k := range attrs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	set := &orderedMap{}
	for _, k := range keys {
		if !flows.ValidKey(k) {
			return fmt.Errorf("attribute name %q: ariflow keys hold only A-Z a-z 0-9 _ . -", k)
		}
		cv, err := connectValue(attrs[k])
		if err != nil {
			return fmt.Errorf("attribute %s: %w", k, err)
		}
		set.set(k, cv)
	}
	b.set("type", flows.TypeSetAttributes)
	b.set("set", set)
	return c.branch(b, flows.BranchNext, a.Transitions.NextAction)
}

func convertCompare(c *converter, a *connectAction, p params, b *blockBuilder) error {
	ref, err := connectValue(p.str("ComparisonValue"))
	if err != nil {
		return fmt.Errorf("ComparisonValue: %w", err)
	}
	if !strings.HasPrefix(ref, "$.") {
		return fmt.Errorf("ComparisonValue %q: ariflow compares an attribute, not a literal", ref)
	}
	b.set("type", flows.TypeCheckAttribute)
	b.set("attribute", ref)
	var conds []*orderedMap
	type br struct{ name, to string }
	var brs []br
	for i, t := range a.Transitions.Conditions {
		op, ok := connectOps[t.Condition.Operator]
		if !ok || len(t.Condition.Operands) != 1 {
			return fmt.Errorf("condition %s %v is not supported", t.Condition.Operator, t.Condition.Operands)
		}
		val, err := connectValue(t.Condition.Operands[0])
		if err != nil {
			return err
		}
		name := fmt.Sprintf("Condition%d", i+1)
		cm := &orderedMap{}
		cm.set("op", string(op))
		cm.set("value", val)
		cm.set("branch", name)
		conds = append(conds, cm)
		brs = append(brs, br{name, t.NextAction})
	}
	b.set("conditions", conds)
	for _, x := range brs {
		if err := c.branch(b, x.name, x.to); err != nil {
			return err
		}
	}
	noMatch := errorTarget(a, "NoMatchingCondition")
	if noMatch == "" {
		noMatch = a.Transitions.NextAction
	}
	return c.branch(b, flows.BranchNoMatch, noMatch)
}

func convertLambda(c *converter, a *connectAction, p params, b *blockBuilder) error {
	arn := p.str("LambdaFunctionARN")
	if arn == "" || strings.HasPrefix(arn, "$.") {
		return fmt.Errorf("LambdaFunctionARN %q: only a fixed function can be mapped to a URL", arn)
	}
	u, ok := lookup(c.opts.Lambdas, arn, "")
	if !ok {
		return fmt.Errorf("no URL for Lambda function %s: add it to the -lambda-map file", arn)
	}
	b.set("type", flows.TypeInvokeWebhook)
	b.set("url", u)
	if t := p.str("InvocationTimeLimitSeconds"); t != "" {
		n, err := strconv.Atoi(t)
		if err != nil || n < 1 {
			return fmt.Errorf("InvocationTimeLimitSeconds %q: want whole seconds", t)
		}
		b.set("timeout", min(n, 30))
	}
	if strings.EqualFold(p.str("InvocationType"), "ASYNCHRONOUS") {
		b.note("InvocationType ASYNCHRONOUS: the webhook is called synchronously")
	}
	if raw, ok := p["LambdaInvocationAttributes"]; ok && len(raw) > 2 {
		b.note("LambdaInvocationAttributes are not sent; the webhook receives all contact attributes")
	}
	return c.branch(b, flows.BranchSuccess, a.Transitions.NextAction)
}

func convertThirdParty(c *converter, a *connectAction, p params, b *blockBuilder) error {
	b.set("type", flows.TypeTransferToPhoneNumber)
	// In a fixed order: both timeout names map to "timeout", and when a
	// flow has both, the one Connect exports today
	// (ThirdPartyConnectionTimeLimitSeconds, last) wins over the
	// older ThirdPartyConnectionTimeoutSeconds.
	for _, m := range [][2]string{
		{"ThirdPartyPhoneNumber", "number"},
		{"ThirdPartyConnectionTimeoutSeconds", "timeout"},
		{"ThirdPartyConnectionTimeLimitSeconds", "timeout"},
		{"ThirdPartyDTMFDigits", "dtmf"},
	} {
		conn, ours := m[0], m[1]
		if v := p.str(conn); v != "" {
			cv, err := connectValue(v)
			if err != nil {
				return fmt.Errorf("%s: %w", conn, err)
			}
			b.set(ours, cv)
		}
	}
	for _, m := range [][2]string{{"Number", "caller_id_number"}, {"Name", "caller_id_name"}} {
		if v := p.nested("CallerId", m[0]); v != "" {
			cv, err := connectValue(v)
			if err != nil {
				return fmt.Errorf("CallerId.%s: %w", m[0], err)
			}
			b.set(m[1], cv)
		}
	}
	resume := !strings.EqualFold(p.str("ContinueFlowExecution"), "False")
	b.set("resume", resume)
	if resume {
		if err := c.branch(b, flows.BranchSuccess, a.Transitions.NextAction); err != nil {
			return err
		}
	}
	if err := c.branch(b, flows.BranchCallFailed, errorTarget(a, "CallFailed")); err != nil {
		return err
	}
	return c.branch(b, flows.BranchTimeout, errorTarget(a, "ConnectionTimeLimitExceeded", "ConnectionTimeout", "Timeout"))
}

func convertQueue(c *converter, a *connectAction, p params, b *blockBuilder) error {
	qs := c.queues[a.Identifier]
	var list []string
	for q := range qs {
		list = append(list, q)
	}
	sort.Strings(list)
	switch {
	case len(list) == 0 || len(list) == 1 && list[0] == "":
		return fmt.Errorf("no UpdateContactTargetQueue (Set working queue) before it")
	case len(list) > 1:
		return fmt.Errorf("reached with different target queues (%s): give each UpdateContactTargetQueue its own TransferContactToQueue", strings.Join(list, ", "))
	case strings.HasPrefix(list[0], "$."):
		return fmt.Errorf("target queue %s comes from an attribute: only fixed queues can be mapped to the dialplan", list[0])
	}
	spec, ok := lookup(c.opts.Queues, list[0], c.names[list[0]])
	if !ok {
		return fmt.Errorf("no dialplan place for queue %s: add it to the -queue-map file", list[0])
	}
	t, err := ParseDialplanTarget(spec)
	if err != nil {
		return fmt.Errorf("queue %s in the -queue-map file: %w", list[0], err)
	}
	b.set("type", flows.TypeTransferToAgent)
	b.set("context", t.Context)
	b.set("extension", t.Extension)
	if t.Priority != 0 {
		b.set("priority", t.Priority)
	}
	if to := errorTarget(a, "QueueAtCapacity"); to != "" && errorTarget(a, "NoMatchingError") == "" {
		b.note("QueueAtCapacity is decided by the dialplan queue; its transition becomes the error branch")
		return c.branch(b, flows.BranchError, to)
	}
	return nil
}

func convertDisconnect(c *converter, a *connectAction, p params, b *blockBuilder) error {
	b.set("type", flows.TypeDisconnect)
	return nil
}

func convertVoice(c *converter, a *connectAction, p params, b *blockBuilder) error {
	voice := p.str("TextToSpeechVoice")
	if voice == "" {
		return fmt.Errorf("no TextToSpeechVoice")
	}
	return setOne(c, a, b, flows.AttrTTSVoice, voice)
}

func convertLanguage(c *converter, a *connectAction, p params, b *blockBuilder) error {
	b.note("only LanguageCode is carried over (as the text-to-speech language)")
	return setOne(c, a, b, flows.AttrTTSLanguage, p.str("LanguageCode"))
}

func setOne(c *converter, a *connectAction, b *blockBuilder, key, v string) error {
	cv, err := connectValue(v)
	if err != nil {
		return err
	}
	set := &orderedMap{}
	set.set(key, cv)
	b.set("type", flows.TypeSetAttributes)
	b.set("set", set)
	return c.branch(b, flows.BranchNext, a.Transitions.NextAction)
}

var connectOps = map[string]flows.Operator{
	"Equals":                 flows.OpEquals,
	"TextContains":           flows.OpContains,
	"NumberGreaterThan":      flows.OpGreaterThan,
	"NumberGreaterOrEqualTo": flows.OpGreaterOrEq,
	"NumberLessThan":         flows.OpLessThan,
	"NumberLessOrEqualTo":    flows.OpLessOrEq,
}

// connectPaths are Connect's system paths that ariflow knows by another
// name.
var connectPaths = map[string]string{
	"$.StoredCustomerInput":          "$.Attributes.StoredCustomerInput",
	"$.CustomerEndpoint.Address":     "$.System." + flows.SysCallerNumber,
	"$.SystemEndpoint.Address":       "$.System." + flows.SysDialedNumber,
	"$.ContactId":                    "$.System." + flows.SysCallID,
	"$.InitialContactId":             "$.System." + flows.SysCallID,
	"$.Attributes.TextToSpeechVoice": "$.Attributes." + flows.AttrTTSVoice,
}

// connectValue maps Connect JSONPath to ariflow references; literals pass.
func connectValue(v string) (string, error) {
	if !strings.HasPrefix(v, "$.") {
		return v, nil
	}
	if m, ok := connectPaths[v]; ok {
		return m, nil
	}
	if _, err := flows.ParseRef(v); err != nil {
		return "", err
	}
	return v, nil
}

// connectPathRE finds Connect JSONPath references inside a text.
var connectPathRE = regexp.MustCompile(`\$\.[A-Za-z]+(\.[A-Za-z0-9_-]+)*`)

// connectText maps the references inside a prompt's text; one ariflow
// cannot read is an error (it would be spoken as "dollar dot ...").
func connectText(s string) (string, error) {
	var bad error
	out := connectPathRE.ReplaceAllStringFunc(s, func(m string) string {
		v, err := connectValue(m)
		if err != nil && bad == nil {
			bad = fmt.Errorf("text %q: %w", s, err)
		}
		return v
	})
	return out, bad
}

type params map[string]json.RawMessage

// str returns a string parameter; numbers and booleans come back as text.
func (p params) str(key string) string {
	raw, ok := p[key]
	if !ok {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	return strings.Trim(string(raw), `"`)
}

func (p params) nested(outer, key string) string {
	var inner params
	if json.Unmarshal(p[outer], &inner) != nil {
		return ""
	}
	return inner.str(key)
}

// anyPrompt tells which prompt parameter an action has.
func (p params) anyPrompt() (string, error) {
	for _, k := range []string{"Text", "SSML", "PromptId"} {
		if p.str(k) != "" {
			return k, nil
		}
	}
	if p.nested("Media", "Uri") != "" {
		return "Media", nil
	}
	return "", fmt.Errorf("no prompt (Text, SSML, PromptId or Media.Uri)")
}

// prompt maps an action's prompt: Text and SSML become a text: prompt
// (SSML reduced to text; text that is already an Asterisk media URI stays
// one); PromptId and Media.Uri must be Asterisk media URIs, since ariflow
// cannot fetch Connect's prompts or S3 objects.
func (p params) prompt() (string, error) {
	kind, err := p.anyPrompt()
	if err != nil {
		return "", err
	}
	switch kind {
	case "Text", "SSML":
		s := p.str(kind)
		if kind == "Text" && flows.ValidateMediaURI(s) == nil {
			return s, nil
		}
		if kind == "SSML" && !strings.HasPrefix(s, "$.") {
			if s, err = flows.SSMLToText(s); err != nil {
				return "", err
			}
		}
		s = strings.Join(strings.Fields(s), " ") // line breaks in the designer's text box
		s, err := connectText(s)
		if err != nil {
			return "", err
		}
		prompt := flows.TextPrefix + s
		if err := flows.ValidateTextPrompt(prompt); err != nil {
			return "", fmt.Errorf("%s: %w", kind, err)
		}
		return prompt, nil
	default:
		s := p.str("PromptId")
		if kind == "Media" {
			s = p.nested("Media", "Uri")
		}
		if err := flows.ValidateMediaURI(s); err != nil {
			return "", fmt.Errorf("%s %q: ariflow cannot fetch Connect's prompts or S3 audio; use an Asterisk sound (sound:name) or Text: %w", kind, s, err)
		}
		return s, nil
	}
}

func (p params) maxLength() int {
	var iv map[string]params
	if json.Unmarshal(p["InputValidation"], &iv) == nil {
		keys := make([]string, 0, len(iv))
		for k := range iv {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if n, err := strconv.Atoi(iv[k].str("MaximumLength")); err == nil && n >= 1 && n <= 64 {
				return n
			}
		}
	}
	return 20
}

func maxLen(ss []string) int {
	n := 0
	for _, s := range ss {
		n = max(n, len(s))
	}
	return n
}
