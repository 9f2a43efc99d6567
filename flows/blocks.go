package flows

import (
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// blockSettings are the setting keys each block type accepts besides
// "type" and "branches". schema.json is tested against this table.
var blockSettings = map[BlockType][]string{
	TypePlayPrompt:       {"prompts"},
	TypeGetCustomerInput: {"prompts", "max_digits", "terminator", "timeout", "values", "store_as"},
	TypeSetAttributes:    {"set"},
	TypeCheckAttribute:   {"attribute", "conditions"},
	TypeInvokeWebhook:    {"url", "timeout", "idempotent"},
	TypeTransferToPhoneNumber: {"number", "timeout", "timeouts", "resume", "dtmf", "dtmf_tone", "dtmf_gap", "caller_id_number", "caller_id_name",
		"return_key", "max_talk", "warning", "warning_before", "headers", "whisper", "confirm", "ringback", "events_url", "trace_header"},
	TypeTransferToAgent: {"endpoint", "timeout", "context", "extension", "priority"},
	TypeDisconnect:      {},
	TypeLoop:            {"count"},
	TypeTransferToFlow:  {"flow"},
	TypeSetWorkingQueue: {"queue", "context", "extension", "priority"},
	TypeTransferToQueue: {},
}

// BlockTypes lists the block types in documentation order.
var BlockTypes = []BlockType{
	TypePlayPrompt, TypeGetCustomerInput, TypeSetAttributes, TypeCheckAttribute,
	TypeInvokeWebhook, TypeLoop, TypeTransferToPhoneNumber, TypeTransferToAgent,
	TypeSetWorkingQueue, TypeTransferToQueue, TypeTransferToFlow, TypeDisconnect,
}

// conditionKeys are the keys of one CheckAttribute condition.
var conditionKeys = []string{"op", "value", "branch"}

var operators = []Operator{OpEquals, OpNotEquals, OpContains, OpLessThan, OpLessOrEq, OpGreaterThan, OpGreaterOrEq, OpIsSet}

var (
	branchNameRE = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)
	inputValueRE = regexp.MustCompile(`^[0-9*#]+$`)
	dialplanRE   = regexp.MustCompile(`^[A-Za-z0-9_+*#.-]+$`)
)

// blk is one block being parsed; its helpers prefix messages with the
// block id and setting name.
type blk struct {
	p    *parser
	b    *Block
	vals map[string]*yaml.Node // setting -> value node
}

func (k *blk) errf(line int, format string, args ...any) {
	k.p.errf(line, "block %q: "+format, append([]any{k.b.ID}, args...)...)
}

func (p *parser) block(id string, key, n *yaml.Node) *Block {
	b := &Block{ID: id, Line: key.Line, Branches: map[string]string{}}
	k := &blk{p: p, b: b, vals: map[string]*yaml.Node{}}
	if n.Kind != yaml.MappingNode {
		k.errf(n.Line, "want a mapping with type, settings and branches, got %s", kindName(n))
		return b
	}
	var branches *yaml.Node
	var rest [][2]*yaml.Node
	for _, kv := range p.pairs(n, fmt.Sprintf("block %q: ", id)) {
		switch kv[0].Value {
		case "type":
			if s, ok := p.scalar(kv[1], fmt.Sprintf("block %q: type", id), "a block type"); ok {
				b.Type = BlockType(s)
			}
		case "branches":
			branches = kv[1]
		default:
			rest = append(rest, kv)
		}
	}
	settings, known := blockSettings[b.Type]
	switch {
	case b.Type == "":
		k.errf(b.Line, "missing type")
	case !known:
		k.errf(b.Line, "unknown type %q (want one of %s)", b.Type, typeList())
	}
	for _, kv := range rest {
		if known && !contains(settings, kv[0].Value) {
			k.errf(kv[0].Line, "unknown setting %q for %s", kv[0].Value, b.Type)
			continue
		}
		k.vals[kv[0].Value] = kv[1]
	}
	if branches != nil {
		k.branches(branches)
	}
	if !known {
		return b
	}
	switch b.Type {
	case TypePlayPrompt:
		b.Play = &PlayPrompt{Prompts: k.prompts(true)}
	case TypeGetCustomerInput:
		b.Input = k.input()
	case TypeSetAttributes:
		b.Set = k.setAttrs()
	case TypeCheckAttribute:
		b.Check = k.check()
	case TypeInvokeWebhook:
		b.Webhook = k.webhook()
	case TypeTransferToPhoneNumber:
		b.Transfer = k.transfer()
	case TypeTransferToAgent:
		b.Agent = k.agent()
	case TypeDisconnect:
		b.Disconnect = &Disconnect{}
	case TypeLoop:
		b.Loop = k.loop()
	case TypeTransferToFlow:
		b.Jump = k.jump()
	case TypeSetWorkingQueue:
		b.SetQueue = k.setQueue()
	case TypeTransferToQueue:
		b.Queue = &TransferToQueue{}
	}
	return b
}

func typeList() string {
	s := make([]string, len(BlockTypes))
	for i, t := range BlockTypes {
		s[i] = string(t)
	}
	return strings.Join(s, ", ")
}

func contains[T comparable](list []T, v T) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

func (k *blk) branches(n *yaml.Node) {
	if n.Kind != yaml.MappingNode {
		k.errf(n.Line, "branches: want a mapping of branch name to block id, got %s", kindName(n))
		return
	}
	lines := map[string]int{}
	k.p.branchLines[k.b.ID] = lines
	for _, kv := range k.p.pairs(n, fmt.Sprintf("block %q: branches: ", k.b.ID)) {
		name := kv[0].Value
		target, ok := k.p.scalar(kv[1], fmt.Sprintf("block %q: branch %s", k.b.ID, name), "a block id")
		if !ok {
			continue
		}
		k.b.Branches[name] = target
		lines[name] = kv[0].Line
	}
}

// required reports a missing setting and returns its node otherwise.
func (k *blk) required(name string) *yaml.Node {
	n := k.vals[name]
	if n == nil {
		k.errf(k.b.Line, "missing required setting %q", name)
	}
	return n
}

func (k *blk) str(name string) (string, int, bool) {
	n := k.vals[name]
	if n == nil {
		return "", 0, false
	}
	s, ok := k.p.scalar(n, fmt.Sprintf("block %q: %s", k.b.ID, name), "a string")
	return s, n.Line, ok
}

// integer reads a whole-number setting; def when absent.
func (k *blk) integer(name string, def, min, max int) int {
	n := k.vals[name]
	if n == nil {
		return def
	}
	if n.Kind != yaml.ScalarNode || n.Tag != "!!int" {
		k.errf(n.Line, "%s: want a whole number, got %s", name, kindName(n))
		return def
	}
	v, err := strconv.Atoi(n.Value)
	if err != nil {
		k.errf(n.Line, "%s: want a whole number, got %q", name, n.Value)
		return def
	}
	if v < min || v > max {
		k.errf(n.Line, "%s: %d is out of range %d..%d", name, v, min, max)
		return def
	}
	return v
}

func (k *blk) boolean(name string, def bool) bool {
	n := k.vals[name]
	if n == nil {
		return def
	}
	if n.Kind != yaml.ScalarNode || n.Tag != "!!bool" {
		k.errf(n.Line, "%s: want true or false, got %s", name, kindName(n))
		return def
	}
	v, err := strconv.ParseBool(strings.ToLower(n.Value))
	if err != nil {
		k.errf(n.Line, "%s: want true or false, got %q", name, n.Value)
		return def
	}
	return v
}

// value reads a literal-or-reference setting and checks a literal with
// check, which may normalise it.
func (k *blk) value(name string, check func(string) (string, error)) Value {
	n := k.vals[name]
	if n == nil {
		return Value{}
	}
	v, _ := k.valueNode(n, name, check)
	return v
}

// valueNode parses one literal-or-reference node; ok is false when it
// reported an error.
func (k *blk) valueNode(n *yaml.Node, what string, check func(string) (string, error)) (Value, bool) {
	s, ok := k.p.scalar(n, fmt.Sprintf("block %q: %s", k.b.ID, what), "a string or $.Namespace.key reference")
	if !ok {
		return Value{}, false
	}
	v, err := ParseValue(s)
	if err != nil {
		k.errf(n.Line, "%s: %v", what, err)
		return Value{}, false
	}
	if v.Ref == nil && check != nil {
		lit, err := check(v.Literal)
		if err != nil {
			k.errf(n.Line, "%s: %v", what, err)
			return Value{}, false
		}
		v.Literal = lit
	}
	return v, true
}

func (k *blk) prompts(required bool) []Value {
	var n *yaml.Node
	if required {
		n = k.required("prompts")
	} else {
		n = k.vals["prompts"]
	}
	if n == nil {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		k.errf(n.Line, "prompts: want a list of media URIs, got %s", kindName(n))
		return nil
	}
	if len(n.Content) == 0 && required {
		k.errf(n.Line, "prompts: must list at least one media URI")
	}
	var out []Value
	for _, it := range n.Content {
		if v, ok := k.valueNode(it, "prompts", func(s string) (string, error) { return s, ValidateMediaURI(s) }); ok {
			out = append(out, v)
		}
	}
	return out
}

func (k *blk) input() *GetCustomerInput {
	in := &GetCustomerInput{Prompts: k.prompts(false)}
	in.MaxDigits = k.integer("max_digits", 1, 1, 64)
	in.Timeout = time.Duration(k.integer("timeout", 5, 1, 120)) * time.Second
	if s, line, ok := k.str("terminator"); ok {
		if len(s) != 1 || !strings.Contains("0123456789*#", s) {
			k.errf(line, "terminator: want one of 0-9 * #, got %q", s)
		} else {
			in.Terminator = s
		}
	}
	if s, line, ok := k.str("store_as"); ok {
		if !ValidKey(s) {
			k.errf(line, "store_as: %q is not a valid attribute key (A-Z a-z 0-9 _ . -)", s)
		} else {
			in.StoreAs = s
		}
	}
	if n := k.vals["values"]; n != nil {
		if n.Kind != yaml.SequenceNode {
			k.errf(n.Line, "values: want a list of digit strings, got %s", kindName(n))
			return in
		}
		seen := map[string]bool{}
		for _, it := range n.Content {
			s, ok := k.p.scalar(it, fmt.Sprintf("block %q: values", k.b.ID), "a digit string")
			if !ok {
				continue
			}
			switch {
			case !inputValueRE.MatchString(s):
				k.errf(it.Line, "values: %q may only hold 0-9 * #", s)
			case len(s) > in.MaxDigits:
				k.errf(it.Line, "values: %q is longer than max_digits %d", s, in.MaxDigits)
			case in.Terminator != "" && strings.Contains(s, in.Terminator):
				k.errf(it.Line, "values: %q contains the terminator %q", s, in.Terminator)
			case seen[s]:
				k.errf(it.Line, "values: %q listed twice", s)
			default:
				seen[s] = true
				in.Values = append(in.Values, s)
			}
		}
	}
	return in
}

func (k *blk) setAttrs() *SetAttributes {
	sa := &SetAttributes{}
	n := k.required("set")
	if n == nil {
		return sa
	}
	if n.Kind != yaml.MappingNode {
		k.errf(n.Line, "set: want a mapping of attribute key to value, got %s", kindName(n))
		return sa
	}
	if len(n.Content) == 0 {
		k.errf(n.Line, "set: must set at least one attribute")
	}
	for _, kv := range k.p.pairs(n, fmt.Sprintf("block %q: set: ", k.b.ID)) {
		key := kv[0].Value
		if !ValidKey(key) {
			k.errf(kv[0].Line, "set: %q is not a valid attribute key (A-Z a-z 0-9 _ . -)", key)
			continue
		}
		if v, ok := k.textValueNode(kv[1], "set: "+key); ok {
			sa.Set = append(sa.Set, Assignment{Key: key, Value: v})
		}
	}
	return sa
}

func (k *blk) check() *CheckAttribute {
	c := &CheckAttribute{}
	if n := k.required("attribute"); n != nil {
		if s, ok := k.p.scalar(n, fmt.Sprintf("block %q: attribute", k.b.ID), "a $.Namespace.key reference"); ok {
			if r, err := ParseRef(s); err != nil {
				k.errf(n.Line, "attribute: %v", err)
			} else {
				c.Attribute = r
			}
		}
	}
	n := k.required("conditions")
	if n == nil {
		return c
	}
	if n.Kind != yaml.SequenceNode {
		k.errf(n.Line, "conditions: want a list of {op, value, branch}, got %s", kindName(n))
		return c
	}
	if len(n.Content) == 0 {
		k.errf(n.Line, "conditions: must list at least one condition")
	}
	for i, it := range n.Content {
		c.Conditions = append(c.Conditions, k.condition(i+1, it))
	}
	return c
}

func (k *blk) condition(num int, n *yaml.Node) Condition {
	var cond Condition
	what := fmt.Sprintf("condition %d", num)
	if n.Kind != yaml.MappingNode {
		k.errf(n.Line, "%s: want a mapping {op, value, branch}, got %s", what, kindName(n))
		return cond
	}
	var valNode *yaml.Node
	var hasOp, hasBranch bool
	for _, kv := range k.p.pairs(n, fmt.Sprintf("block %q: %s: ", k.b.ID, what)) {
		key, v := kv[0], kv[1]
		switch key.Value {
		case "op":
			hasOp = true
			s, ok := k.p.scalar(v, fmt.Sprintf("block %q: %s: op", k.b.ID, what), "an operator")
			if !ok {
				continue
			}
			if !contains(operators, Operator(s)) {
				k.errf(v.Line, "%s: unknown op %q (want one of %s)", what, s, opList())
				continue
			}
			cond.Op = Operator(s)
		case "value":
			valNode = v
		case "branch":
			hasBranch = true
			s, ok := k.p.scalar(v, fmt.Sprintf("block %q: %s: branch", k.b.ID, what), "a branch name")
			if !ok {
				continue
			}
			if !branchNameRE.MatchString(s) {
				k.errf(v.Line, "%s: branch %q may only hold A-Z a-z 0-9 _ -", what, s)
				continue
			}
			cond.Branch = s
		default:
			k.errf(key.Line, "%s: unknown key %q (want op, value, branch)", what, key.Value)
		}
	}
	if !hasOp {
		k.errf(n.Line, "%s: missing op", what)
	}
	if !hasBranch {
		k.errf(n.Line, "%s: missing branch", what)
	}
	switch {
	case cond.Op == OpIsSet && valNode != nil:
		k.errf(valNode.Line, "%s: IsSet takes no value", what)
	case cond.Op != OpIsSet && cond.Op != "" && valNode == nil:
		k.errf(n.Line, "%s: missing value", what)
	case valNode != nil:
		var check func(string) (string, error)
		if numericOp(cond.Op) {
			check = func(s string) (string, error) {
				if _, ok := parseNumber(s); !ok {
					return "", fmt.Errorf("%s needs a number, got %q", cond.Op, s)
				}
				return s, nil
			}
		}
		cond.Operand, _ = k.valueNode(valNode, what+": value", check)
	}
	return cond
}

func opList() string {
	s := make([]string, len(operators))
	for i, o := range operators {
		s[i] = string(o)
	}
	return strings.Join(s, ", ")
}

func (k *blk) webhook() *InvokeWebhook {
	w := &InvokeWebhook{Timeout: time.Duration(k.integer("timeout", 3, 1, 30)) * time.Second, Idempotent: k.boolean("idempotent", false)}
	if k.required("url") == nil {
		return w
	}
	w.URL = k.httpURL("url")
	return w
}

// httpURL reads a static absolute http(s) URL setting ("" when absent or
// invalid, with the error reported).
func (k *blk) httpURL(name string) string {
	s, line, ok := k.str(name)
	if !ok {
		return ""
	}
	u, err := url.Parse(s)
	switch {
	case err != nil:
		k.errf(line, "%s: %v", name, err)
	case u.Scheme != "http" && u.Scheme != "https":
		k.errf(line, "%s: %q must be an absolute http or https URL", name, s)
	case u.Host == "":
		k.errf(line, "%s: %q has no host", name, s)
	default:
		return s
	}
	return ""
}

// mohClassRE is a music-on-hold class name as musiconhold.conf names one.
var mohClassRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,64}$`)

// ringback reads "ring", "moh", "moh:<class>" or "early-media".
func (k *blk) ringback(t *TransferToPhoneNumber) {
	t.Ringback = RingbackRing
	s, line, ok := k.str("ringback")
	if !ok {
		return
	}
	switch {
	case s == string(RingbackRing), s == string(RingbackEarlyMedia), s == string(RingbackMOH):
		t.Ringback = Ringback(s)
	case strings.HasPrefix(s, "moh:"):
		class := s[len("moh:"):]
		if !mohClassRE.MatchString(class) {
			k.errf(line, "ringback: music-on-hold class %q: want 1..64 of A-Z a-z 0-9 _ -", class)
			return
		}
		t.Ringback, t.MOHClass = RingbackMOH, class
	default:
		k.errf(line, "ringback: want ring, moh, moh:<class> or early-media, got %q", s)
	}
}

func (k *blk) transfer() *TransferToPhoneNumber {
	region := k.p.opts.DefaultRegion
	number := func(s string) (string, error) { return NormalizeNumber(s, region) }
	seconds := func(min, max int) func(string) (string, error) {
		return func(s string) (string, error) {
			n, err := ParseTimeoutSeconds(s, 0, min, max)
			return strconv.Itoa(n), err
		}
	}
	millis := func(min, max int) func(string) (string, error) {
		return func(s string) (string, error) {
			n, err := ParseMillis(s, 0, min, max)
			return strconv.Itoa(n), err
		}
	}
	t := &TransferToPhoneNumber{}
	if n := k.required("number"); n != nil {
		if n.Kind == yaml.SequenceNode {
			nums := k.list(n, "number", MaxNumbers, number)
			if len(nums) > 0 {
				t.Number, t.More = nums[0], nums[1:]
			}
		} else {
			t.Number = k.value("number", number)
		}
	}
	t.Timeout = k.value("timeout", func(s string) (string, error) {
		n, err := ParseTimeoutSeconds(s, TransferTimeout, 1, MaxTransferTimeout)
		return strconv.Itoa(n), err
	})
	if n := k.vals["timeouts"]; n != nil {
		switch {
		case k.vals["timeout"] != nil:
			k.errf(n.Line, "timeouts: set either timeout (for every number) or timeouts (one per number), not both")
		case n.Kind != yaml.SequenceNode:
			k.errf(n.Line, "timeouts: want a list of seconds, one per number, got %s", kindName(n))
		default:
			want := 1
			if num := k.vals["number"]; num != nil && num.Kind == yaml.SequenceNode {
				want = len(num.Content)
			}
			if len(n.Content) != want {
				k.errf(n.Line, "timeouts: %d listed for %d numbers; want one per number", len(n.Content), want)
				break
			}
			t.Timeouts = k.list(n, "timeouts", MaxNumbers, seconds(1, MaxTransferTimeout))
		}
	}
	t.Resume = k.boolean("resume", true)
	t.DTMF = k.value("dtmf", ParseDTMF)
	t.DTMFTone = k.value("dtmf_tone", millis(MinDTMFTone, MaxDTMFTone))
	t.DTMFGap = k.value("dtmf_gap", millis(MinDTMFGap, MaxDTMFGap))
	t.CallerIDNumber = k.value("caller_id_number", number)
	t.CallerIDName = k.value("caller_id_name", func(s string) (string, error) { return s, ValidateCallerName(s) })
	t.ReturnKey = k.value("return_key", ParseReturnKey)
	if n := k.vals["return_key"]; n != nil && !t.Resume {
		k.errf(n.Line, "return_key: needs resume: true (the caller comes back to Success)")
	}
	t.MaxTalk = k.value("max_talk", seconds(1, MaxTalkSeconds))
	t.Warning = k.value("warning", func(s string) (string, error) { return s, ValidateMediaURI(s) })
	t.WarningBefore = k.value("warning_before", seconds(1, MaxWarningBefore))
	for _, name := range []string{"warning", "warning_before"} {
		if n := k.vals[name]; n != nil && k.vals["max_talk"] == nil {
			k.errf(n.Line, "%s: only applies with max_talk", name)
		}
	}
	if n := k.vals["warning_before"]; n != nil && k.vals["warning"] == nil {
		k.errf(n.Line, "warning_before: only applies with warning")
	}
	if t.MaxTalk.Ref == nil && t.WarningBefore.Ref == nil && t.MaxTalk.Literal != "" && t.WarningBefore.Literal != "" {
		talk, _ := strconv.Atoi(t.MaxTalk.Literal)
		lead, _ := strconv.Atoi(t.WarningBefore.Literal)
		if lead >= talk {
			k.errf(k.vals["warning_before"].Line, "warning_before: %d s is not less than max_talk %d s", lead, talk)
		}
	}
	t.Headers = k.headers()
	media := func(s string) (string, error) { return s, ValidateMediaURI(s) }
	t.Whisper = k.value("whisper", media)
	t.Confirm = k.confirm(media)
	k.ringback(t)
	if t.Ringback == RingbackEarlyMedia && (t.Whisper != (Value{}) || t.Confirm != nil) {
		k.errf(k.vals["ringback"].Line, "ringback: early-media bridges the caller before the far end answers, so the caller would hear the whisper and the confirmation; not with whisper or confirm")
	}
	if k.vals["events_url"] != nil {
		t.EventsURL = k.httpURL("events_url")
	}
	if name, line, ok := k.str("trace_header"); ok {
		if err := ValidateHeaderName(name); err != nil {
			k.errf(line, "trace_header: %v", err)
		}
		t.TraceHeader = name
	}
	return t
}

// confirmKeys are the keys a Confirm mapping takes.
var confirmKeys = []string{"prompt", "key", "timeout"}

func (k *blk) confirm(media func(string) (string, error)) *Confirm {
	n := k.vals["confirm"]
	if n == nil {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		k.errf(n.Line, "confirm: want a mapping {prompt, key, timeout}, got %s", kindName(n))
		return nil
	}
	c := &Confirm{Key: "1", Timeout: 10}
	var hasPrompt bool
	for _, kv := range k.p.pairs(n, fmt.Sprintf("block %q: confirm: ", k.b.ID)) {
		name, v := kv[0].Value, kv[1]
		switch name {
		case "prompt":
			hasPrompt = true
			c.Prompt, _ = k.valueNode(v, "confirm: prompt", media)
		case "key":
			s, ok := k.p.scalar(v, fmt.Sprintf("block %q: confirm: key", k.b.ID), "a key")
			if ok && (len(s) != 1 || !strings.Contains("0123456789*#", s)) {
				k.errf(v.Line, "confirm: key: want one of 0-9 * #, got %q", s)
			} else if ok {
				c.Key = s
			}
		case "timeout":
			t, err := strconv.Atoi(v.Value)
			switch {
			case v.Kind != yaml.ScalarNode || v.Tag != "!!int" || err != nil:
				k.errf(v.Line, "confirm: timeout: want a whole number of seconds, got %s", kindName(v))
			case t < 1 || t > 120:
				k.errf(v.Line, "confirm: timeout: %d is out of range 1..120", t)
			default:
				c.Timeout = t
			}
		default:
			k.errf(kv[0].Line, "confirm: unknown key %q (want %s)", name, strings.Join(confirmKeys, ", "))
		}
	}
	if !hasPrompt {
		k.errf(n.Line, "confirm: missing prompt")
	}
	return c
}

// list reads a list of literal-or-reference items, each checked like a
// single value, at most max of them.
func (k *blk) list(n *yaml.Node, name string, max int, check func(string) (string, error)) []Value {
	if len(n.Content) == 0 {
		k.errf(n.Line, "%s: the list is empty", name)
		return nil
	}
	if len(n.Content) > max {
		k.errf(n.Line, "%s: %d items, at most %d", name, len(n.Content), max)
		return nil
	}
	var out []Value
	for _, it := range n.Content {
		if v, ok := k.valueNode(it, name, check); ok {
			out = append(out, v)
		}
	}
	return out
}

// headers reads the X- header map: names are literal, values literal or
// references.
func (k *blk) headers() []Header {
	n := k.vals["headers"]
	if n == nil {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		k.errf(n.Line, "headers: want a mapping of X- header name to value, got %s", kindName(n))
		return nil
	}
	if len(n.Content)/2 > MaxHeaders {
		k.errf(n.Line, "headers: %d headers, at most %d", len(n.Content)/2, MaxHeaders)
		return nil
	}
	var out []Header
	seen := map[string]bool{}
	for _, kv := range k.p.pairs(n, fmt.Sprintf("block %q: headers: ", k.b.ID)) {
		name := kv[0].Value
		if err := ValidateHeaderName(name); err != nil {
			k.errf(kv[0].Line, "headers: %v", err)
			continue
		}
		if seen[strings.ToLower(name)] {
			k.errf(kv[0].Line, "headers: %q listed twice (names compare without case)", name)
			continue
		}
		seen[strings.ToLower(name)] = true
		if v, ok := k.valueNode(kv[1], "headers: "+name, func(s string) (string, error) { return s, ValidateHeaderValue(s) }); ok {
			out = append(out, Header{Name: name, Value: v})
		}
	}
	return out
}

func (k *blk) agent() *TransferToAgent {
	region := k.p.opts.DefaultRegion
	a := &TransferToAgent{}
	_, hasEndpoint := k.vals["endpoint"]
	_, hasContext := k.vals["context"]
	_, hasExten := k.vals["extension"]
	switch {
	case hasEndpoint && (hasContext || hasExten):
		k.errf(k.b.Line, "set either endpoint or context and extension, not both")
	case !hasEndpoint && !hasContext && !hasExten:
		k.errf(k.b.Line, "missing required setting \"endpoint\" (or \"context\" and \"extension\")")
	case !hasEndpoint && !hasExten:
		k.errf(k.b.Line, "missing required setting \"extension\"")
	case !hasEndpoint && !hasContext:
		k.errf(k.b.Line, "missing required setting \"context\"")
	}
	a.Endpoint = k.value("endpoint", func(s string) (string, error) {
		ep, _, err := ParseEndpoint(s, region, k.p.opts.EndpointTechs)
		return ep, err
	})
	if n := k.vals["timeout"]; n != nil && !hasEndpoint {
		k.errf(n.Line, "timeout: only applies with endpoint")
	}
	a.Timeout = k.value("timeout", func(s string) (string, error) {
		n, err := ParseTimeoutSeconds(s, TransferTimeout, 1, MaxTransferTimeout)
		return strconv.Itoa(n), err
	})
	for _, name := range []string{"context", "extension"} {
		if s, line, ok := k.str(name); ok {
			if !dialplanRE.MatchString(s) {
				k.errf(line, "%s: %q may only hold A-Z a-z 0-9 + * # _ . -", name, s)
				continue
			}
			if name == "context" {
				a.Context = s
			} else {
				a.Extension = s
			}
		}
	}
	if n := k.vals["priority"]; n != nil && !hasContext {
		k.errf(n.Line, "priority: only applies with context and extension")
	}
	if hasContext {
		a.Priority = k.integer("priority", 1, 1, 99999)
	}
	return a
}

// textValueNode reads a value that may be a text with references inside
// it ("$.Attributes.street $.Attributes.city", Amazon Connect's way of
// joining attributes): a template, filled in when the block runs. A value
// that is one reference, or a literal without any, reads as valueNode.
func (k *blk) textValueNode(n *yaml.Node, what string) (Value, bool) {
	if n.Kind == yaml.ScalarNode && n.Tag != "!!null" {
		if _, err := ParseRef(n.Value); err != nil && len(TextRefs(n.Value)) > 0 {
			return Value{Literal: n.Value, Template: true}, true
		}
	}
	return k.valueNode(n, what, nil)
}

func (k *blk) loop() *Loop {
	l := &Loop{}
	if k.required("count") == nil {
		return l
	}
	l.Count = k.value("count", func(s string) (string, error) {
		n, err := ParseLoopCount(s)
		return strconv.Itoa(n), err
	})
	return l
}

func (k *blk) jump() *TransferToFlow {
	j := &TransferToFlow{}
	if k.required("flow") == nil {
		return j
	}
	if s, line, ok := k.str("flow"); ok {
		if !nameRE.MatchString(s) {
			k.errf(line, "flow %q: a flow name may only hold a-z 0-9 _ -", s)
		} else {
			j.Flow = s
		}
	}
	return j
}

// MaxQueueName bounds a working queue's name.
const MaxQueueName = 128

func (k *blk) setQueue() *SetWorkingQueue {
	q := &SetWorkingQueue{Priority: 1}
	for _, name := range []string{"queue", "context", "extension"} {
		if k.required(name) == nil {
			continue
		}
		s, line, ok := k.str(name)
		if !ok {
			continue
		}
		switch {
		case name == "queue" && (strings.TrimSpace(s) == "" || len(s) > MaxQueueName || strings.IndexFunc(s, isControl) >= 0):
			k.errf(line, "queue: %q: want 1..%d bytes of text without control characters", s, MaxQueueName)
		case name == "queue":
			q.Name = s
		case !dialplanRE.MatchString(s):
			k.errf(line, "%s: %q may only hold A-Z a-z 0-9 + * # _ . -", name, s)
		case name == "context":
			q.Context = s
		default:
			q.Extension = s
		}
	}
	q.Priority = k.integer("priority", 1, 1, 99999)
	return q
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }
