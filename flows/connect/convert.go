package connect

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/ariflow/ariflow/flows"
)

// Kinds of mapping of one Connect action.
const (
	mapBlock = iota // becomes a block (or two)
	mapNoop         // has no runtime effect in ariflow: its callers go to its next action
	mapNone         // cannot be mapped
)

// converter converts one flow. Every action is converted (or refused)
// first; then what the blocks' branches reach from the start decides what
// goes into the flow: an unreachable action is left out, mapped or not,
// and a reachable one that cannot be mapped is a problem.
type converter struct {
	set  *set
	opts Options
	src  *source

	actions  []*connectAction
	byID     map[string]*connectAction
	blockID  map[string]string // action identifier -> block id
	actionOf map[string]*connectAction
	kind     map[string]int
	reason   map[string]string // mapNone: why; mapNoop: what it is
	pass     map[string]string // mapNoop: the action its callers go to
	built    map[string]*blockBuilder
	ids      *ids

	start       string
	yaml        []byte
	placeholder map[string]bool // block ids standing in for refused actions
	problems    []Problem
	result      *Result
}

func newConverter(s *set, src *source) *converter {
	return &converter{set: s, opts: s.opts, src: src, byID: map[string]*connectAction{}, blockID: map[string]string{},
		actionOf: map[string]*connectAction{}, kind: map[string]int{}, reason: map[string]string{}, pass: map[string]string{},
		built: map[string]*blockBuilder{}, ids: newIDs(), placeholder: map[string]bool{}}
}

func (c *converter) problem(a *connectAction, format string, args ...any) {
	p := Problem{Flow: c.src.name, Msg: fmt.Sprintf(format, args...)}
	if a != nil {
		p.Action, p.Type = a.Identifier, a.Type
	}
	c.problems = append(c.problems, p)
}

// run converts the flow; the YAML is written also when actions were
// refused, with a Disconnect standing in for each, so that the loader
// checks the rest in the same pass.
func (c *converter) run() *Result {
	rep := &Report{Flow: c.src.name, Title: c.src.title, File: c.src.file}
	c.result = &Result{File: c.src.file, Report: rep}
	if !c.index() {
		return c.result
	}
	for _, a := range c.actions {
		c.classify(a)
	}
	start, err := c.target(c.src.flow.StartAction)
	if err != nil {
		c.problem(nil, "StartAction: %v", err)
		return c.result
	}
	c.start = start
	rep.Start = start
	c.convertAll()
	reached := c.reach()
	noopReached := c.reachNoops(reached)
	blocks := &orderedMap{}
	for _, a := range c.actions {
		rep.Actions = append(rep.Actions, c.place(a, blocks, reached, noopReached))
	}
	out, err := marshal(c.document(start, blocks))
	if err != nil {
		c.problem(nil, "%v", err)
		return c.result
	}
	c.yaml = out
	c.result.YAML = out
	return c.result
}

// index names every action's block; false when an action has no
// Identifier or shares one, or the StartAction names none (a problem
// says which).
func (c *converter) index() bool {
	for i := range c.src.flow.Actions {
		a := &c.src.flow.Actions[i]
		if a.Identifier == "" {
			c.problem(nil, "action #%d (%s) has no Identifier", i+1, a.Type)
			return false
		}
		if _, dup := c.byID[a.Identifier]; dup {
			c.problem(nil, "action %s: Identifier used twice", a.Identifier)
			return false
		}
		c.byID[a.Identifier] = a
		c.actions = append(c.actions, a)
		id := c.ids.unique(niceID(a))
		c.blockID[a.Identifier] = id
		c.actionOf[id] = a
	}
	if _, ok := c.byID[c.src.flow.StartAction]; !ok {
		c.problem(nil, "StartAction %q names no action", c.src.flow.StartAction)
		return false
	}
	return true
}

// convertAll builds the blocks of the actions that map to blocks; one
// whose settings cannot be converted is not mapped after all.
func (c *converter) convertAll() {
	for _, a := range c.actions {
		if c.kind[a.Identifier] != mapBlock {
			continue
		}
		b, err := c.convert(a)
		if err != nil {
			c.kind[a.Identifier], c.reason[a.Identifier] = mapNone, err.Error()
			continue
		}
		c.built[a.Identifier] = b
	}
}

// place puts action a's blocks into blocks when the start reaches it (a
// Disconnect standing in for an action that cannot be mapped, reported as
// a problem), and returns the report's line for it.
func (c *converter) place(a *connectAction, blocks *orderedMap, reached, noopReached map[string]bool) Mapping {
	id := a.Identifier
	m := Mapping{Identifier: id, Type: a.Type}
	switch c.kind[id] {
	case mapNoop:
		m.Reachable = noopReached[id]
		m.Result = "no-op (" + c.reason[id] + ")"
		if !m.Reachable {
			m.Result += "; not reachable from StartAction: left out"
		}
	case mapNone:
		m.Reachable = reached[c.blockID[id]]
		m.Result = "not mapped: " + c.reason[id]
		if !m.Reachable {
			m.Result += "; not reachable from StartAction: left out"
			break
		}
		c.problem(a, "%s", c.reason[id])
		ph := &blockBuilder{orderedMap: &orderedMap{}, branches: &orderedMap{}}
		ph.set("type", flows.TypeDisconnect)
		ph.comment = fmt.Sprintf("# Connect %s %s: NOT IMPORTED (%s)", a.Type, id, c.reason[id])
		blocks.set(c.blockID[id], ph)
		c.placeholder[c.blockID[id]] = true
	case mapBlock:
		b := c.built[id]
		m.Reachable = reached[c.blockID[id]]
		if !m.Reachable {
			m.Result = "not reachable from StartAction: left out"
			break
		}
		m.Block, m.Notes = c.blockID[id], b.notes
		b.comment = fmt.Sprintf("# Connect %s %s", a.Type, id)
		blocks.set(m.Block, b)
		names := []string{fmt.Sprintf("block %s (%s)", m.Block, b.get("type"))}
		for _, x := range b.extra {
			x.comment = fmt.Sprintf("# Connect %s %s (%s)", a.Type, id, x.what)
			blocks.set(x.id, x.blockBuilder)
			names = append(names, fmt.Sprintf("block %s (%s)", x.id, x.get("type")))
		}
		m.Result = strings.Join(names, ", ")
	}
	return m
}

// document is the flow file: name, version, entry, start and blocks.
func (c *converter) document(start string, blocks *orderedMap) *orderedMap {
	version := c.src.flow.Version
	if version == "" {
		version = "1"
	}
	doc := &orderedMap{}
	doc.set("name", c.src.name)
	doc.set("version", version)
	entries := c.opts.FlowEntries[c.src.name]
	if len(entries) == 0 {
		entries = []string{c.src.name}
	}
	doc.set("entry", entries)
	doc.set("start", start)
	doc.set("blocks", blocks)
	return doc
}

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
	"UpdateContactTextToSpeechVoice": "voice", "UpdateContactData": "language", "Loop": "loop",
	"TransferToFlow": "flow", "UpdateContactTargetQueue": "set_queue", "ConnectParticipantWithLexBot": "lex",
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
	"UpdateRoutingCriteria":                      "routing criteria (agent proficiencies) belong to the dialplan queue",
	"TagContact":                                 "contact tags are for Connect's contact records; ariflow's call record is its own",
	"UnTagContact":                               "contact tags are for Connect's contact records; ariflow's call record is its own",
}

// refused are action types with no ariflow equivalent, and why; any other
// type without a converter is refused as unknown.
var refused = map[string]string{
	"InvokeFlowModule":                          "flow modules are Connect's: import the module's steps as a flow and continue in it with a TransferToFlow",
	"EndFlowModuleExecution":                    "flow modules are Connect's",
	"CheckVoiceId":                              "Voice ID (caller voice authentication) is Connect's",
	"StartVoiceIdStream":                        "Voice ID (caller voice authentication) is Connect's",
	"CreateCallbackContact":                     "queued callbacks are Connect's",
	"CheckMetricData":                           "queue metrics are Connect's; ask the dialplan queue (a webhook) instead",
	"DistributeByPercentage":                    "no random split in ariflow; a webhook answering with a branch does it",
	"MessageParticipantIteratively":             "looping prompts play in Connect's queue flows; the dialplan queue plays music on hold",
	"Wait":                                      "waiting for an event (a chat customer returning) is Connect's",
	"CreateTask":                                "tasks are Connect's",
	"CreateCase":                                "Connect's cases have no ariflow equivalent",
	"CreateWisdomSession":                       "Amazon Q in Connect (Wisdom) is Connect's",
	"GetCustomerProfile":                        "Customer Profiles are Connect's; a webhook to the CRM does it",
	"UpdateCustomerProfile":                     "Customer Profiles are Connect's; a webhook to the CRM does it",
	"CreateCustomerProfile":                     "Customer Profiles are Connect's; a webhook to the CRM does it",
	"AuthenticateParticipant":                   "Connect's customer authentication (Cognito) has no ariflow equivalent",
	"TransferContactToAgent":                    "a Connect agent: set a working queue whose dialplan place rings the agent, and transfer to it",
	"StartMediaStreaming":                       "live media streaming to Kinesis is Connect's",
	"StopMediaStreaming":                        "live media streaming to Kinesis is Connect's",
	"UpdateContactMediaStreamingBehavior":       "live media streaming to Kinesis is Connect's",
	"ShowView":                                  "agent workspace views are Connect's",
	"AssociateContactToCustomerProfile":         "Customer Profiles are Connect's; a webhook to the CRM does it",
	"GetCustomerProfileObject":                  "Customer Profiles are Connect's; a webhook to the CRM does it",
	"GetCalculatedAttributesForCustomerProfile": "Customer Profiles are Connect's; a webhook to the CRM does it",
	"GetCase":                                   "Connect's cases have no ariflow equivalent",
	"UpdateCase":                                "Connect's cases have no ariflow equivalent",
	"GetMetricData":                             "queue metrics are Connect's; ask the dialplan queue (a webhook) instead",
	"CheckOutboundCallStatus":                   "outbound campaigns are Connect's",
	"CompleteOutboundCall":                      "outbound campaigns are Connect's",
	"StartOutboundChatContact":                  "chat is Connect's; ariflow runs voice calls",
	"DequeueContactAndTransferToQueue":          "it moves a contact between Connect's queues; the dialplan queue does that",
	"ResumeContact":                             "resuming a paused Connect task has no ariflow equivalent",
	"UpdatePreviousContactParticipantState":     "it holds or resumes a Connect agent's previous contact",
	"UpdateFlowAttributes":                      "flow attributes ($.FlowAttributes) are not carried over yet: set contact attributes instead",
}

// classify decides what an action becomes, before any branch is resolved.
func (c *converter) classify(a *connectAction) {
	id, p := a.Identifier, newParams(a.Parameters)
	none := func(why string) { c.kind[id], c.reason[id] = mapNone, why }
	noop := func(why, next string) { c.kind[id], c.reason[id], c.pass[id] = mapNoop, why, next }
	if why, ok := noops[a.Type]; ok {
		noop(why, a.Transitions.NextAction)
		return
	}
	if why, ok := refused[a.Type]; ok {
		none(why)
		return
	}
	switch a.Type {
	case "UpdateContactData":
		if p.str("LanguageCode") == "" {
			noop("no field of ariflow's; a LanguageCode would set the text-to-speech language"+ignored(p), a.Transitions.NextAction)
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
	case "Compare":
		if p.str("ComparisonValue") == "$.Channel" {
			// Always voice here: the flow goes where VOICE goes.
			next := errorTarget(a, "NoMatchingCondition")
			if next == "" {
				next = a.Transitions.NextAction
			}
			for _, t := range a.Transitions.Conditions {
				if t.Condition.Operator == "Equals" && len(t.Condition.Operands) == 1 && strings.EqualFold(t.Condition.Operands[0], channelVoice) {
					next = t.NextAction
					break
				}
			}
			noop("$.Channel is always VOICE in ariflow: the VOICE branch, always", next)
			return
		}
	case "ConnectParticipantWithLexBot":
		if name, arn, _, ok := c.lexBot(a, p); !ok {
			bot := "an Amazon Lex bot"
			if name != "" {
				bot = "Amazon Lex bot " + name
			}
			if arn != "" && arn != name {
				bot += " (" + arn + ")"
			}
			none(bot + ": ariflow has no speech recognition; name a webhook that answers for the bot in the -lex-map file, or replace the action")
			return
		}
	}
	if _, ok := converters[a.Type]; !ok {
		none(fmt.Sprintf("action type %s has no ariflow equivalent", a.Type))
		return
	}
	c.kind[id] = mapBlock
}

// ignored lists the parameters an action that becomes a no-op had, so the
// report says they were dropped.
func ignored(p *params) string {
	if u := p.unused(); len(u) > 0 {
		return "; not carried over: " + strings.Join(u, ", ")
	}
	return ""
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

// rawNext are every action a Connect action's transitions name.
func rawNext(a *connectAction) []string {
	out := []string{a.Transitions.NextAction}
	for _, t := range a.Transitions.Errors {
		out = append(out, t.NextAction)
	}
	for _, t := range a.Transitions.Conditions {
		out = append(out, t.NextAction)
	}
	return out
}

// reach is the set of block ids the start block reaches through the
// converted blocks' branches; a refused action is taken to lead wherever
// its transitions go.
func (c *converter) reach() map[string]bool {
	reached := map[string]bool{}
	if c.start == "" {
		return reached
	}
	todo := []string{c.start}
	reached[c.start] = true
	visit := func(id string) {
		if id != "" && !reached[id] {
			reached[id] = true
			todo = append(todo, id)
		}
	}
	for len(todo) > 0 {
		id := todo[0]
		todo = todo[1:]
		a := c.actionOf[id]
		if a == nil {
			continue
		}
		if b := c.built[a.Identifier]; b != nil {
			for _, bb := range append([]*blockBuilder{b}, b.extraBuilders()...) {
				for _, k := range bb.branches.keys {
					if t, ok := bb.branches.get(k).(string); ok && c.actionOf[t] != nil {
						visit(t)
					}
				}
			}
			continue
		}
		for _, n := range rawNext(a) {
			if t, err := c.target(n); err == nil {
				visit(t)
			}
		}
	}
	return reached
}

// reachNoops tells which no-op actions lie on the way from a reached
// action (or from StartAction) to another, for the report.
func (c *converter) reachNoops(reached map[string]bool) map[string]bool {
	out := map[string]bool{}
	follow := func(id string) {
		for id != "" && c.kind[id] == mapNoop && !out[id] {
			out[id] = true
			id = c.pass[id]
		}
	}
	follow(c.src.flow.StartAction)
	for _, a := range c.actions {
		if c.kind[a.Identifier] != mapNoop && reached[c.blockID[a.Identifier]] {
			for _, n := range rawNext(a) {
				follow(n)
			}
		}
	}
	return out
}

// blockBuilder is one block under construction, and the blocks an action
// needs beside it (a Lex bot's intent check).
type blockBuilder struct {
	*orderedMap
	branches *orderedMap
	notes    []string
	extra    []*extraBlock
}

type extraBlock struct {
	*blockBuilder
	id, what string
}

func (b *blockBuilder) extraBuilders() []*blockBuilder {
	out := make([]*blockBuilder, len(b.extra))
	for i, x := range b.extra {
		out[i] = x.blockBuilder
	}
	return out
}

func newBlock() *blockBuilder {
	return &blockBuilder{orderedMap: &orderedMap{}, branches: &orderedMap{}}
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

// convert builds the block of an action; the notes say what of the action
// was not carried over.
func (c *converter) convert(a *connectAction) (*blockBuilder, error) {
	b := newBlock()
	p := newParams(a.Parameters)
	if err := converters[a.Type](c, a, p, b); err != nil {
		return nil, err
	}
	if b.get("type") != flows.TypeDisconnect {
		if _, set := b.branches.vals[flows.BranchError]; !set {
			if err := c.branch(b, flows.BranchError, errorTarget(a, "NoMatchingError")); err != nil {
				return nil, err
			}
		}
	}
	for _, u := range p.unused() {
		b.note("parameter %s is not carried over (ariflow has no equivalent)", u)
	}
	for _, bb := range append([]*blockBuilder{b}, b.extraBuilders()...) {
		if len(bb.branches.keys) > 0 {
			bb.set("branches", bb.branches)
		}
	}
	return b, nil
}
