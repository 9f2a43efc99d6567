package record

import (
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ariflow/ariflow/flows"
)

// realisticRecord is a call in the middle of a transfer, with ten
// attributes across the namespaces.
func realisticRecord() *Call {
	started := time.Date(2025, 3, 14, 9, 26, 53, 589793000, time.UTC)
	return &Call{
		CallID:   "ariflow-call-0123456789abcdef0123",
		Channel:  "1741944413.1234",
		Flow:     "shipping",
		Version:  "3",
		Block:    "transfer-to-shipper",
		Phase:    PhaseBridged,
		Outbound: "ariflow-leg-89abcdef0123456789ab",
		Bridge:   "ariflow-br-456789abcdef01234567",
		Attributes: flows.Attributes{
			flows.NSSystem: {
				flows.SysCallerNumber: "+4930123456",
				flows.SysCallerName:   "Erika Mustermann",
				flows.SysDialedNumber: "+4940987654",
				flows.SysChannel:      "1741944413.1234",
				flows.SysCallID:       "ariflow-call-0123456789abcdef0123",
			},
			flows.NSAttributes: {
				"tracking": "JJD000390007880123456",
				"shipper":  "+498001234567",
				"language": "de-DE",
			},
			flows.NSExternal: {
				"status": "in transit",
				"note":   `{"depot":"Hamburg","attempts":[1,2]}`,
			},
		},
		Owner:   "pbx-1-4242",
		Started: started,
		Updated: started.Add(42 * time.Second),
	}
}

func TestRecordRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name string
		rec  *Call
	}{
		{"realistic", realisticRecord()},
		{"minimal", &Call{CallID: "c1", Phase: PhaseFlow, Attributes: flows.Attributes{}}},
		{"nil attributes", &Call{CallID: "c2", Phase: PhaseDialplan}},
		{"odd strings", &Call{
			CallID: "c3", Phase: PhaseDialing, Block: "b\u00e4\"\\\n",
			Attributes: flows.Attributes{flows.NSAttributes: {"k": "<&>\u2028\x00"}},
			Started:    time.Date(2025, 1, 1, 0, 0, 0, 1, time.FixedZone("CET", 3600)),
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := Encode(tc.rec)
			if err != nil {
				t.Fatal(err)
			}
			got, err := Decode(b)
			if err != nil {
				t.Fatalf("Decode(%s): %v", b, err)
			}
			// Times compare by instant; the location may differ.
			if !got.Started.Equal(tc.rec.Started) || !got.Updated.Equal(tc.rec.Updated) {
				t.Errorf("times: got %v/%v, want %v/%v", got.Started, got.Updated, tc.rec.Started, tc.rec.Updated)
			}
			want := *tc.rec
			want.Started, want.Updated = got.Started, got.Updated
			if !reflect.DeepEqual(got, &want) {
				t.Errorf("round trip:\n got %+v\nwant %+v", got, &want)
			}
		})
	}
}

func TestRecordWireForm(t *testing.T) {
	b, err := Encode(&Call{CallID: "c1", Phase: PhaseBridged})
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for _, want := range []string{`"call_id":"c1"`, `"phase":"bridged"`} {
		if !strings.Contains(s, want) {
			t.Errorf("%s lacks %s", s, want)
		}
	}
	// No transfer in progress: the leg and bridge are left out.
	for _, absent := range []string{`"outbound"`, `"bridge"`} {
		if strings.Contains(s, absent) {
			t.Errorf("%s holds %s", s, absent)
		}
	}
}

func TestDecodeRecordErrors(t *testing.T) {
	for _, raw := range []string{``, `{`, `[]`, `"x"`, `{"call_id":5}`, `{"started":"yesterday"}`, `{"attributes":{"System":"x"}}`} {
		if rec, err := Decode([]byte(raw)); err == nil {
			t.Errorf("Decode(%q) = %+v, want an error", raw, rec)
		} else if !strings.HasPrefix(err.Error(), "decode call record: ") {
			t.Errorf("Decode(%q): error %q", raw, err)
		}
	}
}

func BenchmarkRecordEncodeDecode(b *testing.B) {
	rec := realisticRecord()
	n := 0
	for _, m := range rec.Attributes {
		n += len(m)
	}
	if n != 10 {
		b.Fatalf("record has %d attributes, want 10", n)
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		rec.Block = "block-" + strconv.Itoa(i&7)
		buf, err := Encode(rec)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := Decode(buf); err != nil {
			b.Fatal(err)
		}
		b.SetBytes(int64(len(buf)))
	}
}
