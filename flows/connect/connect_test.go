package connect

import (
	"github.com/ariflow/ariflow/flows"

	"os"
	"strings"
	"testing"
)

func readConnect(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func sampleOptions(t *testing.T) Options {
	t.Helper()
	l, err := ParseMap("sample.lambda-map.yaml", readConnect(t, "sample.lambda-map.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	q, err := ParseMap("sample.queue-map.yaml", readConnect(t, "sample.queue-map.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return Options{Lambdas: l, Queues: q, Hours: "open"}
}

// Each test flow imports, its YAML loads again as the same flow (round
// trip), and the blocks and branches are the ones the Connect flow means.
func TestConvertConnectRoundTrip(t *testing.T) {
	type want struct {
		block, typ string
		branches   map[string]string
		check      func(b *flows.Block) string // "" when fine
	}
	for _, tc := range []struct {
		file, name, start string
		blocks            []want
		noops             int
	}{
		{file: "shipping.json", name: "shipping_import", start: "greet", blocks: []want{
			{"xfer", "TransferToPhoneNumber", map[string]string{"Success": "solved", "CallFailed": "bye", "Timeout": "bye", "Error": "bye"}, func(b *flows.Block) string {
				tr := b.Transfer
				if tr.Number.String() != "$.Attributes.shipper" || tr.Timeout.Literal != "30" || !tr.Resume || tr.DTMF.String() != "$.Attributes.StoredCustomerInput" ||
					tr.CallerIDNumber.Literal != "+4930555000" || tr.CallerIDName.Literal != "ACME Support" {
					return "transfer settings"
				}
				return ""
			}},
			{"ask", "GetCustomerInput", map[string]string{"Success": "xfer", "Timeout": "bye", "Error": "bye"}, func(b *flows.Block) string {
				if in := b.Input; in.MaxDigits != 20 || in.Terminator != "#" || in.StoreAs != "StoredCustomerInput" {
					return "input settings"
				}
				return ""
			}},
			{"check", "CheckAttribute", map[string]string{"Condition1": "bye", "NoMatch": "bye"}, func(b *flows.Block) string {
				if c := b.Check; c.Attribute.String() != "$.Transfer.TalkTime" || c.Conditions[0].Op != flows.OpGreaterThan {
					return "check settings"
				}
				return ""
			}},
			{"bye", "Disconnect", nil, nil},
		}},
		{file: "inbound_menu.json", name: "acme_main_menu", start: "voice_8a0f4f7e", noops: 2, blocks: []want{
			{"voice_8a0f4f7e", "SetAttributes", map[string]string{"Next": "input_0f9e8d7c", "Error": "input_0f9e8d7c"}, func(b *flows.Block) string {
				if a := b.Set.Set[0]; a.Key != flows.AttrTTSVoice || a.Value.Literal != "Joanna" {
					return "voice attribute"
				}
				return ""
			}},
			{"input_0f9e8d7c", "GetCustomerInput", map[string]string{"1": "say_9b8a7c6d", "2": "transfer_6d5c4b3a", "0": "input_0f9e8d7c", "NoMatch": "say_7c6b5a4d", "Timeout": "say_7c6b5a4d", "Error": "say_7c6b5a4d"}, func(b *flows.Block) string {
				want := "text:Welcome to Acme. For opening hours, press 1. To speak to an agent, press 2. To hear this again, press 0."
				if got := b.Input.Prompts[0].Literal; got != want {
					return "prompt " + got
				}
				return ""
			}},
			{"say_7c6b5a4d", "PlayPrompt", map[string]string{"Next": "disconnect_1a2b3c4d", "Error": "disconnect_1a2b3c4d"}, func(b *flows.Block) string {
				if got := b.Play.Prompts[0].Literal; got != "text:Sorry, I did not get that. Goodbye." {
					return "prompt " + got
				}
				return ""
			}},
			{"transfer_6d5c4b3a", "TransferToPhoneNumber", map[string]string{"CallFailed": "say_7c6b5a4d", "Timeout": "say_7c6b5a4d", "Error": "say_7c6b5a4d"}, func(b *flows.Block) string {
				if b.Transfer.Resume || b.Transfer.CallerIDNumber.String() != "$.System.CallerNumber" {
					return "transfer settings"
				}
				return ""
			}},
		}},
		{file: "callback_transfer.json", name: "courier_handoff", start: "Greeting", blocks: []want{
			{"To_courier", "TransferToPhoneNumber", map[string]string{"Success": "Welcome_back", "CallFailed": "Courier_unreachable", "Timeout": "Courier_unreachable", "Error": "Goodbye"}, func(b *flows.Block) string {
				if tr := b.Transfer; !tr.Resume || tr.DTMF.String() != "$.Attributes.parcel" || tr.Timeout.Literal != "25" {
					return "transfer settings"
				}
				return ""
			}},
			{"Ask_parcel", "GetCustomerInput", map[string]string{"Success": "Remember", "Timeout": "Goodbye", "Error": "Goodbye"}, func(b *flows.Block) string {
				if b.Input.MaxDigits != 12 {
					return "max digits"
				}
				return ""
			}},
			{"Welcome_back", "GetCustomerInput", map[string]string{"1": "Goodbye", "2": "Courier_unreachable", "NoMatch": "Goodbye", "Timeout": "Goodbye", "Error": "Goodbye"}, nil},
		}},
		{file: "lambda_lookup.json", name: "balance_lookup", start: "lookup", noops: 1, blocks: []want{
			{"lookup", "InvokeWebhook", map[string]string{"Success": "known", "Error": "sorry"}, func(b *flows.Block) string {
				if b.Webhook.URL != "https://crm.example.com/lookup" || b.Webhook.Timeout.Seconds() != 8 {
					return "webhook settings"
				}
				return ""
			}},
			{"balance", "PlayPrompt", map[string]string{"Next": "bye", "Error": "bye"}, func(b *flows.Block) string {
				if got := b.Play.Prompts[0].Literal; got != "text:Hello $.External.firstName. Your balance is $.External.balance euros." {
					return "prompt " + got
				}
				return ""
			}},
		}},
		{file: "sample_inbound.json", name: "sample_inbound_flow__first_contact_experience", start: "voice_d23f0824", noops: 2, blocks: []want{
			{"say_9531985d", "PlayPrompt", map[string]string{"Next": "lambda_6b0d549b", "Error": "disconnect_8e81973e"}, nil},
			{"lambda_6b0d549b", "InvokeWebhook", map[string]string{"Success": "set_8d116ece", "Error": "set_queue_a170b338"}, nil},
			{"check_90c192cf", "CheckAttribute", map[string]string{"Condition1": "transfer_6b4cb242", "NoMatch": "set_queue_a170b338"}, nil},
			{"set_queue_a170b338", "SetWorkingQueue", map[string]string{"Next": "queue_0fd630f1", "Error": "disconnect_8e81973e"}, func(b *flows.Block) string {
				if q := b.SetQueue; q.Name != "BasicQueue" || q.Context != "queues" || q.Extension != "basic" {
					return "working queue"
				}
				return ""
			}},
			{"queue_0fd630f1", "TransferToQueue", map[string]string{"Error": "disconnect_8e81973e"}, nil},
			{"transfer_6b4cb242", "TransferToPhoneNumber", map[string]string{"Success": "disconnect_8e81973e", "CallFailed": "set_queue_a170b338", "Timeout": "set_queue_a170b338", "Error": "disconnect_8e81973e"}, func(b *flows.Block) string {
				if b.Transfer.Timeout.Literal != "45" {
					return "ThirdPartyConnectionTimeLimitSeconds"
				}
				return ""
			}},
		}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			imp, err := Convert(readConnect(t, tc.file), sampleOptions(t))
			if err != nil {
				t.Fatal(err)
			}
			f, err := flows.Parse(tc.file+".yaml", imp.YAML, flows.LoadOptions{})
			if err != nil {
				t.Fatalf("the written YAML does not load: %v\n%s", err, imp.YAML)
			}
			if f.Name != tc.name || f.Start != tc.start || len(f.Entries) != 1 || f.Entries[0] != tc.name {
				t.Errorf("header %q start %q entries %v", f.Name, f.Start, f.Entries)
			}
			if len(f.Blocks) != len(imp.Flow.Blocks) {
				t.Errorf("round trip: %d blocks, import had %d", len(f.Blocks), len(imp.Flow.Blocks))
			}
			for _, w := range tc.blocks {
				b := f.Blocks[w.block]
				if b == nil {
					t.Errorf("no block %s in\n%s", w.block, imp.YAML)
					continue
				}
				if string(b.Type) != w.typ {
					t.Errorf("%s: type %s, want %s", w.block, b.Type, w.typ)
				}
				if w.branches != nil && !sameBranches(b.Branches, w.branches) {
					t.Errorf("%s: branches %v, want %v", w.block, b.Branches, w.branches)
				}
				if w.check != nil {
					if bad := w.check(b); bad != "" {
						t.Errorf("%s: %s", w.block, bad)
					}
				}
			}
			noops := 0
			for _, a := range imp.Report.Actions {
				if strings.HasPrefix(a.Result, "no-op") {
					noops++
				}
				if a.Reachable && a.Block == "" && !strings.HasPrefix(a.Result, "no-op") {
					t.Errorf("report: reachable action %s is %q", a.Identifier, a.Result)
				}
			}
			if noops != tc.noops {
				t.Errorf("report: %d no-ops, want %d", noops, tc.noops)
			}
		})
	}
}

func sameBranches(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// The sample flow's report names every action: the no-ops, the queue
// pair, and the Lex bot nobody can reach, left out.
func TestConnectReport(t *testing.T) {
	imp, err := Convert(readConnect(t, "sample_inbound.json"), sampleOptions(t))
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	if err := imp.Report.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"UpdateFlowLoggingBehavior        no-op (flow logs are Connect's",
		"CheckHoursOfOperation            no-op (always open (-hours open))",
		"UpdateContactTargetQueue         block set_queue_a170b338 (SetWorkingQueue)",
		"TransferContactToQueue           block queue_0fd630f1 (TransferToQueue)",
		"note: LambdaInvocationAttributes are not sent",
		"ConnectParticipantWithLexBot     not mapped: Amazon Lex bot ABCDEFGHIJ (arn:aws:lex:eu-central-1:123456789012:bot-alias/ABCDEFGHIJ/TSTALIASID): ariflow has no speech recognition; name a webhook that answers for the bot in the -lex-map file, or replace the action; not reachable from StartAction: left out",
		"MessageParticipant               not reachable from StartAction: left out",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	if len(imp.Report.Actions) != 13 {
		t.Errorf("report has %d actions, want all 13", len(imp.Report.Actions))
	}
}

func TestConvertConnectErrors(t *testing.T) {
	one := func(typ, params, transitions string) string {
		return `{"StartAction": "a", "Actions": [{"Identifier": "a", "Type": "` + typ + `", "Parameters": ` + params +
			`, "Transitions": ` + transitions + `}, {"Identifier": "z", "Type": "DisconnectParticipant"}]}`
	}
	next := `{"NextAction": "z"}`
	for _, tc := range []struct {
		name, in string
		opts     Options
		want     string
	}{
		{"not JSON", `{`, Options{}, "connect flow:"},
		{"no actions", `{"Actions": []}`, Options{}, "no Actions"},
		{"bad start", `{"StartAction": "x", "Actions": [{"Identifier": "a", "Type": "DisconnectParticipant"}]}`, Options{}, `StartAction "x" names no action`},
		{"lambda unmapped", one("InvokeLambdaFunction", `{"LambdaFunctionARN": "arn:aws:lambda:eu-central-1:1:function:f"}`, next), Options{},
			"action a (InvokeLambdaFunction): no URL for Lambda function arn:aws:lambda:eu-central-1:1:function:f: add it to the -lambda-map file"},
		{"lambda dynamic", one("InvokeLambdaFunction", `{"LambdaFunctionARN": "$.Attributes.fn"}`, next), Options{}, "only a fixed function"},
		{"lex reachable", one("ConnectParticipantWithLexBot", `{"Text": "Hi"}`, next), Options{}, "action a (ConnectParticipantWithLexBot): an Amazon Lex bot: ariflow has no speech recognition"},
		{"unknown type", one("FooBar", `{}`, next), Options{}, "action a (FooBar): action type FooBar has no ariflow equivalent"},
		{"hours", one("CheckHoursOfOperation", `{}`, next), Options{}, "action a (CheckHoursOfOperation): hours of operation are kept in Connect: import with -hours"},
		{"prompt ARN", one("MessageParticipant", `{"PromptId": "arn:aws:connect:eu-central-1:1:instance/i/prompt/p"}`, next), Options{}, "action a (MessageParticipant): prompt arn:aws:connect:eu-central-1:1:instance/i/prompt/p: not in the -prompt-map file"},
		{"S3 media", one("MessageParticipant", `{"Media": {"Uri": "s3://bucket/hello.wav", "SourceType": "S3"}}`, next), Options{}, "prompt s3://bucket/hello.wav (hello.wav): not in the -prompt-map file"},
		{"text too long", one("MessageParticipant", `{"Text": "`+strings.Repeat("a", 1001)+`"}`, next), Options{}, "text prompt of 1001 bytes"},
		{"text unknown path", one("MessageParticipant", `{"Text": "Hello $.Customer.FirstName"}`, next), Options{}, "Connect's $.Customer.FirstName has no ariflow equivalent"},
		{"queue without target", one("TransferContactToQueue", `{}`, `{"Errors": [{"NextAction": "z", "ErrorType": "NoMatchingError"}]}`), Options{}, "no UpdateContactTargetQueue (Set working queue) before it"},
		{"queue unmapped", `{"StartAction": "q", "Actions": [
			{"Identifier": "q", "Type": "UpdateContactTargetQueue", "Parameters": {"QueueId": "arn:aws:connect:r:1:instance/i/queue/Q1"}, "Transitions": {"NextAction": "t"}},
			{"Identifier": "t", "Type": "TransferContactToQueue", "Transitions": {"Errors": [{"NextAction": "z", "ErrorType": "NoMatchingError"}]}},
			{"Identifier": "z", "Type": "DisconnectParticipant"}]}`, Options{}, "action q (UpdateContactTargetQueue): no dialplan place for queue arn:aws:connect:r:1:instance/i/queue/Q1"},
		{"no-op loop", `{"StartAction": "a", "Actions": [
			{"Identifier": "a", "Type": "UpdateFlowLoggingBehavior", "Transitions": {"NextAction": "b"}},
			{"Identifier": "b", "Type": "UpdateFlowLoggingBehavior", "Transitions": {"NextAction": "a"}}]}`, Options{}, "loop without doing anything"},
		{"dangling", one("MessageParticipant", `{"Text": "Hi"}`, `{"NextAction": "nowhere"}`), Options{}, `action a (MessageParticipant): branch Next: transition to "nowhere", which names no action`},
		{"bad number", one("TransferParticipantToThirdParty", `{"ThirdPartyPhoneNumber": "123&PJSIP/x", "ContinueFlowExecution": "False"}`,
			`{"Errors": [{"NextAction": "z", "ErrorType": "CallFailed"}, {"NextAction": "z", "ErrorType": "ConnectionTimeLimitExceeded"}]}`), Options{},
			`action a (TransferParticipantToThirdParty): block "a": number: invalid phone number "123&PJSIP/x"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Convert([]byte(tc.in), tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v\nwant %q", err, tc.want)
			}
		})
	}
}

// A flow with both timeout names imports the same way every time: the
// name Connect exports today wins.
func TestImportConnectBothTimeoutsDeterministic(t *testing.T) {
	in := []byte(`{"StartAction": "a", "Actions": [{"Identifier": "a", "Type": "TransferParticipantToThirdParty",
	  "Parameters": {"ThirdPartyPhoneNumber": "+4930123456", "ThirdPartyConnectionTimeoutSeconds": "20",
	                 "ThirdPartyConnectionTimeLimitSeconds": "45", "ContinueFlowExecution": "False"},
	  "Transitions": {"Errors": [{"NextAction": "a", "ErrorType": "CallFailed"}, {"NextAction": "a", "ErrorType": "ConnectionTimeLimitExceeded"}]}}]}`)
	for i := 0; i < 50; i++ {
		f, err := Import(in)
		if err != nil {
			t.Fatal(err)
		}
		if got := f.Blocks["a"].Transfer.Timeout.Literal; got != "45" {
			t.Fatalf("run %d: timeout %q, want 45 (ThirdPartyConnectionTimeLimitSeconds)", i, got)
		}
	}
}

// DescribeContactFlow's answer holds the flow as a string.
func TestConvertConnectDescribeContactFlow(t *testing.T) {
	in := []byte(`{"ContactFlow": {"Name": "Wrapped Flow", "Content": "{\"Version\":\"2019-10-30\",\"StartAction\":\"a\",\"Actions\":[{\"Identifier\":\"a\",\"Type\":\"DisconnectParticipant\",\"Parameters\":{},\"Transitions\":{}}]}"}}`)
	imp, err := Convert(in, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if imp.Flow.Name != "wrapped_flow" || imp.Flow.Blocks["a"].Type != flows.TypeDisconnect {
		t.Errorf("flow %q blocks %v", imp.Flow.Name, imp.Flow.Blocks)
	}
}

func TestParseConnectMap(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"a: b\nc: d\n", ""},
		{"- a\n", "m:1: want a mapping"},
		{"a: b\na: c\n", `m:2: "a" is mapped twice`},
		{"a: [b]\n", "m:1: want \"name: value\""},
	} {
		_, err := ParseMap("m", []byte(tc.in))
		if (tc.want == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseMap(%q) = %v, want %q", tc.in, err, tc.want)
		}
	}
	for _, tc := range []struct {
		in   string
		want DialplanPlace
		bad  bool
	}{
		{in: "queues", want: DialplanPlace{"queues", "s", 0}},
		{in: "queues,support,2", want: DialplanPlace{"queues", "support", 2}},
		{in: "queues,sup port", bad: true},
		{in: "a,b,0", bad: true},
		{in: "a,b,1,2", bad: true},
	} {
		got, err := ParseDialplanTarget(tc.in)
		if tc.bad != (err != nil) || !tc.bad && got != tc.want {
			t.Errorf("ParseDialplanTarget(%q) = %+v, %v", tc.in, got, err)
		}
	}
}
