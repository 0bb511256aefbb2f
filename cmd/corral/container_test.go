package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The container example's probe and entry commands are corral command
// lines that must keep parsing as corral changes: a renamed flag or
// command would otherwise break every pod built from the example, and
// only at deployment.
func TestContainerExampleCommandsParse(t *testing.T) {
	dir := filepath.Join("..", "..", "examples", "container")
	var lines [][]string
	// Both files write their commands as JSON arrays (YAML flow sequences
	// of quoted strings are JSON; so is a Dockerfile's exec form).
	arr := regexp.MustCompile(`\[\s*"corral"[^\]]*\]`)
	for _, f := range []string{"pod.yaml", "Dockerfile"} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		found := arr.FindAllString(string(b), -1)
		if len(found) == 0 {
			t.Fatalf("%s: no corral command found", f)
		}
		for _, s := range found {
			var argv []string
			if err := json.Unmarshal([]byte(s), &argv); err != nil {
				t.Fatalf("%s: %s: %v", f, s, err)
			}
			lines = append(lines, argv)
		}
	}
	for _, argv := range lines {
		root := newRoot()
		cmd, rest, err := root.Find(argv[1:])
		if err != nil || cmd == root {
			t.Fatalf("%v: no such corral command (%v)", argv, err)
		}
		if err := cmd.ParseFlags(rest); err != nil {
			t.Fatalf("%v: %v", argv, err)
		}
		if err := cmd.ValidateArgs(cmd.Flags().Args()); err != nil {
			t.Fatalf("%v: %v", argv, err)
		}
	}
	// Every file the Dockerfile copies from the example exists.
	b, _ := os.ReadFile(filepath.Join(dir, "Dockerfile"))
	for _, m := range regexp.MustCompile(`examples/container/([\w.]+)`).FindAllStringSubmatch(string(b), -1) {
		if _, err := os.Stat(filepath.Join(dir, m[1])); err != nil && !strings.HasSuffix(m[1], "Dockerfile") {
			t.Errorf("the Dockerfile copies %s: %v", m[1], err)
		}
	}
}
