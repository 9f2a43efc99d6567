package flows

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/ariflow/ariflow/internal/fileerr"
	"github.com/ariflow/ariflow/policy"
)

var (
	nameRE    = regexp.MustCompile(`^[a-z0-9_-]+$`)
	blockIDRE = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)
	versionRE = regexp.MustCompile(`^[A-Za-z0-9_.+-]{1,64}$`)
	entryRE   = regexp.MustCompile(`^[A-Za-z0-9_+*#.-]+$`)
	yamlErrRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)
)

// topLevelKeys are the keys a flow file must hold; optionalKeys those it
// may hold as well.
var (
	topLevelKeys = []string{"name", "version", "entry", "start", "blocks"}
	optionalKeys = []string{"dial_policy"}
)

// lineInfo remembers where things were, for cross-file messages.
type lineInfo struct {
	name    int
	entries map[string]int
}

// parser collects every problem of one file instead of stopping at the
// first, so a flow author sees them all at once.
type parser struct {
	file string
	opts LoadOptions
	errs ErrorList

	order       []string                  // block IDs in file order
	branchLines map[string]map[string]int // block -> branch -> line
}

func (p *parser) errf(line int, format string, args ...any) {
	p.errs = append(p.errs, &Error{File: p.file, Line: line, Msg: fmt.Sprintf(format, args...)})
}

func parse(file string, data []byte, opts LoadOptions) (f *Flow, li lineInfo, errs ErrorList) {
	p := &parser{file: file, opts: opts, branchLines: map[string]map[string]int{}}
	li.entries = map[string]int{}
	root, ok := p.decode(data)
	if !ok {
		return nil, li, p.errs
	}
	if root.Kind != yaml.MappingNode {
		p.errf(root.Line, "want a mapping with keys %s, got %s", strings.Join(topLevelKeys, ", "), kindName(root))
		return nil, li, p.errs
	}
	f = &Flow{File: file, Blocks: map[string]*Block{}, Digest: Digest(data), Source: data}
	var startNode *yaml.Node
	seen := map[string]bool{}
	for _, kv := range p.pairs(root, "") {
		k, v := kv[0], kv[1]
		seen[k.Value] = true
		switch k.Value {
		case "name":
			li.name = v.Line
			if s, ok := p.scalar(v, "name", "a string"); ok {
				if !nameRE.MatchString(s) {
					p.errf(v.Line, "name %q: may only hold a-z 0-9 _ -", s)
				}
				f.Name = s
			}
		case "version":
			if s, ok := p.scalar(v, "version", "a string or number"); ok {
				if !versionRE.MatchString(s) {
					p.errf(v.Line, "version %q: want 1 to 64 of A-Z a-z 0-9 _ . + -", s)
				}
				f.Version = s
			}
		case "entry":
			f.Entries = p.entries(v, li.entries)
		case "start":
			if s, ok := p.scalar(v, "start", "a block id"); ok {
				f.Start = s
				startNode = v
			}
		case "blocks":
			p.blocks(f, v)
		case "dial_policy":
			pol, err := policy.ParseFlow(p.file, v)
			var list fileerr.List
			switch {
			case errors.As(err, &list):
				p.errs = append(p.errs, list...)
			case err != nil:
				p.errf(v.Line, "dial_policy: %v", err)
			}
			f.DialPolicy = pol
		default:
			p.errf(k.Line, "unknown top-level key %q (want %s)", k.Value, strings.Join(append(slices.Clone(topLevelKeys), optionalKeys...), ", "))
		}
	}
	for _, k := range topLevelKeys {
		if !seen[k] {
			p.errf(root.Line, "missing %s", k)
		}
	}
	// Without blocks "missing blocks" already says it all.
	if startNode != nil && f.Start != "" && seen["blocks"] {
		if _, ok := f.Blocks[f.Start]; !ok {
			p.errf(startNode.Line, "start block %q does not exist", f.Start)
		}
	}
	p.checkGraph(f)
	return f, li, p.errs
}

// decode parses exactly one YAML document and refuses aliases, which the
// format does not need and which would complicate line reporting.
func (p *parser) decode(data []byte) (root *yaml.Node, ok bool) {
	defer func() {
		// yaml.v3 has panicked on hostile input before; a bad file must not
		// take the process down.
		if r := recover(); r != nil {
			p.errf(0, "YAML syntax: parser failed: %v", r)
			root, ok = nil, false
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			p.errf(0, "empty file")
		} else {
			p.yamlErr(err)
		}
		return nil, false
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		p.errf(extra.Line, "more than one YAML document; one flow per file")
		return nil, false
	} else if !errors.Is(err, io.EOF) {
		p.yamlErr(err)
		return nil, false
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) == 0 {
		p.errf(0, "empty file")
		return nil, false
	}
	if n, deep := findAlias(&doc, 0); n != nil {
		if deep {
			p.errf(n.Line, "YAML nested too deeply")
		} else {
			p.errf(n.Line, "YAML anchors and aliases are not supported")
		}
		return nil, false
	}
	return doc.Content[0], true
}

// findAlias returns the first alias or anchor, or the first node nested
// deeper than any flow needs (deep is then true).
func findAlias(n *yaml.Node, depth int) (found *yaml.Node, deep bool) {
	if depth > 64 {
		return n, true
	}
	if n.Kind == yaml.AliasNode || n.Anchor != "" {
		return n, false
	}
	for _, c := range n.Content {
		if a, deep := findAlias(c, depth+1); a != nil {
			return a, deep
		}
	}
	return nil, false
}

func (p *parser) yamlErr(err error) {
	msg := err.Error()
	if m := yamlErrRE.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		p.errf(line, "YAML syntax: %s", m[2])
		return
	}
	p.errf(0, "YAML syntax: %s", strings.TrimPrefix(msg, "yaml: "))
}

// pairs returns a mapping's key/value nodes, reporting non-string and
// duplicate keys. what prefixes messages ("block \"x\": ").
func (p *parser) pairs(n *yaml.Node, what string) [][2]*yaml.Node {
	var out [][2]*yaml.Node
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			p.errf(k.Line, "%skey must be a string, got %s", what, kindName(k))
			continue
		}
		if seen[k.Value] {
			p.errf(k.Line, "%sduplicate key %q", what, k.Value)
			continue
		}
		seen[k.Value] = true
		out = append(out, [2]*yaml.Node{k, v})
	}
	return out
}

// scalar returns a scalar's text as written (so "+4930…" and "01" keep their
// form); null and collections are type errors.
func (p *parser) scalar(n *yaml.Node, what, want string) (string, bool) {
	if n.Kind != yaml.ScalarNode || n.Tag == "!!null" {
		p.errf(n.Line, "%s: want %s, got %s", what, want, kindName(n))
		return "", false
	}
	return n.Value, true
}

func kindName(n *yaml.Node) string {
	switch n.Kind {
	case yaml.SequenceNode:
		return "a list"
	case yaml.MappingNode:
		return "a mapping"
	case yaml.AliasNode:
		return "an alias"
	case yaml.DocumentNode:
		return "a document"
	}
	if n.Tag == "!!null" {
		return "null"
	}
	return strconv.Quote(n.Value)
}

func (p *parser) entries(n *yaml.Node, lines map[string]int) []string {
	var items []*yaml.Node
	switch n.Kind {
	case yaml.SequenceNode:
		items = n.Content
	default:
		p.errf(n.Line, "entry: want a list of called numbers or Stasis arguments, got %s", kindName(n))
		return nil
	}
	if len(items) == 0 {
		p.errf(n.Line, "entry: must list at least one called number or Stasis argument")
	}
	var out []string
	for _, it := range items {
		s, ok := p.scalar(it, "entry", "a string")
		if !ok {
			continue
		}
		if !entryRE.MatchString(s) {
			p.errf(it.Line, "entry %q: may only hold A-Z a-z 0-9 + * # _ . -", s)
			continue
		}
		if _, dup := lines[s]; dup {
			p.errf(it.Line, "entry %q listed twice", s)
			continue
		}
		lines[s] = it.Line
		out = append(out, s)
	}
	return out
}

func (p *parser) blocks(f *Flow, n *yaml.Node) {
	if n.Kind != yaml.MappingNode {
		p.errf(n.Line, "blocks: want a mapping of block id to block, got %s", kindName(n))
		return
	}
	if len(n.Content) == 0 {
		p.errf(n.Line, "blocks: no blocks")
	}
	for _, kv := range p.pairs(n, "blocks: ") {
		id := kv[0].Value
		if !blockIDRE.MatchString(id) {
			p.errf(kv[0].Line, "block id %q: may only hold A-Z a-z 0-9 _ -", id)
			continue
		}
		b := p.block(id, kv[0], kv[1])
		f.Blocks[id] = b
		p.order = append(p.order, id)
	}
}

// Digest is the digest of a flow file's content (Flow.Digest).
func Digest(data []byte) string {
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:8])
}
