package transfer

import (
	"reflect"
	"testing"
	"time"

	"github.com/ariflow/ariflow/record"
)

func TestMatchReturnKey(t *testing.T) {
	for _, tc := range []struct {
		key, held, digit   string
		forward, stillHeld string
		matched            bool
	}{
		{"*", "", "*", "", "", true},
		{"*", "", "5", "5", "", false},
		{"**", "", "*", "", "*", false},
		{"**", "*", "*", "", "", true},
		{"**", "*", "5", "*5", "", false}, // the held * was not the key after all
		{"*#", "*", "*", "*", "*", false}, // "**": the first goes, the second may begin "*#"
		{"*#", "*", "#", "", "", true},
		{"12", "", "1", "", "1", false},
		{"12", "1", "1", "1", "1", false},
		{"#", "", "#", "", "", true},
	} {
		fwd, held, ok := matchReturnKey(tc.key, tc.held, tc.digit)
		if fwd != tc.forward || held != tc.stillHeld || ok != tc.matched {
			t.Errorf("matchReturnKey(%q, %q, %q) = %q, %q, %v; want %q, %q, %v",
				tc.key, tc.held, tc.digit, fwd, held, ok, tc.forward, tc.stillHeld, tc.matched)
		}
	}
}

// What a takeover needs of a plan survives the record's wire form.
func TestPlanSurvivesTheRecord(t *testing.T) {
	p := Plan{Digits: "1,2", Resume: true, CallerIDNumber: "+4930555000", CallerIDName: "ACME",
		Targets: []record.Target{{Number: "+4930123456", Dial: "PJSIP/+4930123456@trunk", TimeoutS: 20}},
		Options: Options{Tone: 150 * time.Millisecond, Gap: 120 * time.Millisecond, ReturnKey: "**",
			MaxTalk: time.Minute, Warning: "sound:beep", WarnBefore: 10 * time.Second,
			Headers: []record.Header{{Name: "X-A", Value: "1"}},
			Confirm: &Confirm{Prompt: "sound:press-1", Key: "1", Timeout: 5 * time.Second}}}
	call := newFakeCall()
	tr := newTransfer(call, testEnv(newFakeARI()), nil, p)
	tr.leg.target = p.Targets[0]
	b, err := record.Encode(&record.Call{CallID: "c", Transfer: tr.persisted(record.StateBridged)})
	if err != nil {
		t.Fatal(err)
	}
	rec, err := record.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if got := planOf(rec.Transfer); !reflect.DeepEqual(got, p) {
		t.Errorf("plan from the record:\n%+v\nwant\n%+v", got, p)
	}
	if (Options{Tone: dtmfTone, Gap: dtmfGap}).state() != nil {
		t.Error("a transfer without options records options")
	}
}
