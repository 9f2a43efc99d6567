package flows

// The block table and the parsing of one block: its type, its settings
// (each family's in a parse_*.go file) and its branches.

import (
	"fmt"
	"regexp"
	"strings"

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
		"return_key", "max_talk", "warning", "warning_before", "headers", "whisper", "confirm", "ringback", "answer_on_bridge", "events_url", "trace_header", "dial_via"},
	TypeTransferToAgent: {"endpoint", "timeout", "context", "extension", "priority", "dial_via"},
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
