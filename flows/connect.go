package flows

import (
	"encoding/json"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// Amazon Connect flow language (its JSON export: Version, StartAction,
// Actions with Identifier, Type, Parameters, Transitions), the subset
// ariflow imports.
type connectFlow struct {
	Version     string          `json:"Version"`
	StartAction string          `json:"StartAction"`
	Metadata    json.RawMessage `json:"Metadata"`
	Actions     []connectAction `json:"Actions"`
}

type connectAction struct {
	Identifier  string                     `json:"Identifier"`
	Type        string                     `json:"Type"`
	Parameters  map[string]json.RawMessage `json:"Parameters"`
	Transitions struct {
		NextAction string `json:"NextAction"`
		Errors     []struct {
			NextAction string `json:"NextAction"`
			ErrorType  string `json:"ErrorType"`
		} `json:"Errors"`
		Conditions []struct {
			NextAction string `json:"NextAction"`
			Condition  struct {
				Operator string   `json:"Operator"`
				Operands []string `json:"Operands"`
			} `json:"Condition"`
		} `json:"Conditions"`
	} `json:"Transitions"`
}

// importedFlow is the YAML shape ConnectToYAML writes; field order is the
// file's key order.
type importedFlow struct {
	Name    string                    `yaml:"name"`
	Version string                    `yaml:"version"`
	Entry   []string                  `yaml:"entry"`
	Start   string                    `yaml:"start"`
	Blocks  map[string]map[string]any `yaml:"blocks"`
}

var unsafeIDChars = regexp.MustCompile(`[^A-Za-z0-9_-]`)

// ImportConnect converts an Amazon Connect flow-language export into a
// validated Flow. Supported actions: MessageParticipant,
// GetParticipantInput, UpdateContactAttributes, Compare,
// TransferParticipantToThirdParty, DisconnectParticipant.
func ImportConnect(data []byte) (*Flow, error) {
	y, err := ConnectToYAML(data)
	if err != nil {
		return nil, err
	}
	return Parse("connect-import.yaml", y, LoadOptions{})
}

// ConnectToYAML converts an Amazon Connect export into ariflow's YAML
// format without validating it, so it can be saved and edited. The flow is
// named after Metadata.name (or "imported") and has that name as its entry.
func ConnectToYAML(data []byte) ([]byte, error) {
	var cf connectFlow
	if err := json.Unmarshal(data, &cf); err != nil {
		return nil, fmt.Errorf("connect flow: %w", err)
	}
	if len(cf.Actions) == 0 {
		return nil, fmt.Errorf("connect flow: no Actions")
	}
	var meta struct {
		Name string `json:"name"`
	}
	_ = json.Unmarshal(cf.Metadata, &meta) // optional
	name := strings.Trim(unsafeIDChars.ReplaceAllString(strings.ToLower(meta.Name), "_"), "_")
	if name == "" {
		name = "imported"
	}
	version := cf.Version
	if version == "" {
		version = "1"
	}
	out := importedFlow{Name: name, Version: version, Entry: []string{name}, Start: blockID(cf.StartAction), Blocks: map[string]map[string]any{}}
	var errs []string
	for _, a := range cf.Actions {
		blk, err := convertAction(a)
		if err != nil {
			errs = append(errs, fmt.Sprintf("action %s (%s): %v", a.Identifier, a.Type, err))
			continue
		}
		out.Blocks[blockID(a.Identifier)] = blk
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("connect flow: %s", strings.Join(errs, "; "))
	}
	return yaml.Marshal(out)
}

func blockID(s string) string { return unsafeIDChars.ReplaceAllString(s, "_") }

func convertAction(a connectAction) (map[string]any, error) {
	p := params(a.Parameters)
	br := map[string]string{}
	errorsTo := map[string]string{}
	for _, e := range a.Transitions.Errors {
		errorsTo[e.ErrorType] = blockID(e.NextAction)
	}
	if t, ok := errorsTo["NoMatchingError"]; ok {
		br[BranchError] = t
	}
	next := blockID(a.Transitions.NextAction)
	b := map[string]any{}
	switch a.Type {
	case "MessageParticipant":
		prompt, err := p.prompt()
		if err != nil {
			return nil, err
		}
		b["type"], b["prompts"] = TypePlayPrompt, []string{prompt}
		br[BranchNext] = next
	case "GetParticipantInput":
		b["type"] = TypeGetCustomerInput
		if prompt, err := p.prompt(); err == nil {
			b["prompts"] = []string{prompt}
		}
		if t := p.str("InputTimeLimitSeconds"); t != "" {
			n, err := strconv.Atoi(t)
			if err != nil {
				return nil, fmt.Errorf("InputTimeLimitSeconds %q: %w", t, err)
			}
			b["timeout"] = n
		}
		if t, ok := errorsTo["InputTimeLimitExceeded"]; ok {
			br[BranchTimeout] = t
		}
		if strings.EqualFold(p.str("StoreInput"), "True") {
			// Stored input goes to $.StoredCustomerInput in Connect.
			b["store_as"] = "StoredCustomerInput"
			b["max_digits"] = p.maxLength()
			if term := p.nested("DTMFConfiguration", "InputTerminationSequence"); term != "" {
				b["terminator"] = term
			}
			br[BranchSuccess] = next
			break
		}
		var values []string
		for _, c := range a.Transitions.Conditions {
			if c.Condition.Operator != "Equals" || len(c.Condition.Operands) != 1 {
				return nil, fmt.Errorf("input condition %s %v: only Equals with one operand is supported", c.Condition.Operator, c.Condition.Operands)
			}
			v := c.Condition.Operands[0]
			values = append(values, v)
			br[v] = blockID(c.NextAction)
		}
		b["values"] = values
		b["max_digits"] = max(1, maxLen(values))
		if t, ok := errorsTo["NoMatchingCondition"]; ok {
			br[BranchNoMatch] = t
		}
	case "UpdateContactAttributes":
		var attrs map[string]string
		if err := json.Unmarshal(a.Parameters["Attributes"], &attrs); err != nil {
			return nil, fmt.Errorf("Attributes: %w", err)
		}
		set := map[string]string{}
		for k, v := range attrs {
			cv, err := connectValue(v)
			if err != nil {
				return nil, fmt.Errorf("attribute %s: %w", k, err)
			}
			set[k] = cv
		}
		b["type"], b["set"] = TypeSetAttributes, set
		br[BranchNext] = next
	case "Compare":
		ref, err := connectValue(p.str("ComparisonValue"))
		if err != nil {
			return nil, fmt.Errorf("ComparisonValue: %w", err)
		}
		var conds []map[string]string
		for i, c := range a.Transitions.Conditions {
			op, ok := connectOps[c.Condition.Operator]
			if !ok || len(c.Condition.Operands) != 1 {
				return nil, fmt.Errorf("condition %s %v is not supported", c.Condition.Operator, c.Condition.Operands)
			}
			val, err := connectValue(c.Condition.Operands[0])
			if err != nil {
				return nil, err
			}
			name := fmt.Sprintf("Condition%d", i+1)
			conds = append(conds, map[string]string{"op": string(op), "value": val, "branch": name})
			br[name] = blockID(c.NextAction)
		}
		b["type"], b["attribute"], b["conditions"] = TypeCheckAttribute, ref, conds
		if t, ok := errorsTo["NoMatchingCondition"]; ok {
			br[BranchNoMatch] = t
		}
	case "TransferParticipantToThirdParty":
		b["type"] = TypeTransferToPhoneNumber
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
				cv, err := connectValue(v)
				if err != nil {
					return nil, fmt.Errorf("%s: %w", conn, err)
				}
				b[ours] = cv
			}
		}
		for conn, ours := range map[string]string{"Number": "caller_id_number", "Name": "caller_id_name"} {
			if v := p.nested("CallerId", conn); v != "" {
				cv, err := connectValue(v)
				if err != nil {
					return nil, fmt.Errorf("CallerId.%s: %w", conn, err)
				}
				b[ours] = cv
			}
		}
		resume := !strings.EqualFold(p.str("ContinueFlowExecution"), "False")
		b["resume"] = resume
		if resume {
			br[BranchSuccess] = next
		}
		if t, ok := errorsTo["CallFailed"]; ok {
			br[BranchCallFailed] = t
		}
		for _, et := range []string{"ConnectionTimeLimitExceeded", "ConnectionTimeout", "Timeout"} {
			if t, ok := errorsTo[et]; ok {
				br[BranchTimeout] = t
			}
		}
	case "DisconnectParticipant":
		b["type"] = TypeDisconnect
		return b, nil
	default:
		return nil, fmt.Errorf("action type not supported")
	}
	for k, v := range br {
		if v == "" {
			delete(br, k)
		}
	}
	if len(br) > 0 {
		b["branches"] = br
	}
	return b, nil
}

var connectOps = map[string]Operator{
	"Equals":                 OpEquals,
	"TextContains":           OpContains,
	"NumberGreaterThan":      OpGreaterThan,
	"NumberGreaterOrEqualTo": OpGreaterOrEq,
	"NumberLessThan":         OpLessThan,
	"NumberLessOrEqualTo":    OpLessOrEq,
}

// connectValue maps Connect JSONPath to ariflow references; literals pass.
func connectValue(v string) (string, error) {
	if !strings.HasPrefix(v, "$.") {
		return v, nil
	}
	switch {
	case v == "$.StoredCustomerInput":
		return "$.Attributes.StoredCustomerInput", nil
	case v == "$.CustomerEndpoint.Address":
		return "$.System." + SysCallerNumber, nil
	case v == "$.SystemEndpoint.Address":
		return "$.System." + SysDialedNumber, nil
	case v == "$.ContactId":
		return "$.System." + SysCallID, nil
	}
	if _, err := ParseRef(v); err != nil {
		return "", err
	}
	return v, nil
}

type params map[string]json.RawMessage

// str returns a string parameter; numbers and booleans come back as text.
func (p params) str(key string) string {
	raw, ok := p[key]
	if !ok {
		return ""
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	return strings.Trim(string(raw), `"`)
}

func (p params) nested(outer, key string) string {
	var inner params
	if json.Unmarshal(p[outer], &inner) != nil {
		return ""
	}
	return inner.str(key)
}

// prompt accepts Text, PromptId or Media.Uri when it is an Asterisk media
// URI: ariflow has no text-to-speech and cannot fetch Connect prompts.
func (p params) prompt() (string, error) {
	for _, c := range []string{p.str("Text"), p.str("PromptId"), p.nested("Media", "Uri")} {
		if c != "" {
			if err := ValidateMediaURI(c); err != nil {
				return "", fmt.Errorf("prompt %q: ariflow plays Asterisk media, not text-to-speech or Connect prompts: %w", c, err)
			}
			return c, nil
		}
	}
	return "", fmt.Errorf("no prompt (Text, PromptId or Media.Uri)")
}

func (p params) maxLength() int {
	var iv map[string]params
	if json.Unmarshal(p["InputValidation"], &iv) == nil {
		keys := make([]string, 0, len(iv))
		for k := range iv {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if n, err := strconv.Atoi(iv[k].str("MaximumLength")); err == nil && n >= 1 && n <= 64 {
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
