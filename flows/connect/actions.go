package connect

import (
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"github.com/ariflow/ariflow/flows"
)

type convertFunc func(c *converter, a *connectAction, p *params, b *blockBuilder) error

var converters map[string]convertFunc

func init() {
	converters = map[string]convertFunc{
		"MessageParticipant":              convertMessage,
		"GetParticipantInput":             convertInput,
		"UpdateContactAttributes":         convertAttributes,
		"Compare":                         convertCompare,
		"InvokeLambdaFunction":            convertLambda,
		"TransferParticipantToThirdParty": convertThirdParty,
		"UpdateContactTargetQueue":        convertTargetQueue,
		"TransferContactToQueue":          convertQueue,
		"TransferToFlow":                  convertJump,
		"Loop":                            convertLoop,
		"ConnectParticipantWithLexBot":    convertLex,
		"DisconnectParticipant":           convertDisconnect,
		"EndFlowExecution":                convertDisconnect,
		"UpdateContactTextToSpeechVoice":  convertVoice,
		"UpdateContactData":               convertLanguage,
	}
}

func convertMessage(c *converter, a *connectAction, p *params, b *blockBuilder) error {
	prompt, err := c.prompt(a, p)
	if err != nil {
		return err
	}
	b.set("type", flows.TypePlayPrompt)
	b.set("prompts", []string{prompt})
	return c.branch(b, flows.BranchNext, a.Transitions.NextAction)
}

func convertInput(c *converter, a *connectAction, p *params, b *blockBuilder) error {
	b.set("type", flows.TypeGetCustomerInput)
	if p.has("Text") || p.has("SSML") || p.has("PromptId") || p.has("Media") {
		prompt, err := c.prompt(a, p)
		if err != nil {
			return err
		}
		b.set("prompts", []string{prompt})
	}
	if t := p.str("InputTimeLimitSeconds"); t != "" {
		n, err := seconds("InputTimeLimitSeconds", t)
		if err != nil {
			return err
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
		b.set("max_digits", maxLength(p))
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

func maxLength(p *params) int {
	p.used["InputValidation"] = true
	var iv map[string]map[string]json.RawMessage
	if json.Unmarshal(p.raw["InputValidation"], &iv) == nil {
		keys := make([]string, 0, len(iv))
		for k := range iv {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if n, err := seconds("MaximumLength", rawString(iv[k]["MaximumLength"])); err == nil && n >= 1 && n <= 64 {
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

func convertAttributes(c *converter, a *connectAction, p *params, b *blockBuilder) error {
	p.ignore("Attributes")
	var attrs map[string]string
	if err := json.Unmarshal(p.raw["Attributes"], &attrs); err != nil {
		return fmt.Errorf("Attributes: %w", err)
	}
	if t := p.str("TargetContact"); t != "" && t != "Current" {
		return fmt.Errorf("TargetContact %s: ariflow sets the attributes of the call in the flow only", t)
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
		v, err := attributeValue(attrs[k])
		if err != nil {
			return fmt.Errorf("attribute %s: %w", k, err)
		}
		set.set(k, v)
	}
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

func convertCompare(c *converter, a *connectAction, p *params, b *blockBuilder) error {
	ref, err := value(p.str("ComparisonValue"))
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
		val, err := value(t.Condition.Operands[0])
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

func convertLambda(c *converter, a *connectAction, p *params, b *blockBuilder) error {
	arn := p.str("LambdaFunctionARN")
	if arn == "" || strings.HasPrefix(arn, "$.") {
		return fmt.Errorf("LambdaFunctionARN %q: only a fixed function can be mapped to a URL", arn)
	}
	u, ok := lookup(c.opts.Lambdas, arn, c.src.meta[a.Identifier].display("LambdaFunctionARN"))
	if !ok {
		return fmt.Errorf("no URL for Lambda function %s: add it to the -lambda-map file", arn)
	}
	b.set("type", flows.TypeInvokeWebhook)
	b.set("url", u)
	if t := p.str("InvocationTimeLimitSeconds"); t != "" {
		n, err := seconds("InvocationTimeLimitSeconds", t)
		if err != nil || n < 1 {
			return fmt.Errorf("InvocationTimeLimitSeconds %q: want whole seconds", t)
		}
		if n > 30 {
			b.note("InvocationTimeLimitSeconds %d shortened to ariflow's maximum of 30", n)
		}
		b.set("timeout", min(n, 30))
	}
	if strings.EqualFold(p.str("InvocationType"), "ASYNCHRONOUS") {
		b.note("InvocationType ASYNCHRONOUS: the webhook is called synchronously")
	}
	if raw, ok := p.raw["LambdaInvocationAttributes"]; ok && len(raw) > 2 {
		p.ignore("LambdaInvocationAttributes")
		b.note("LambdaInvocationAttributes are not sent; the webhook receives all contact attributes")
	}
	p.ignore("ResponseValidation") // ariflow flattens any JSON object's top-level fields
	return c.branch(b, flows.BranchSuccess, a.Transitions.NextAction)
}

func convertThirdParty(c *converter, a *connectAction, p *params, b *blockBuilder) error {
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
			cv, err := value(v)
			if err != nil {
				return fmt.Errorf("%s: %w", conn, err)
			}
			if ours == "timeout" {
				b.set(ours, numberOrRef(cv))
			} else {
				b.set(ours, cv)
			}
		}
	}
	for _, m := range [][2]string{{"Number", "caller_id_number"}, {"Name", "caller_id_name"}} {
		if v := p.nested("CallerId", m[0]); v != "" {
			cv, err := value(v)
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
	} else if a.Transitions.NextAction != "" && a.Transitions.NextAction != errorTarget(a, "NoMatchingError") {
		b.note("resume off: the caller stays with the far end, so NextAction (%s) is never taken", a.Transitions.NextAction)
	}
	// A block exported without CallFailed or ConnectionTimeLimitExceeded
	// (resume off, as Connect writes it) sends those outcomes to its error
	// branch, as Connect does.
	errT := errorTarget(a, "NoMatchingError")
	for _, m := range []struct {
		branch, what string
		types        []string
	}{
		{flows.BranchCallFailed, "a call that fails (busy, rejected, unreachable)", []string{"CallFailed"}},
		{flows.BranchTimeout, "a call not answered in time", []string{"ConnectionTimeLimitExceeded", "ConnectionTimeout", "Timeout"}},
	} {
		to := errorTarget(a, m.types...)
		if to == "" && errT != "" {
			to = errT
			b.note("no %s transition: %s takes the error branch, as in Connect", m.types[0], m.what)
		}
		if err := c.branch(b, m.branch, to); err != nil {
			return err
		}
	}
	return nil
}

// convertTargetQueue: "Set working queue" sets the call's working queue,
// a dialplan place from the -queue-map file.
func convertTargetQueue(c *converter, a *connectAction, p *params, b *blockBuilder) error {
	q := p.str("QueueId")
	switch {
	case q == "" && p.str("AgentId") != "":
		return fmt.Errorf("an agent's queue (AgentId %s) has no ariflow equivalent: map a queue whose dialplan place rings the agent", p.str("AgentId"))
	case q == "":
		return fmt.Errorf("no QueueId")
	case strings.HasPrefix(q, "$."):
		return fmt.Errorf("QueueId %s comes from an attribute: a working queue is a fixed dialplan place; set one per queue", q)
	}
	meta := c.src.meta[a.Identifier]
	display := meta.Queue.Text
	if display == "" {
		display = meta.display("QueueId")
	}
	if display == "" {
		display = c.src.queues[q]
	}
	spec, ok := lookup(c.opts.Queues, q, display)
	if !ok {
		what := q
		if display != "" {
			what += " (" + display + ")"
		}
		return fmt.Errorf("no dialplan place for queue %s: add it to the -queue-map file", what)
	}
	t, err := ParseDialplanTarget(spec)
	if err != nil {
		return fmt.Errorf("queue %s in the -queue-map file: %w", q, err)
	}
	name := display
	if name == "" {
		name = lastPart(q)
	}
	b.set("type", flows.TypeSetWorkingQueue)
	b.set("queue", name)
	b.set("context", t.Context)
	b.set("extension", t.Extension)
	if t.Priority != 0 {
		b.set("priority", t.Priority)
	}
	return c.branch(b, flows.BranchNext, a.Transitions.NextAction)
}

func lastPart(arn string) string {
	if i := strings.LastIndexAny(arn, ":/"); i >= 0 && i+1 < len(arn) {
		return arn[i+1:]
	}
	return arn
}

// convertQueue: "Transfer to queue" hands the caller to the working queue
// the call carries.
func convertQueue(c *converter, a *connectAction, p *params, b *blockBuilder) error {
	if !c.setsQueue() {
		return fmt.Errorf("no UpdateContactTargetQueue (Set working queue) before it, in this flow or the flows imported with it")
	}
	b.set("type", flows.TypeTransferToQueue)
	if to := errorTarget(a, "QueueAtCapacity"); to != "" {
		if errorTarget(a, "NoMatchingError") == "" {
			b.note("QueueAtCapacity is decided by the dialplan queue; its transition becomes the error branch")
			return c.branch(b, flows.BranchError, to)
		}
		b.note("QueueAtCapacity is decided by the dialplan queue (its transition is not taken)")
	}
	return nil
}

// setsQueue tells whether any flow of the import sets a working queue.
func (c *converter) setsQueue() bool {
	for _, s := range c.set.sources {
		for _, a := range s.flow.Actions {
			if a.Type == "UpdateContactTargetQueue" {
				return true
			}
		}
	}
	return false
}

// convertJump: "Transfer to flow" continues the call in another flow of
// the import, or one the -flow-map file names.
func convertJump(c *converter, a *connectAction, p *params, b *blockBuilder) error {
	raw := p.raw["ContactFlowId"]
	p.ignore("ContactFlowId")
	id := rawString(raw)
	if strings.HasPrefix(strings.TrimSpace(string(raw)), "{") || strings.HasPrefix(id, "$.") {
		return fmt.Errorf("ContactFlowId %s comes from an attribute: ariflow's TransferToFlow names its flow; use a Compare and one TransferToFlow per flow", short(raw))
	}
	if id == "" {
		return fmt.Errorf("no ContactFlowId")
	}
	meta := c.src.meta[a.Identifier]
	display := meta.ContactFlow.Text
	if display == "" {
		display = meta.display("ContactFlowId")
	}
	name, external, ok := c.set.flowFor(id, display)
	if !ok {
		what := id
		if display != "" {
			what = fmt.Sprintf("%q (%s)", display, id)
		}
		return fmt.Errorf("flow %s is not among the imported flows: import it with this one (a directory or an instance export), or name its ariflow flow in the -flow-map file", what)
	}
	if external {
		c.set.external[name] = true
		b.note("continues in flow %s, which this import does not hold (-flow-map): load them together", name)
	}
	b.set("type", flows.TypeTransferToFlow)
	b.set("flow", name)
	if next := a.Transitions.NextAction; next != "" && next != errorTarget(a, "NoMatchingError") {
		b.note("the call leaves this flow, so NextAction (%s) is never taken", next)
	}
	return nil
}

// convertLoop: Connect's Loop, with its count and both branches.
func convertLoop(c *converter, a *connectAction, p *params, b *blockBuilder) error {
	raw := p.str("LoopCount")
	count, err := value(raw)
	if err != nil {
		return fmt.Errorf("LoopCount: %w", err)
	}
	if !strings.HasPrefix(count, "$.") {
		if _, err := flows.ParseLoopCount(count); err != nil {
			return fmt.Errorf("LoopCount: %w", err)
		}
	}
	b.set("type", flows.TypeLoop)
	b.set("count", numberOrRef(count))
	var cont, done string
	for _, t := range a.Transitions.Conditions {
		if len(t.Condition.Operands) != 1 {
			continue
		}
		switch t.Condition.Operands[0] {
		case "ContinueLooping":
			cont = t.NextAction
		case "DoneLooping":
			done = t.NextAction
		}
	}
	if done == "" {
		done = a.Transitions.NextAction
	}
	if err := c.branch(b, flows.BranchContinueLooping, cont); err != nil {
		return err
	}
	return c.branch(b, flows.BranchDoneLooping, done)
}

// lexBot names an action's Lex bot (the designer's name, else the bot ID
// from the alias ARN) and finds its webhook in the -lex-map file.
func (c *converter) lexBot(a *connectAction, p *params) (name, arn, url string, ok bool) {
	arn = p.nested("LexV2Bot", "AliasArn")
	if arn == "" {
		arn = p.nested("LexBot", "Name") // Lex V1: the bot's name
	}
	meta := c.src.meta[a.Identifier]
	name = meta.LexV2BotName
	// bot-alias/<bot id>/<alias id>
	parts := strings.Split(arn, "/")
	if name == "" && len(parts) >= 3 {
		name = parts[len(parts)-2]
	}
	if name == "" {
		name = arn
	}
	if url, ok = lookup(c.opts.Lex, arn, name); !ok && len(parts) >= 3 {
		url, ok = c.opts.Lex[parts[len(parts)-2]]
	}
	return name, arn, url, ok
}

// convertLex: a Lex bot answered for by a webhook: the webhook receives
// the call's attributes and answers with IntentName and the slots (as
// top-level fields); a CheckAttribute on $.External.IntentName takes the
// intents' branches.
func convertLex(c *converter, a *connectAction, p *params, b *blockBuilder) error {
	name, _, url, ok := c.lexBot(a, p)
	if !ok {
		return fmt.Errorf("Amazon Lex bot %s: no webhook in the -lex-map file", name)
	}
	p.ignore("LexV2Bot", "LexBot", "LexSessionAttributes", "LexTimeoutSeconds", "LexInitializationData")
	if t := p.str("Text"); t != "" {
		b.note("the prompt %q is not played and the caller's speech is not heard: the webhook answers for Lex bot %s", t, name)
	}
	p.ignore("SSML", "PromptId", "Media")
	b.set("type", flows.TypeInvokeWebhook)
	b.set("url", url)
	b.set("timeout", 10)
	intent := newBlock()
	id := c.ids.unique(c.blockID[a.Identifier] + "_intent")
	c.actionOf[id] = a
	intent.set("type", flows.TypeCheckAttribute)
	intent.set("attribute", "$."+string(flows.NSExternal)+".IntentName")
	var conds []*orderedMap
	for i, t := range a.Transitions.Conditions {
		if t.Condition.Operator != "Equals" || len(t.Condition.Operands) != 1 {
			return fmt.Errorf("intent condition %s %v: only Equals with one intent is supported", t.Condition.Operator, t.Condition.Operands)
		}
		br := fmt.Sprintf("Intent%d", i+1)
		cm := &orderedMap{}
		cm.set("op", string(flows.OpEquals))
		cm.set("value", t.Condition.Operands[0])
		cm.set("branch", br)
		conds = append(conds, cm)
		if err := c.branch(intent, br, t.NextAction); err != nil {
			return err
		}
	}
	if len(conds) == 0 {
		return fmt.Errorf("no intent conditions: nothing to branch on")
	}
	intent.set("conditions", conds)
	noMatch := errorTarget(a, "NoMatchingCondition")
	if noMatch == "" {
		noMatch = a.Transitions.NextAction
	}
	if err := c.branch(intent, flows.BranchNoMatch, noMatch); err != nil {
		return err
	}
	if err := c.branch(intent, flows.BranchError, errorTarget(a, "NoMatchingError")); err != nil {
		return err
	}
	b.branches.set(flows.BranchSuccess, id)
	b.extra = append(b.extra, &extraBlock{blockBuilder: intent, id: id, what: "the intent"})
	return nil
}

func convertDisconnect(c *converter, a *connectAction, p *params, b *blockBuilder) error {
	b.set("type", flows.TypeDisconnect)
	return nil
}

func convertVoice(c *converter, a *connectAction, p *params, b *blockBuilder) error {
	voice := p.str("TextToSpeechVoice")
	if voice == "" {
		return fmt.Errorf("no TextToSpeechVoice")
	}
	for _, k := range []string{"TextToSpeechEngine", "TextToSpeechStyle"} {
		if v := p.str(k); v != "" {
			b.note("%s %s is not carried over: ariflow's text-to-speech is the configured engine, and the voice only picks its language", k, v)
		}
	}
	return setOne(c, a, b, flows.AttrTTSVoice, voice)
}

func convertLanguage(c *converter, a *connectAction, p *params, b *blockBuilder) error {
	return setOne(c, a, b, flows.AttrTTSLanguage, p.str("LanguageCode"))
}

func setOne(c *converter, a *connectAction, b *blockBuilder, key, v string) error {
	cv, err := value(v)
	if err != nil {
		return err
	}
	set := &orderedMap{}
	set.set(key, cv)
	b.set("type", flows.TypeSetAttributes)
	b.set("set", set)
	return c.branch(b, flows.BranchNext, a.Transitions.NextAction)
}
