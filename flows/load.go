package flows

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// LoadOptions tune the loader.
type LoadOptions struct {
	// DefaultRegion (e.g. "DE") is used for literal numbers written without
	// '+'. Empty means every literal number needs a leading '+'.
	DefaultRegion string
	// EndpointTechs are the channel technologies literal agent endpoints
	// may use, as for endpoints from attributes (the dial policy's list);
	// nil means DefaultEndpointTechs (PJSIP).
	EndpointTechs []string
}

// Set is a validated set of flows, indexed by entry and name.
type Set struct {
	Flows []*Flow

	byEntry map[string]*Flow
	byName  map[string]*Flow
}

// ForEntry returns the flow started by a called number or Stasis argument.
// Matching is exact.
func (s *Set) ForEntry(entry string) (*Flow, bool) {
	f, ok := s.byEntry[entry]
	return f, ok
}

// Flow returns the flow with the given name.
func (s *Set) Flow(name string) (*Flow, bool) {
	f, ok := s.byName[name]
	return f, ok
}

// LoadDir loads every *.yaml and *.yml file in dir (not recursive).
func LoadDir(opts LoadOptions, dir string) (*Set, error) {
	return LoadFiles(opts, dir)
}

// LoadFiles loads flow files; a path that is a directory stands for its
// *.yaml/*.yml files (not recursive, sorted). All problems are returned
// together as an ErrorList; the Set is nil then.
func LoadFiles(opts LoadOptions, paths ...string) (*Set, error) {
	var errs ErrorList
	var files []string
	for _, p := range paths {
		fi, err := os.Stat(p)
		if err != nil {
			errs = append(errs, &Error{File: p, Msg: errMsg(err)})
			continue
		}
		if !fi.IsDir() {
			files = append(files, p)
			continue
		}
		ents, err := os.ReadDir(p)
		if err != nil {
			errs = append(errs, &Error{File: p, Msg: errMsg(err)})
			continue
		}
		var found []string
		for _, e := range ents {
			n := e.Name()
			if !e.IsDir() && (strings.HasSuffix(n, ".yaml") || strings.HasSuffix(n, ".yml")) {
				found = append(found, filepath.Join(p, n))
			}
		}
		if len(found) == 0 {
			errs = append(errs, &Error{File: p, Msg: "no *.yaml or *.yml flow files in directory"})
		}
		sort.Strings(found)
		files = append(files, found...)
	}
	if len(paths) == 0 {
		errs = append(errs, &Error{File: "(none)", Msg: "no flow files given"})
	}

	var data []File
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err != nil {
			errs = append(errs, &Error{File: file, Msg: errMsg(err)})
			continue
		}
		data = append(data, File{Name: file, Data: b})
	}
	set, serrs := parseSet(opts, data)
	errs = append(errs, serrs...)
	if len(errs) > 0 {
		errs.Sort()
		return nil, errs
	}
	return set, nil
}

// File is one flow file's name (used in messages) and content.
type File struct {
	Name string
	Data []byte
}

// ParseSet validates flow files given in memory as one set, as LoadFiles
// does with files on disk: each flow, then what spans flows (unique names
// and entries, the flows TransferToFlow continues in).
func ParseSet(opts LoadOptions, files ...File) (*Set, error) {
	set, errs := parseSet(opts, files)
	if len(errs) > 0 {
		errs.Sort()
		return nil, errs
	}
	return set, nil
}

func parseSet(opts LoadOptions, files []File) (*Set, ErrorList) {
	var errs ErrorList
	set := &Set{byEntry: map[string]*Flow{}, byName: map[string]*Flow{}}
	entryLine := map[*Flow]map[string]int{}
	for _, file := range files {
		f, lines, ferrs := parse(file.Name, file.Data, opts)
		errs = append(errs, ferrs...)
		if f == nil {
			continue
		}
		entryLine[f] = lines.entries
		if f.Name != "" {
			if prev, dup := set.byName[f.Name]; dup {
				errs = append(errs, &Error{File: file.Name, Line: lines.name,
					Msg: fmt.Sprintf("duplicate flow name %q, also in %s", f.Name, prev.File)})
			} else {
				set.byName[f.Name] = f
			}
		}
		for _, e := range f.Entries {
			if prev, dup := set.byEntry[e]; dup && prev != f {
				errs = append(errs, &Error{File: file.Name, Line: lines.entries[e],
					Msg: fmt.Sprintf("entry %q of flow %q is already used by flow %q in %s:%d", e, f.Name, prev.Name, prev.File, entryLine[prev][e])})
				continue
			}
			set.byEntry[e] = f
		}
		set.Flows = append(set.Flows, f)
	}
	errs = append(errs, checkJumps(set)...)
	return set, errs
}

// Parse validates one flow file's content. file is used in messages only.
// Cross-flow checks (duplicate names and entries) need LoadFiles.
func Parse(file string, data []byte, opts LoadOptions) (*Flow, error) {
	f, _, errs := parse(file, data, opts)
	if len(errs) > 0 {
		errs.Sort()
		return nil, errs
	}
	return f, nil
}

// errMsg drops the path os errors repeat, since Error carries the file.
func errMsg(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Op + ": " + pe.Err.Error()
	}
	return err.Error()
}
