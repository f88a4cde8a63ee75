package main

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestConfigTableComplete: every variable the service reads has a row in
// docs/configuration.md, and every ORDERS_ row there is read.
func TestConfigTableComplete(t *testing.T) {
	doc, err := os.ReadFile("../../docs/configuration.md")
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile("config.go")
	if err != nil {
		t.Fatal(err)
	}
	read := map[string]bool{}
	for _, m := range regexp.MustCompile(`getenv\("([A-Z][A-Z0-9_]+)"\)`).FindAllStringSubmatch(string(src), -1) {
		read[m[1]] = true
		if !strings.Contains(string(doc), "| `"+m[1]+"`") {
			t.Errorf("%s (read in config.go) has no row in docs/configuration.md", m[1])
		}
	}
	if len(read) < 4 {
		t.Fatalf("the scan found only %v", read)
	}
	for _, m := range regexp.MustCompile("(?m)^\\| `(ORDERS_[A-Z0-9_]+)`").FindAllStringSubmatch(string(doc), -1) {
		if !read[m[1]] {
			t.Errorf("docs/configuration.md documents %s, which the service does not read", m[1])
		}
	}
}
