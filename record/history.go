package record

import "time"

// History is what a call has done so far, kept in its record when call
// records are on (package callrecord), so that a process taking the call
// over carries it on and the call record at the end tells the whole call:
// the blocks visited, every transfer's numbers and outcome, and the
// processes that served it. It is bounded: a record is written at every
// save, and a call that loops would otherwise grow it without end.
type History struct {
	Blocks []Visit `json:"blocks,omitempty"`
	// BlocksDropped counts the oldest visits let go past MaxVisits.
	BlocksDropped int               `json:"blocks_dropped,omitempty"`
	Transfers     []TransferOutcome `json:"transfers,omitempty"`
	// TransfersDropped counts the oldest transfers let go past MaxTransfers.
	TransfersDropped int      `json:"transfers_dropped,omitempty"`
	Served           []Served `json:"served,omitempty"`
}

// Bounds of a History.
const (
	MaxVisits    = 64
	MaxTransfers = 16
	MaxNumbers   = 16 // numbers kept per transfer (a block's list is shorter)
	MaxServed    = 8
	MaxError     = 200 // bytes of an error kept
)

// Visit is one block run.
type Visit struct {
	Block string    `json:"block"`
	Type  string    `json:"type"`
	Flow  string    `json:"flow,omitempty"` // the flow, when another than the call's first (TransferToFlow)
	At    time.Time `json:"at"`
	End   time.Time `json:"end,omitzero"`
	// Branch is the branch taken; empty while the block runs or when the
	// call ended in it.
	Branch string `json:"branch,omitempty"`
	Error  string `json:"error,omitempty"`
	By     int    `json:"by"` // index in Served
}

// TransferOutcome is one transfer block's run: the numbers it tried and
// how it ended ($.Transfer.* of it).
type TransferOutcome struct {
	Block    string        `json:"block"`
	Agent    bool          `json:"agent,omitempty"`
	At       time.Time     `json:"at"`
	End      time.Time     `json:"end,omitzero"`
	Outcome  string        `json:"outcome,omitempty"`
	Number   string        `json:"number,omitempty"`
	Cause    int           `json:"cause,omitempty"`
	SIPCode  int           `json:"sip_code,omitempty"`
	DeniedBy string        `json:"denied_by,omitempty"`
	EndedBy  string        `json:"ended_by,omitempty"`
	Answered time.Time     `json:"answered,omitzero"`
	RingMs   int64         `json:"ring_ms,omitempty"`
	TalkMs   int64         `json:"talk_ms,omitempty"`
	Digits   string        `json:"digits,omitempty"`
	Attempts int           `json:"attempts,omitempty"`
	Numbers  []NumberTried `json:"numbers,omitempty"`
	By       int           `json:"by"`
}

// NumberTried is one number of a transfer's list and what became of it.
type NumberTried struct {
	Number   string `json:"number"`
	Attempt  int    `json:"attempt"`
	Outcome  string `json:"outcome"`
	Cause    int    `json:"cause,omitempty"`
	SIPCode  int    `json:"sip_code,omitempty"`
	DeniedBy string `json:"denied_by,omitempty"`
	EndedBy  string `json:"ended_by,omitempty"`
	By       int    `json:"by"`
}

// Served is a process's term with the call.
type Served struct {
	Owner   string    `json:"owner"`
	Epoch   int64     `json:"epoch,omitempty"`
	From    time.Time `json:"from"`
	Adopted bool      `json:"adopted,omitempty"`
}

// Serve notes that owner serves the call from at (adopted: taken over),
// and returns its index for Visit.By.
func (h *History) Serve(owner string, epoch int64, at time.Time, adopted bool) int {
	if n := len(h.Served); n > 0 && h.Served[n-1].Owner == owner && !adopted {
		return n - 1
	}
	if len(h.Served) >= MaxServed {
		// Keep the first and the latest terms.
		h.Served = append(h.Served[:1], h.Served[2:]...)
	}
	h.Served = append(h.Served, Served{Owner: owner, Epoch: epoch, From: at, Adopted: adopted})
	return len(h.Served) - 1
}

// by is the index of the process serving now.
func (h *History) by() int { return max(len(h.Served)-1, 0) }

// Visit notes a block begun at at.
func (h *History) Visit(flow, block, typ string, at time.Time) {
	if len(h.Blocks) >= MaxVisits {
		h.Blocks = h.Blocks[1:]
		h.BlocksDropped++
	}
	h.Blocks = append(h.Blocks, Visit{Block: block, Type: typ, Flow: flow, At: at, By: h.by()})
}

// Left notes the branch the current block took (or the error that ended
// the call in it) at at; nothing when no block is open.
func (h *History) Left(branch string, err error, at time.Time) {
	n := len(h.Blocks)
	if n == 0 || !h.Blocks[n-1].End.IsZero() {
		return
	}
	v := &h.Blocks[n-1]
	v.End, v.Branch = at, branch
	if err != nil {
		v.Error = clip(err.Error())
	}
}

// Transfer returns the open transfer of block, begun now if none is open.
func (h *History) Transfer(block string, agent bool, at time.Time) *TransferOutcome {
	if n := len(h.Transfers); n > 0 {
		if t := &h.Transfers[n-1]; t.End.IsZero() && t.Block == block {
			return t
		}
	}
	if len(h.Transfers) >= MaxTransfers {
		h.Transfers = h.Transfers[1:]
		h.TransfersDropped++
	}
	h.Transfers = append(h.Transfers, TransferOutcome{Block: block, Agent: agent, At: at, By: h.by()})
	return &h.Transfers[len(h.Transfers)-1]
}

// Tried notes a number's result in t; a number reported again (a leg
// taken over) replaces its entry.
func (h *History) Tried(t *TransferOutcome, n NumberTried) {
	n.By = h.by()
	for i := range t.Numbers {
		if t.Numbers[i].Attempt == n.Attempt && t.Numbers[i].Number == n.Number {
			t.Numbers[i] = n
			return
		}
	}
	if len(t.Numbers) < MaxNumbers {
		t.Numbers = append(t.Numbers, n)
	}
}

func clip(s string) string {
	if len(s) > MaxError {
		return s[:MaxError] + "…"
	}
	return s
}
