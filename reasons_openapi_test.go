package hardening_test

import (
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// TestOpenAPIReasonsAreDocumented: every reason the hub's OpenAPI document
// declares in a problem response has an anchor in docs/problems.md whose
// status column names each status the document answers it with, and is
// one the scan of the code finds (so the scan does not miss a reason the
// hub declares).
func TestOpenAPIReasonsAreDocumented(t *testing.T) {
	raw, err := os.ReadFile("examples/hub/openapi.json")
	if err != nil {
		t.Fatal(err)
	}
	var spec struct {
		Paths      map[string]map[string]json.RawMessage
		Components struct{ Responses map[string]any }
	}
	if err := json.Unmarshal(raw, &spec); err != nil {
		t.Fatal(err)
	}
	declared := map[string]map[string]bool{} // reason -> statuses
	for _, ops := range spec.Paths {
		for _, rawOp := range ops {
			var op struct{ Responses map[string]any }
			if json.Unmarshal(rawOp, &op) != nil {
				continue // "parameters" and the like
			}
			for status, resp := range op.Responses {
				if ref, ok := resp.(map[string]any)["$ref"].(string); ok {
					resp = spec.Components.Responses[strings.TrimPrefix(ref, "#/components/responses/")]
				}
				content, _ := resp.(map[string]any)["content"].(map[string]any)
				collectReasonEnums(content["application/problem+json"], status, declared)
			}
		}
	}
	if len(declared) == 0 {
		t.Fatal("openapi.json declares no reason enums; has its shape changed?")
	}
	doc, err := os.ReadFile(problemsDoc)
	if err != nil {
		t.Fatal(err)
	}
	statuses := statusColumns(string(doc))
	m, s, err := scanRepo()
	if err != nil {
		t.Fatal(err)
	}
	reasons := answeredReasons(t, m, s)
	for _, r := range sortedKeys(declared) {
		col, ok := statuses[r]
		if !ok {
			t.Errorf("openapi.json declares reason %q; %s has no anchored row for it", r, problemsDoc)
		}
		for _, st := range sortedKeys(declared[r]) {
			if ok && !strings.Contains(col, st) {
				t.Errorf("openapi.json answers reason %q with %s; its row in %s says %q", r, st, problemsDoc, col)
			}
		}
		if reasons[r] == nil {
			t.Errorf("openapi.json declares reason %q; the code scan does not find it", r)
		}
	}
}

// rowRE is an anchored row of docs/problems.md: reason and status column.
var rowRE = regexp.MustCompile("(?m)^\\| <a id=\"([a-z0-9_]+)\"></a>`[^`]+` \\| ([^|]+) \\|")

// statusColumns returns the status column of each anchored row of doc.
func statusColumns(doc string) map[string]string {
	out := map[string]string{}
	for _, m := range rowRE.FindAllStringSubmatch(doc, -1) {
		out[m[1]] = m[2]
	}
	return out
}

// collectReasonEnums adds the enum values of every "reason" property in
// v, a problem response's content, with status.
func collectReasonEnums(v any, status string, into map[string]map[string]bool) {
	switch v := v.(type) {
	case map[string]any:
		if props, ok := v["properties"].(map[string]any); ok {
			if reason, ok := props["reason"].(map[string]any); ok {
				if enum, ok := reason["enum"].([]any); ok {
					for _, e := range enum {
						if s, ok := e.(string); ok {
							if into[s] == nil {
								into[s] = map[string]bool{}
							}
							into[s][status] = true
						}
					}
				}
			}
		}
		for _, c := range v {
			collectReasonEnums(c, status, into)
		}
	case []any:
		for _, c := range v {
			collectReasonEnums(c, status, into)
		}
	}
}

// problemLinkRE finds a link to an entry of docs/problems.md.
var problemLinkRE = regexp.MustCompile(`problems\.md#([A-Za-z0-9_-]+)`)

// TestProblemLinksResolve: every link to an entry of docs/problems.md in
// the repository's documents (README, docs/, the hub's OpenAPI document)
// lands on an anchor there.
func TestProblemLinksResolve(t *testing.T) {
	doc, err := os.ReadFile(problemsDoc)
	if err != nil {
		t.Fatal(err)
	}
	anchors := reasonAnchors(string(doc))
	err = filepath.WalkDir(".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (strings.HasPrefix(d.Name(), ".") && p != ".") {
			return filepath.SkipDir
		}
		if d.IsDir() || (!strings.HasSuffix(p, ".md") && !strings.HasSuffix(p, ".json")) {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		for _, m := range problemLinkRE.FindAllStringSubmatch(string(b), -1) {
			if !anchors[m[1]] {
				t.Errorf("%s links to %s#%s, which has no such anchor", p, problemsDoc, m[1])
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
