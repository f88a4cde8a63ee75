package hardening_test

import (
	"fmt"
	"go/ast"
	"go/constant"
	"go/types"
	"os"
	"regexp"
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
