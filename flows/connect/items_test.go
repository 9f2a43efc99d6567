package connect

import (
	"strings"
	"testing"

	"github.com/ariflow/ariflow/flows"
)

// One test per problem issue 17 found on real exports. The actions are
// written in the shapes the flow designer exports (parameter values as
// strings, transitions as the designer writes them for that block).

// export wraps actions into a designer export named name.
func export(name, start, meta string, actions ...string) []byte {
	if meta == "" {
		meta = "{}"
	}
	return []byte(`{"Version": "2019-10-30", "StartAction": "` + start + `", "Metadata": {"name": "` + name +
		`", "type": "contactFlow", "status": "published", "ActionMetadata": ` + meta + `}, "Actions": [` + strings.Join(actions, ",\n") + `]}`)
}

const bye = `{"Identifier": "bye", "Type": "DisconnectParticipant", "Parameters": {}, "Transitions": {}}`

const sorry = `{"Identifier": "sorry", "Type": "MessageParticipant", "Parameters": {"Text": "Sorry."},
  "Transitions": {"NextAction": "bye", "Errors": [{"NextAction": "bye", "ErrorType": "NoMatchingError"}]}}`

func convertOK(t *testing.T, data []byte, opts Options) *Result {
	t.Helper()
	r, err := Convert(data, opts)
	if err != nil {
		if r != nil && r.YAML != nil {
			t.Logf("YAML:\n%s", r.YAML)
		}
		t.Fatal(err)
	}
	return r
}

// Item 1: a resume-off transfer as Connect exports it (NextAction and
// NoMatchingError only) imports, its failures taking the error branch as
// in Connect, and every setting carried over.
func TestItemResumeOffTransfer(t *testing.T) {
	data := export("Agent Handoff", "xfer", "",
		`{"Parameters": {"ThirdPartyPhoneNumber": "$.Attributes.agent", "ThirdPartyConnectionTimeLimitSeconds": "20",
		   "ContinueFlowExecution": "False", "ThirdPartyDTMFDigits": "1,2", "CallerId": {"Number": "+4930555000", "Name": "ACME Support"}},
		  "Identifier": "xfer", "Type": "TransferParticipantToThirdParty",
		  "Transitions": {"NextAction": "after", "Errors": [{"NextAction": "sorry", "ErrorType": "NoMatchingError"}]}}`,
		`{"Parameters": {"Text": "After."}, "Identifier": "after", "Type": "MessageParticipant",
		  "Transitions": {"NextAction": "bye", "Errors": [{"NextAction": "bye", "ErrorType": "NoMatchingError"}]}}`,
		sorry, bye)
	r := convertOK(t, data, Options{})
	b := r.Flow.Blocks["xfer"]
	tr := b.Transfer
	if tr.Resume || tr.Number.String() != "$.Attributes.agent" || tr.Timeout.Literal != "20" || tr.DTMF.Literal != "1,2" ||
		tr.CallerIDNumber.Literal != "+4930555000" || tr.CallerIDName.Literal != "ACME Support" {
		t.Errorf("transfer settings %+v", tr)
	}
	if !sameBranches(b.Branches, map[string]string{"CallFailed": "sorry", "Timeout": "sorry", "Error": "sorry"}) {
		t.Errorf("branches %v", b.Branches)
	}
	if !strings.Contains(string(r.YAML), "timeout: 20\n") {
		t.Errorf("timeout not written as a number:\n%s", r.YAML)
	}
	if _, ok := r.Flow.Blocks["after"]; ok {
		t.Errorf("after is reached only by the NextAction a resume-off transfer never takes; imported anyway")
	}
}

// Item 1, second half: what the loader would refuse is reported in the
// same pass as what the importer refuses, each by action ID and type.
func TestItemOnePassReport(t *testing.T) {
	data := export("Two Problems", "check", "",
		`{"Parameters": {"CheckVoiceIdOption": "voiceAuthentication"}, "Identifier": "check", "Type": "CheckVoiceId",
		  "Transitions": {"NextAction": "xfer", "Errors": [{"NextAction": "xfer", "ErrorType": "NoMatchingError"}]}}`,
		`{"Parameters": {"ThirdPartyPhoneNumber": "+4930123456", "ContinueFlowExecution": "True", "ThirdPartyDTMFDigits": "12x4"}, "Identifier": "xfer", "Type": "TransferParticipantToThirdParty",
		  "Transitions": {"NextAction": "bye", "Errors": [{"NextAction": "bye", "ErrorType": "NoMatchingError"}]}}`,
		`{"Parameters": {"Text": "Hi", "StoreInput": "False"}, "Identifier": "menu", "Type": "GetParticipantInput",
		  "Transitions": {"NextAction": "bye", "Conditions": [{"NextAction": "nowhere", "Condition": {"Operator": "Equals", "Operands": ["1"]}}],
		  "Errors": [{"NextAction": "bye", "ErrorType": "NoMatchingError"}]}}`,
		bye)
	_, err := Convert(data, Options{})
	if err == nil {
		t.Fatal("imported")
	}
	for _, want := range []string{
		"action check (CheckVoiceId): ",
		`action xfer (TransferParticipantToThirdParty): block "xfer": dtmf: invalid DTMF`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "menu") {
		t.Errorf("unreachable action reported:\n%v", err)
	}
}

// Item 2: flows joined by TransferToFlow import together; the block names
// the other flow, found by its ARN (DescribeContactFlow) or by the name the
// designer shows.
func TestItemTransferToFlow(t *testing.T) {
	main := export("Main IVR", "greet", `{"to-billing": {"contactFlow": {"text": "Billing Queue Flow", "id": "arn:aws:connect:eu-central-1:123456789012:instance/i-1/contact-flow/f-billing"}}}`,
		`{"Parameters": {"Text": "Welcome"}, "Identifier": "greet", "Type": "MessageParticipant",
		  "Transitions": {"NextAction": "to-billing", "Errors": [{"NextAction": "bye", "ErrorType": "NoMatchingError"}]}}`,
		`{"Parameters": {"ContactFlowId": "arn:aws:connect:eu-central-1:123456789012:instance/i-1/contact-flow/f-billing"}, "Identifier": "to-billing", "Type": "TransferToFlow",
		  "Transitions": {"NextAction": "bye", "Errors": [{"NextAction": "bye", "ErrorType": "NoMatchingError"}]}}`,
		bye)
	billing := export("Billing Queue Flow", "hello", "",
		`{"Parameters": {"Text": "Billing"}, "Identifier": "hello", "Type": "MessageParticipant",
		  "Transitions": {"NextAction": "bye", "Errors": [{"NextAction": "bye", "ErrorType": "NoMatchingError"}]}}`, bye)
	res, err := ConvertSet([]Input{{"main.json", main}, {"billing.json", billing}}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Flows) != 2 {
		t.Fatalf("%d flows", len(res.Flows))
	}
	j := res.Flows[0].Flow.Blocks["to-billing"]
	if j == nil || j.Type != flows.TypeTransferToFlow || j.Jump.Flow != "billing_queue_flow" || j.Branches["Error"] != "bye" {
		t.Errorf("TransferToFlow block %+v", j)
	}
	// Alone, the main flow names a flow nobody imported: refused by action.
	_, err = Convert(main, Options{})
	if err == nil || !strings.Contains(err.Error(), "action to-billing (TransferToFlow): ") || !strings.Contains(err.Error(), "Billing Queue Flow") {
		t.Errorf("alone: %v", err)
	}
	// ... unless a mapping file names the ariflow flow it continues in.
	r := convertOK(t, main, Options{Flows: map[string]string{"f-billing": "billing"}})
	if r.Flow.Blocks["to-billing"].Jump.Flow != "billing" {
		t.Errorf("mapped: %+v", r.Flow.Blocks["to-billing"].Jump)
	}
}

// Item 3: Connect's Loop becomes a Loop block with its count and branches.
func TestItemLoop(t *testing.T) {
	data := export("Retry", "tries", "",
		`{"Parameters": {"LoopCount": "3"}, "Identifier": "tries", "Type": "Loop",
		  "Transitions": {"NextAction": "bye", "Conditions": [
		    {"NextAction": "ask", "Condition": {"Operator": "Equals", "Operands": ["ContinueLooping"]}},
		    {"NextAction": "bye", "Condition": {"Operator": "Equals", "Operands": ["DoneLooping"]}}]}}`,
		`{"Parameters": {"Text": "Press 1", "StoreInput": "False", "InputTimeLimitSeconds": "5"}, "Identifier": "ask", "Type": "GetParticipantInput",
		  "Transitions": {"NextAction": "tries", "Conditions": [{"NextAction": "bye", "Condition": {"Operator": "Equals", "Operands": ["1"]}}],
		  "Errors": [{"NextAction": "tries", "ErrorType": "InputTimeLimitExceeded"}, {"NextAction": "tries", "ErrorType": "NoMatchingCondition"},
		    {"NextAction": "bye", "ErrorType": "NoMatchingError"}]}}`,
		bye)
	r := convertOK(t, data, Options{})
	b := r.Flow.Blocks["tries"]
	if b.Type != flows.TypeLoop || b.Loop.Count.Literal != "3" || !sameBranches(b.Branches, map[string]string{"ContinueLooping": "ask", "DoneLooping": "bye"}) {
		t.Errorf("loop %+v %v", b.Loop, b.Branches)
	}
}

// Item 4: prompts given as Connect prompt ARNs map through the prompt
// mapping file (by ARN, by ID, or by the name the designer shows) to media
// URIs or sound files.
func TestItemPromptMap(t *testing.T) {
	data := export("Prompts", "p1", `{"p2": {"promptName": "Hold Music.wav"}}`,
		`{"Parameters": {"PromptId": "arn:aws:connect:eu-central-1:123456789012:instance/i-1/prompt/0a1b2c3d-0000-4000-8000-000000000001"}, "Identifier": "p1", "Type": "MessageParticipant",
		  "Transitions": {"NextAction": "p2", "Errors": [{"NextAction": "bye", "ErrorType": "NoMatchingError"}]}}`,
		`{"Parameters": {"PromptId": "arn:aws:connect:eu-central-1:123456789012:instance/i-1/prompt/0a1b2c3d-0000-4000-8000-000000000002"}, "Identifier": "p2", "Type": "MessageParticipant",
		  "Transitions": {"NextAction": "bye", "Errors": [{"NextAction": "bye", "ErrorType": "NoMatchingError"}]}}`,
		bye)
	_, err := Convert(data, Options{})
	if err == nil || !strings.Contains(err.Error(), "action p1 (MessageParticipant): ") || !strings.Contains(err.Error(), "-prompt-map") ||
		!strings.Contains(err.Error(), "action p2 (MessageParticipant): ") {
		t.Errorf("without a prompt map: %v", err)
	}
	r := convertOK(t, data, Options{Prompts: map[string]string{
		"0a1b2c3d-0000-4000-8000-000000000001": "sound:custom/welcome",
		"Hold Music.wav":                       "custom/hold-music.wav",
	}})
	if got := r.Flow.Blocks["p1"].Play.Prompts[0].Literal; got != "sound:custom/welcome" {
		t.Errorf("p1 plays %q", got)
	}
	if got := r.Flow.Blocks["p2"].Play.Prompts[0].Literal; got != "sound:custom/hold-music" {
		t.Errorf("p2 plays %q", got)
	}
}

// Item 5: references with a meaning in ariflow are carried over ($.Channel
// is always voice; $.Queue.Name the working queue's; $.Lex.* a Lex
// webhook's answer; text with references inside it becomes a template);
// the rest is refused by action ID.
func TestItemReferences(t *testing.T) {
	data := export("Refs", "set", "",
		`{"Parameters": {"Attributes": {"label": "$.Attributes.journey | IA Branch", "channel": "$.Channel", "queue": "$.Queue.Name", "intent": "$.Lex.IntentName", "city": "$.Lex.Slots.CityName"}},
		  "Identifier": "set", "Type": "UpdateContactAttributes", "Transitions": {"NextAction": "chan", "Errors": [{"NextAction": "bye", "ErrorType": "NoMatchingError"}]}}`,
		`{"Parameters": {"ComparisonValue": "$.Channel"}, "Identifier": "chan", "Type": "Compare",
		  "Transitions": {"NextAction": "bye", "Conditions": [
		    {"NextAction": "voice", "Condition": {"Operator": "Equals", "Operands": ["VOICE"]}},
		    {"NextAction": "bye", "Condition": {"Operator": "Equals", "Operands": ["CHAT"]}}],
		  "Errors": [{"NextAction": "bye", "ErrorType": "NoMatchingCondition"}]}}`,
		`{"Parameters": {"Text": "You are in $.Queue.Name on $.Channel."}, "Identifier": "voice", "Type": "MessageParticipant",
		  "Transitions": {"NextAction": "bye", "Errors": [{"NextAction": "bye", "ErrorType": "NoMatchingError"}]}}`,
		bye)
	r := convertOK(t, data, Options{})
	want := map[string]string{"label": "$.Attributes.journey | IA Branch", "channel": "VOICE", "queue": "$.Queue.Name", "intent": "$.External.IntentName", "city": "$.External.CityName"}
	for _, as := range r.Flow.Blocks["set"].Set.Set {
		if as.Value.String() != want[as.Key] {
			t.Errorf("%s = %q, want %q", as.Key, as.Value.String(), want[as.Key])
		}
	}
	if r.Flow.Start != "set" || r.Flow.Blocks["set"].Branches["Next"] != "voice" {
		t.Errorf("$.Channel is always VOICE: the Compare should pass straight to voice; set -> %v", r.Flow.Blocks["set"].Branches)
	}
	if got := r.Flow.Blocks["voice"].Play.Prompts[0].Literal; got != "text:You are in $.Queue.Name on VOICE." {
		t.Errorf("prompt %q", got)
	}
	bad := export("Refs", "set", "",
		`{"Parameters": {"Attributes": {"caller_id": "$.Queue.OutboundCallerId.Number"}},
		  "Identifier": "set", "Type": "UpdateContactAttributes", "Transitions": {"NextAction": "bye", "Errors": [{"NextAction": "bye", "ErrorType": "NoMatchingError"}]}}`, bye)
	if _, err := Convert(bad, Options{}); err == nil || !strings.Contains(err.Error(), "action set (UpdateContactAttributes): ") || !strings.Contains(err.Error(), "$.Queue.OutboundCallerId.Number") {
		t.Errorf("unknown queue path: %v", err)
	}
}

// Item 6: several "Set working queue" actions feeding one "Transfer to
// queue": each path transfers to its own queue.
func TestItemWorkingQueue(t *testing.T) {
	data := export("Queues", "menu", `{"q1": {"queue": {"id": "arn:aws:connect:eu-central-1:123456789012:instance/i-1/queue/q-sales", "text": "Sales"}}}`,
		`{"Parameters": {"Text": "1 or 2", "StoreInput": "False", "InputTimeLimitSeconds": "5"}, "Identifier": "menu", "Type": "GetParticipantInput",
		  "Transitions": {"NextAction": "bye", "Conditions": [
		    {"NextAction": "q1", "Condition": {"Operator": "Equals", "Operands": ["1"]}},
		    {"NextAction": "q2", "Condition": {"Operator": "Equals", "Operands": ["2"]}}],
		  "Errors": [{"NextAction": "bye", "ErrorType": "InputTimeLimitExceeded"}, {"NextAction": "bye", "ErrorType": "NoMatchingCondition"}, {"NextAction": "bye", "ErrorType": "NoMatchingError"}]}}`,
		`{"Parameters": {"QueueId": "arn:aws:connect:eu-central-1:123456789012:instance/i-1/queue/q-sales"}, "Identifier": "q1", "Type": "UpdateContactTargetQueue",
		  "Transitions": {"NextAction": "xfer", "Errors": [{"NextAction": "bye", "ErrorType": "NoMatchingError"}]}}`,
		`{"Parameters": {"QueueId": "arn:aws:connect:eu-central-1:123456789012:instance/i-1/queue/q-support"}, "Identifier": "q2", "Type": "UpdateContactTargetQueue",
		  "Transitions": {"NextAction": "xfer", "Errors": [{"NextAction": "bye", "ErrorType": "NoMatchingError"}]}}`,
		`{"Parameters": {}, "Identifier": "xfer", "Type": "TransferContactToQueue",
		  "Transitions": {"NextAction": "bye", "Errors": [{"NextAction": "sorry", "ErrorType": "QueueAtCapacity"}, {"NextAction": "sorry", "ErrorType": "NoMatchingError"}]}}`,
		sorry, bye)
	r := convertOK(t, data, Options{Queues: map[string]string{"Sales": "queues,sales", "q-support": "queues,support,2"}})
	q1, q2 := r.Flow.Blocks["q1"].SetQueue, r.Flow.Blocks["q2"].SetQueue
	if q1 == nil || q1.Name != "Sales" || q1.Context != "queues" || q1.Extension != "sales" {
		t.Errorf("q1 %+v", q1)
	}
	if q2 == nil || q2.Name != "q-support" || q2.Extension != "support" || q2.Priority != 2 {
		t.Errorf("q2 %+v", q2)
	}
	if x := r.Flow.Blocks["xfer"]; x.Type != flows.TypeTransferToQueue || x.Branches["Error"] != "sorry" {
		t.Errorf("xfer %+v %v", x.Type, x.Branches)
	}
}

// Item 7: a Lex bot maps to a webhook through the Lex mapping file (its
// answer's IntentName picks the branch), or is refused naming the bot.
func TestItemLex(t *testing.T) {
	data := export("Lex", "lex", `{"lex": {"lexV2BotName": "City-Capture"}}`,
		`{"Parameters": {"Text": "Please say your city.", "LexV2Bot": {"AliasArn": "arn:aws:lex:eu-central-1:123456789012:bot-alias/BOT123/ALIAS9"}},
		  "Identifier": "lex", "Type": "ConnectParticipantWithLexBot",
		  "Transitions": {"NextAction": "sorry", "Conditions": [{"NextAction": "got", "Condition": {"Operator": "Equals", "Operands": ["City"]}}],
		  "Errors": [{"NextAction": "sorry", "ErrorType": "NoMatchingCondition"}, {"NextAction": "bye", "ErrorType": "NoMatchingError"}]}}`,
		`{"Parameters": {"Attributes": {"City": "$.Lex.Slots.CityName"}}, "Identifier": "got", "Type": "UpdateContactAttributes",
		  "Transitions": {"NextAction": "bye", "Errors": [{"NextAction": "bye", "ErrorType": "NoMatchingError"}]}}`,
		sorry, bye)
	_, err := Convert(data, Options{})
	if err == nil || !strings.Contains(err.Error(), "action lex (ConnectParticipantWithLexBot): ") || !strings.Contains(err.Error(), "City-Capture") || !strings.Contains(err.Error(), "-lex-map") {
		t.Errorf("without a Lex map: %v", err)
	}
	r := convertOK(t, data, Options{Lex: map[string]string{"City-Capture": "https://nlu.example.com/city"}})
	w := r.Flow.Blocks["lex"]
	if w.Type != flows.TypeInvokeWebhook || w.Webhook.URL != "https://nlu.example.com/city" || w.Branches["Error"] != "bye" {
		t.Fatalf("lex webhook %+v %v", w.Type, w.Branches)
	}
	intent := r.Flow.Blocks[w.Branches["Success"]]
	if intent == nil || intent.Type != flows.TypeCheckAttribute || intent.Check.Attribute.String() != "$.External.IntentName" ||
		intent.Check.Conditions[0].Operand.Literal != "City" || intent.Branches[intent.Check.Conditions[0].Branch] != "got" || intent.Branches["NoMatch"] != "sorry" {
		t.Errorf("intent check %+v %v", intent, intent.Branches)
	}
}

// Item 8: the smaller things. No `start block ""` in a failed report; an
// empty queue is not reported as an agent's; parameters that are not
// carried over are noted, never dropped silently; timeouts are numbers.
func TestItemSmaller(t *testing.T) {
	r, err := Convert(export("Fails", "q", "",
		`{"Parameters": {}, "Identifier": "q", "Type": "UpdateContactTargetQueue", "Transitions": {"NextAction": "bye", "Errors": [{"NextAction": "bye", "ErrorType": "NoMatchingError"}]}}`, bye), Options{})
	if err == nil || strings.Contains(err.Error(), "AgentId") || !strings.Contains(err.Error(), "no QueueId") {
		t.Errorf("empty queue: %v", err)
	}
	var b strings.Builder
	if err := r.Report.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), `start block ""`) {
		t.Errorf("report:\n%s", b.String())
	}
	r = convertOK(t, export("Notes", "voice", "",
		`{"Parameters": {"TextToSpeechVoice": "Joanna", "TextToSpeechEngine": "Neural", "TextToSpeechStyle": "Conversational"}, "Identifier": "voice", "Type": "UpdateContactTextToSpeechVoice",
		  "Transitions": {"NextAction": "ask", "Errors": [{"NextAction": "bye", "ErrorType": "NoMatchingError"}]}}`,
		`{"Parameters": {"Text": "Number?", "StoreInput": "True", "InputTimeLimitSeconds": "7", "SkipWhenDTMFBufferEnabled": "True",
		   "DTMFConfiguration": {"InputTerminationSequence": "#", "DisableCancelKey": "True"}}, "Identifier": "ask", "Type": "GetParticipantInput",
		  "Transitions": {"NextAction": "bye", "Errors": [{"NextAction": "bye", "ErrorType": "InputTimeLimitExceeded"}, {"NextAction": "bye", "ErrorType": "NoMatchingError"}]}}`,
		bye), Options{})
	notes := map[string]string{}
	for _, m := range r.Report.Actions {
		notes[m.Identifier] = strings.Join(m.Notes, "\n")
	}
	for id, wants := range map[string][]string{
		"voice": {"TextToSpeechEngine", "TextToSpeechStyle"},
		"ask":   {"SkipWhenDTMFBufferEnabled", "DTMFConfiguration.DisableCancelKey"},
	} {
		for _, w := range wants {
			if !strings.Contains(notes[id], w) {
				t.Errorf("%s: no note on %s; notes:\n%s", id, w, notes[id])
			}
		}
	}
	if !strings.Contains(string(r.YAML), "timeout: 7\n") {
		t.Errorf("input timeout:\n%s", r.YAML)
	}
}
