// Package flows holds the call-flow model: the YAML file format, the
// validating loader, attribute references and their resolution, and the
// pure validators for transfer settings. It knows nothing of ARI or Redis.
package flows

import (
	"time"

	"github.com/ariflow/ariflow/policy"
)

// BlockType names what a block does.
type BlockType string

const (
	TypePlayPrompt            BlockType = "PlayPrompt"
	TypeGetCustomerInput      BlockType = "GetCustomerInput"
	TypeSetAttributes         BlockType = "SetAttributes"
	TypeCheckAttribute        BlockType = "CheckAttribute"
	TypeInvokeWebhook         BlockType = "InvokeWebhook"
	TypeTransferToPhoneNumber BlockType = "TransferToPhoneNumber"
	TypeTransferToAgent       BlockType = "TransferToAgent"
	TypeDisconnect            BlockType = "Disconnect"
	TypeLoop                  BlockType = "Loop"
	TypeTransferToFlow        BlockType = "TransferToFlow"
	TypeSetWorkingQueue       BlockType = "SetWorkingQueue"
	TypeTransferToQueue       BlockType = "TransferToQueue"
)

// Dials tells whether blocks of type t dial out: a transfer to a phone
// number or to an agent.
func (t BlockType) Dials() bool {
	return t == TypeTransferToPhoneNumber || t == TypeTransferToAgent
}

// Branch names shared by several block types.
const (
	BranchNext       = "Next"
	BranchSuccess    = "Success"
	BranchError      = "Error"
	BranchCallFailed = "CallFailed"
	BranchTimeout    = "Timeout"
	BranchNoMatch    = "NoMatch"
	// A Loop's branches, named as in Amazon Connect.
	BranchContinueLooping = "ContinueLooping"
	BranchDoneLooping     = "DoneLooping"
)

// Flow is one validated flow file.
type Flow struct {
	Name    string
	Version string
	File    string
	// Digest names this exact flow: a hash of its file's content. A call
	// runs on the flow it started on; a process taking it over looks the
	// flow up by it.
	Digest string
	// Source is the file's content, for processes that have another
	// version loaded (see Digest).
	Source []byte
	// Entries are the called numbers (dialplan extensions) or Stasis
	// arguments that start this flow.
	Entries []string
	Start   string
	Blocks  map[string]*Block
	// DialPolicy narrows the operator's dial-out policy for this flow's
	// outbound legs (policy.Policy.Narrow); nil when the flow has none.
	DialPolicy *policy.Policy
}

// Block is one step of a flow. Exactly one of the typed settings pointers is
// set, the one matching Type.
type Block struct {
	ID       string
	Type     BlockType
	Line     int               // line of the block in its file, for errors and logs
	Branches map[string]string // branch name -> block ID

	Play       *PlayPrompt
	Input      *GetCustomerInput
	Set        *SetAttributes
	Check      *CheckAttribute
	Webhook    *InvokeWebhook
	Transfer   *TransferToPhoneNumber
	Agent      *TransferToAgent
	Disconnect *Disconnect
	Loop       *Loop
	Jump       *TransferToFlow
	SetQueue   *SetWorkingQueue
	Queue      *TransferToQueue
}

// Next returns the block a branch leads to; ok is false when the block has
// no such branch (the engine then applies the flow's error handling).
func (b *Block) Next(branch string) (id string, ok bool) {
	id, ok = b.Branches[branch]
	return id, ok
}

// Value is a setting that is either a literal or a reference to a contact
// attribute ("$.Attributes.tracking"). Exactly one of Literal/Ref is
// meaningful: Ref != nil means a reference. A Template is a literal text
// with references inside it ("$.Attributes.street $.Attributes.city"),
// filled in when it is used; only SetAttributes values are templates.
type Value struct {
	Literal  string
	Ref      *Ref
	Template bool
}

// IsZero reports whether the setting was left out.
func (v Value) IsZero() bool { return v.Ref == nil && v.Literal == "" }

// Namespace is an attribute namespace.
type Namespace string

const (
	NSAttributes Namespace = "Attributes" // user-defined, set by the flow
	NSExternal   Namespace = "External"   // results of the last webhook
	NSSystem     Namespace = "System"     // values of the call
	NSTransfer   Namespace = "Transfer"   // outcome of the last transfer
	NSQueue      Namespace = "Queue"      // the working queue (SetWorkingQueue)
)

// QueueName is the working queue's name: $.Queue.Name.
const QueueName = "Name"

// System attribute keys the controller fills in.
const (
	SysCallerNumber = "CallerNumber"
	SysCallerName   = "CallerName"
	SysDialedNumber = "DialedNumber"
	SysChannel      = "Channel"
	SysCallID       = "CallID"
	SysLastInput    = "LastInput" // digits from the last GetCustomerInput
)

// User attributes the text-to-speech renderer reads for the voice and the
// language (an imported UpdateContactTextToSpeechVoice or UpdateContactData
// sets them).
const (
	AttrTTSVoice    = "tts_voice"
	AttrTTSLanguage = "tts_language"
)

// Transfer attribute keys the controller records after a transfer.
const (
	TrStatus     = "Status" // success | call-failed | timeout | error | denied
	TrCause      = "Cause"  // Q.850 cause code
	TrCauseText  = "CauseText"
	TrRingTime   = "RingTime" // seconds, decimal
	TrTalkTime   = "TalkTime" // seconds, decimal
	TrDigitsSent = "DigitsSent"
	TrNumber     = "Number"   // the E.164 number dialled (with several: the one that answered, else the last tried)
	TrDeniedBy   = "DeniedBy" // the dial-out policy rule that refused the number (Status denied)
	TrAttempts   = "Attempts" // numbers dialled (or refused) by the block, 1.. with a list
	TrEndedBy    = "EndedBy"  // who ended an answered transfer: far-end | caller | caller-key | time-limit
	TrAnswerTime = "AnswerTime"
	TrSIPCode    = "SIPCode" // the far end's final SIP response, where Asterisk reports it
)

// Values of $.Transfer.EndedBy.
const (
	EndedByFarEnd    = "far-end"
	EndedByCaller    = "caller"
	EndedByCallerKey = "caller-key"
	EndedByTimeLimit = "time-limit"
)

// Ref is a reference to one attribute: $.<Namespace>.<Key>.
type Ref struct {
	Namespace Namespace
	Key       string
}

func (r Ref) String() string { return "$." + string(r.Namespace) + "." + r.Key }

// Attributes are a contact's attributes by namespace. The zero value is
// usable for reading; use Set to write.
type Attributes map[Namespace]map[string]string

// PlayPrompt plays one or more Asterisk media URIs ("sound:hello-world").
// Branches: Next (required), Error (optional).
type PlayPrompt struct {
	Prompts []Value
}

// GetCustomerInput plays prompts and collects DTMF. Branches: one per value
// in Values, NoMatch, Timeout (required), Error (optional). The digits end up
// in $.System.LastInput, and in $.Attributes.<StoreAs> when StoreAs is set.
type GetCustomerInput struct {
	Prompts    []Value
	MaxDigits  int           // default 1, 1..64
	Terminator string        // "" or one of 0-9*#
	Timeout    time.Duration // wait for the first/next digit; default 5s
	Values     []string      // digit strings that have their own branch
	StoreAs    string        // optional user attribute key
}

// SetAttributes sets user attributes. Branches: Next (required).
type SetAttributes struct {
	Set []Assignment
}

// Assignment sets $.Attributes.<Key> to Value.
type Assignment struct {
	Key   string
	Value Value
}

// Operator compares an attribute with an operand.
type Operator string

const (
	OpEquals      Operator = "Equals"
	OpNotEquals   Operator = "NotEquals"
	OpContains    Operator = "Contains"
	OpLessThan    Operator = "LessThan"
	OpLessOrEq    Operator = "LessThanOrEqual"
	OpGreaterThan Operator = "GreaterThan"
	OpGreaterOrEq Operator = "GreaterThanOrEqual"
	OpIsSet       Operator = "IsSet" // the attribute exists and is non-empty; no operand
)

// CheckAttribute branches on the first matching condition; NoMatch
// otherwise. A missing attribute compares as "" (numeric operators then do
// not match). Branches: each condition's Branch, NoMatch (required).
type CheckAttribute struct {
	Attribute  Ref
	Conditions []Condition
}

// Condition is one comparison and the branch it leads to.
type Condition struct {
	Op      Operator
	Operand Value
	Branch  string
}

// InvokeWebhook POSTs the contact's attributes as JSON and stores the
// response's top-level fields as $.External attributes.
// Branches: Success (required), Error (optional).
type InvokeWebhook struct {
	URL     string
	Timeout time.Duration // default 3s, at most 30s
	// Idempotent: a process taking the call over while the request was
	// in flight may send it again; otherwise the block takes Error there.
	Idempotent bool
}

// TransferToPhoneNumber is Amazon Connect's "Transfer to phone number"
// (TransferParticipantToThirdParty). With Resume: branches Success,
// CallFailed, Timeout (required), Error (optional). Without Resume: the
// caller leaves the flow once bridged; CallFailed, Timeout (required), Error
// (optional) cover a transfer that never connected.
//
// The options beyond Connect (all optional) are described in
// flows/README.md; each is a literal checked at load or a reference
// checked at run time with the same validator.
type TransferToPhoneNumber struct {
	Number         Value   // E.164, validated at load when literal; the first number of a list
	More           []Value // further numbers, tried in order when the one before did not answer
	Timeout        Value   // seconds 1..600; zero Value means 30; for each number
	Timeouts       []Value // one ring timeout per number (instead of Timeout)
	Resume         bool
	DTMF           Value // up to 50 of 0-9*#A-D, ',' (750 ms), 'w' (500 ms), 'W' (1 s)
	DTMFTone       Value // milliseconds each tone lasts, 100..500, default 100
	DTMFGap        Value // milliseconds of silence between tones, 100..2000, default 100
	CallerIDNumber Value
	CallerIDName   Value
	ReturnKey      Value    // 1..4 of 0-9*#A-D: the caller pressing it ends the far end and resumes
	MaxTalk        Value    // seconds 1..86400 bridged before the far end is hung up
	Warning        Value    // media played to the caller WarningBefore seconds before MaxTalk
	WarningBefore  Value    // seconds 1..3600, less than MaxTalk; default 30
	Headers        []Header // X- SIP headers added to the INVITE
	Whisper        Value    // media played to the far end after it answers, before the bridge
	Confirm        *Confirm // the far end must press a key before it is bridged
	Ringback       Ringback // what the caller hears while the far end rings
	MOHClass       string   // with RingbackMOH: the music-on-hold class ("" the default)
	// AnswerOnBridge leaves a caller not yet answered unanswered while the
	// far end rings (the caller's phone rings on a 180), and answers it as
	// the far end is bridged, as the dialplan's Dial does and Twilio's
	// answerOnBridge: a caller whose transfer fails is answered by the
	// next block that needs its audio. Only with RingbackRing.
	AnswerOnBridge bool
	EventsURL      string // receives each leg's ringing, answered, completed ("": none)
	TraceHeader    string // X- header carrying the call's trace context (traceparent) to the far end ("": none)
	// DialVia says who dials and bridges: ariflow over ARI, or the PBX's
	// own Dial() (DialViaPBX); "" leaves it to the operator's default.
	DialVia DialVia
}

// DialVia is who carries a transfer.
type DialVia string

const (
	// DialViaARI: ariflow makes the leg, dials it, bridges it and sends
	// the digits (the default).
	DialViaARI DialVia = "ari"
	// DialViaPBX: the caller is continued into the PBX's [ariflow-dial]
	// context, whose Dial() does the transfer, and comes back to the app
	// when it ends. Only Connect's own settings apply.
	DialViaPBX DialVia = "pbx"
)

// Ringback is what the caller hears while a transfer's far end rings.
type Ringback string

const (
	// RingbackRing is Asterisk's ringing tone on the caller's channel (the
	// default).
	RingbackRing Ringback = "ring"
	// RingbackMOH is music on hold, of MOHClass.
	RingbackMOH Ringback = "moh"
	// RingbackEarlyMedia bridges the caller with the leg before it is
	// dialled: the caller hears the far end's own ringback and
	// announcements (early media) before it answers.
	RingbackEarlyMedia Ringback = "early-media"
)

// Confirm asks the far end, once it answers, to press Key within Timeout
// after Prompt; no key (a voicemail box, a fax) counts as not answered.
type Confirm struct {
	Prompt  Value  // media
	Key     string // one of 0-9 * #; default "1"
	Timeout int    // seconds after the prompt, 1..120; default 10
}

// Numbers is every number of the block, in dialling order.
func (t *TransferToPhoneNumber) Numbers() []Value {
	return append([]Value{t.Number}, t.More...)
}

// Header is one X- SIP header added to a transfer's INVITE.
type Header struct {
	Name  string // validated at load: X-, token characters, at most 64 bytes
	Value Value  // validated at load when literal, else at run time
}

// TransferToAgent hands the caller to an agent: either bridges it with an
// Asterisk endpoint ("PJSIP/agent1", or a number dialled through the trunk),
// or continues it in the dialplan (e.g. a context running Queue()). Either
// way the caller leaves the flow. Branches: Error (optional); with Endpoint
// also CallFailed, Timeout (optional; missing ones fall to Error).
type TransferToAgent struct {
	Endpoint  Value  // an endpoint, or a phone number sent through the trunk
	Timeout   Value  // ring timeout seconds, default 30
	Context   string // dialplan alternative to Endpoint
	Extension string
	Priority  int
	DialVia   DialVia // with Endpoint: who dials it
}

// Disconnect hangs the caller up. No branches.
type Disconnect struct{}

// Loop is Amazon Connect's Loop: run with the same block again and again,
// it takes ContinueLooping Count times, then DoneLooping once, and starts
// counting afresh. The count of each Loop block is call state, kept in the
// call record. Branches: ContinueLooping, DoneLooping (required), Error
// (optional: a count from an attribute that is not 0..100).
type Loop struct {
	Count Value // 0..MaxLoopCount, literal or reference
}

// TransferToFlow is Amazon Connect's "Transfer to flow": the call goes on
// at the start of another flow of the loaded set, with its attributes and
// working queue. The set's loader checks the flow exists. Branches: Error
// (optional: the flow is no longer loaded when the call gets there).
type TransferToFlow struct {
	Flow string // a flow name
}

// SetWorkingQueue is Amazon Connect's "Set working queue": it names the
// queue a later TransferToQueue hands the caller to, as call state, so
// each path through a flow (or a set of flows) can set its own. The queue
// is a dialplan place (a context running Queue(), say); $.Queue.Name reads
// its name. Branches: Next (required), Error (optional).
type SetWorkingQueue struct {
	Name      string // shown as $.Queue.Name
	Context   string
	Extension string
	Priority  int // default 1
}

// TransferToQueue is Amazon Connect's "Transfer to queue": the caller
// continues in the working queue's dialplan place and leaves the flow.
// Branches: Error (optional: no working queue was set).
type TransferToQueue struct{}
