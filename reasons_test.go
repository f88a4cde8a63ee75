package hardening_test

import (
	"encoding/json"
	"fmt"
	"go/ast"
	"go/constant"
	"go/types"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
)

// problemsDoc is the page every problem type links to: DefaultTypeBase is
// its address + "#".
const problemsDoc = "docs/problems.md"

// ordersHeading starts the section of docs/problems.md for examples/orders,
// whose problem types are https://orders.example.com/problems/<reason>.
const ordersHeading = "## examples/orders"

// notAnswered are values the scan sees flow into a reason that never reach
// a client, each with why.
var notAnswered = map[string]string{
	"allowed": "egress.ReasonAllowed: the reason of an allowing Decision; the proxy answers only denials",
}

// quotaDefaults are tenancy's generated reasons: the pattern the scan finds
// in tenancy.Quota.Reason for each quota constructor, filled with the
// names the services declare (unless WithReason replaces it).
var quotaDefaults = map[string]string{
	"Rate":        "<name>_rate_exceeded",
	"Concurrency": "<name>_limit_exceeded",
	"Budget":      "<name>_budget_exceeded",
}

// answers reports whether code in dir answers clients: the kit's
// packages, the hub and examples/orders; not the conformance suites, the
// test environment or the load generators.
func answers(dir string) bool {
	switch {
	case strings.HasSuffix(dir, "/storetest"), strings.HasPrefix(dir, "internal/testenv"),
		strings.HasPrefix(dir, "examples/loadtest"), strings.HasPrefix(dir, "examples/streamload"):
		return false
	}
	return true
}

// scanRepo loads and scans the repository's module once for the tests
// that need it.
func scanRepo() (*module, *reasonScan, error) {
	s, err := scanRepoOnce()
	if err != nil {
		return nil, nil, err
	}
	return s.m, s, nil
}

var scanRepoOnce = sync.OnceValues(func() (*reasonScan, error) {
	m, err := loadModule(".")
	if err != nil {
		return nil, err
	}
	return newReasonScan(m), nil
})

// TestEveryReasonIsDocumented: every problem reason the kit, the hub and
// examples/orders can answer with has an anchor in docs/problems.md (the
// type URL of each problem points there), the orders service's reasons are
// listed in its section, and every reason anchor there is one the code
// answers with. The reasons are found by following values from the code
// into the reason of a problem (see reasonScan), so a new reason without
// its entry fails here, naming the reason and where it comes from.
func TestEveryReasonIsDocumented(t *testing.T) {
	m, s, err := scanRepo()
	if err != nil {
		t.Fatal(err)
	}
	for where, expr := range s.unresolved {
		t.Errorf("%s: cannot tell which reasons %s can be: make it a constant, a parameter or a field, or teach reasonScan", where, expr)
	}
	reasons := answeredReasons(t, m, s)
	doc, err := os.ReadFile(problemsDoc)
	if err != nil {
		t.Fatal(err)
	}
	anchors := reasonAnchors(string(doc))

	var missing []string
	for _, r := range sortedKeys(reasons) {
		if !anchors[r] {
			missing = append(missing, fmt.Sprintf("  %s  (from %s)", r, strings.Join(reasons[r], ", ")))
		}
	}
	if len(missing) > 0 {
		t.Errorf("%s has no anchor for %d reason(s) the code answers with; add a row "+
			"`| <a id=\"REASON\"></a>`REASON` | status | meaning | what the client should do |` "+
			"to the section of the package that emits it:\n%s", problemsDoc, len(missing), strings.Join(missing, "\n"))
	}
	for _, a := range sortedKeys(anchors) {
		if reasons[a] == nil {
			t.Errorf("%s: anchor %q is not a reason the code answers with (remove it, or the scan missed it)", problemsDoc, a)
		}
	}
	for p := range s.patterns {
		if !strings.Contains(string(doc), "`"+p+"`") {
			t.Errorf("%s does not describe the generated reasons `%s`", problemsDoc, p)
		}
	}
	checkOrdersSection(t, string(doc), reasons)
}

// answeredReasons returns every reason code answered by code in scope,
// with where each comes from.
func answeredReasons(t *testing.T, m *module, s *reasonScan) map[string][]string {
	t.Helper()
	out := map[string][]string{}
	for r, wheres := range s.found {
		for w := range wheres {
			if answers(dirOfWhere(w)) && notAnswered[r] == "" {
				out[r] = append(out[r], w)
			}
		}
	}
	known := map[string]bool{}
	for _, p := range quotaDefaults {
		known[p] = true
		if s.patterns[p] == nil {
			t.Errorf("tenancy no longer builds reasons as %s; update quotaDefaults", p)
		}
	}
	for p, wheres := range s.patterns {
		if !known[p] {
			t.Errorf("a reason is built as %s (at %s); the test does not know which values fill it: "+
				"make it a constant, or teach quotaDefaults", p, strings.Join(sortedKeys(wheres), ", "))
		}
	}
	for r, wheres := range quotaReasons(t, m) {
		out[r] = append(out[r], wheres...)
	}
	for _, w := range out {
		sort.Strings(w)
	}
	return out
}

// quotaReasons returns the default reasons of the quotas the services
// declare with tenancy.Rate, Concurrency or Budget without WithReason.
func quotaReasons(t *testing.T, m *module) map[string][]string {
	t.Helper()
	tenancyPath := m.path + "/tenancy"
	isTenancy := func(e ast.Expr, names ...string) string {
		call, ok := e.(*ast.CallExpr)
		if !ok {
			return ""
		}
		sel, ok := call.Fun.(*ast.SelectorExpr)
		if !ok {
			return ""
		}
		fn, ok := m.info.Uses[sel.Sel].(*types.Func)
		if !ok || fn.Pkg() == nil || fn.Pkg().Path() != tenancyPath {
			return ""
		}
		for _, n := range names {
			if fn.Name() == n {
				return n
			}
		}
		return ""
	}
	out := map[string][]string{}
	for _, f := range m.files {
		if !answers(m.dirOf(f.Pos())) {
			continue
		}
		ast.Inspect(f, func(n ast.Node) bool {
			call, ok := n.(*ast.CallExpr)
			if !ok {
				return true
			}
			kind := isTenancy(call, "Rate", "Concurrency", "Budget")
			if kind == "" || len(call.Args) == 0 {
				return true
			}
			for _, a := range call.Args[1:] {
				if isTenancy(a, "WithReason") != "" {
					return true // the scan found its reason
				}
			}
			where := m.where(call.Pos())
			tv := m.info.Types[call.Args[0]]
			if tv.Value == nil || tv.Value.Kind() != constant.String {
				t.Errorf("%s: the quota's name is not a constant, so its reason is unknown; name it with a constant or give it WithReason", where)
				return true
			}
			r := strings.Replace(quotaDefaults[kind], "<name>", constant.StringVal(tv.Value), 1)
			out[r] = append(out[r], where)
			return true
		})
	}
	return out
}

// anchorRE finds the explicit anchors of docs/problems.md; reasonRE is
// what a reason looks like.
var (
	anchorRE = regexp.MustCompile(`<a id="([^"]+)"></a>`)
	reasonRE = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
)

// reasonAnchors returns the reason anchors of doc: explicit
// <a id="reason"></a> anchors, and "### reason" headings (GitHub keeps the
// underscores of a heading's anchor).
func reasonAnchors(doc string) map[string]bool {
	out := map[string]bool{}
	for _, m := range anchorRE.FindAllStringSubmatch(doc, -1) {
		if reasonRE.MatchString(m[1]) {
			out[m[1]] = true
		}
	}
	for line := range strings.SplitSeq(doc, "\n") {
		if h, ok := strings.CutPrefix(line, "### "); ok {
			if h = strings.Trim(strings.TrimSpace(h), "`"); reasonRE.MatchString(h) {
				out[h] = true
			}
		}
	}
	return out
}

// checkOrdersSection: examples/orders answers with its own type base, so
// its section of the page lists every reason its own code and quota
// declarations produce.
func checkOrdersSection(t *testing.T, doc string, reasons map[string][]string) {
	t.Helper()
	i := strings.Index(doc, "\n"+ordersHeading)
	if i < 0 {
		t.Errorf("%s has no %q section", problemsDoc, ordersHeading)
		return
	}
	section := doc[i+1:]
	if j := strings.Index(section[len(ordersHeading):], "\n## "); j >= 0 {
		section = section[:len(ordersHeading)+j]
	}
	for _, r := range sortedKeys(reasons) {
		for _, w := range reasons[r] {
			if strings.HasPrefix(w, "examples/orders/") && !strings.Contains(section, "`"+r+"`") {
				t.Errorf("%s, section %q: examples/orders answers with %s (%s), not listed there", problemsDoc, ordersHeading, r, w)
				break
			}
		}
	}
}

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

func dirOfWhere(where string) string {
	file, _, _ := strings.Cut(where, ":")
	if i := strings.LastIndex(file, "/"); i >= 0 {
		return file[:i]
	}
	return "."
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
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

// TestReasonScanFollowsValues: the scan finds a reason written in each of
// the ways it claims to follow (testdata/reasonscan), records the
// concatenation as a pattern and reports the map lookup it cannot follow.
func TestReasonScanFollowsValues(t *testing.T) {
	m, err := loadModule("testdata/reasonscan")
	if err != nil {
		t.Fatal(err)
	}
	s := newReasonScan(m)
	want := []string{"via_assigned_field", "via_carrier_literal", "via_const", "via_literal", "via_local",
		"via_param", "via_return", "via_tuple_result", "via_typed_const"}
	if got := sortedKeys(s.found); !slices.Equal(got, want) {
		t.Errorf("reasons\n got %v\nwant %v", got, want)
	}
	if got := sortedKeys(s.patterns); !slices.Equal(got, []string{"<name>_exceeded"}) {
		t.Errorf("patterns: got %v", got)
	}
	var unresolved []string
	for _, expr := range s.unresolved {
		unresolved = append(unresolved, expr)
	}
	if !slices.Equal(unresolved, []string{"dynamic[k]"}) {
		t.Errorf("unresolved: got %v", s.unresolved)
	}
}
