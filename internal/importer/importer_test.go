package importer

import (
	"bytes"
	"context"
	"flag"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/corral-sh/corral/internal/config"
)

var update = flag.Bool("update", false, "rewrite the golden files (want.toml, want.report) from the output")

// testEnv is the environment the golden imports see: fixed, so that the
// goldens do not depend on who runs the tests.
var testEnv = map[string]string{"HOME": "/home/deploy", "RELEASE": "2024.06.1", "DB_PASSWORD": "s3cret"}

func testOptions(dir string) Options {
	return Options{
		OutDir:    dir,
		LookupEnv: func(k string) (string, bool) { v, ok := testEnv[k]; return v, ok },
		Hostname:  func() string { return "build-01" },
		NumCPU:    2,
	}
}

// goldenCases lists every case directory: testdata/FORMAT/CASE holds the
// input (the file named in input), want.toml and want.report.
var goldenCases = []struct {
	format Format
	dir    string
	input  string
	pm2Env string
	node   bool // needs node
}{
	{Supervisord, "supervisord/debian", "supervisord.conf", "", false},
	{Supervisord, "supervisord/docker", "supervisord.conf", "", false},
	{Supervisord, "supervisord/celery", "celery.ini", "", false},
	{Procfile, "procfile/rails", "Procfile", "", false},
	{Procfile, "procfile/monorepo", "Procfile.dev", "", false},
	{Procfile, "procfile/python", "Procfile", "", false},
	{PM2, "pm2/js", "ecosystem.config.js", "production", true},
	{PM2, "pm2/esm", "ecosystem.config.mjs", "", true},
	{PM2, "pm2/json", "ecosystem.json", "staging", false},
	{PM2, "pm2/yaml", "process.yml", "", false},
}

// TestGolden imports every case and compares the TOML and the report with
// the golden files byte for byte; the TOML must load with the daemon's own
// parser (config.Parse), directories and env files and all. Only user and
// group depend on who loads it (another user needs root, and a user of
// the source's machine may not exist here): they are checked as the
// user running the tests (asUser), so that the check does not depend on
// who runs them.
func TestGolden(t *testing.T) {
	for _, tc := range goldenCases {
		t.Run(tc.dir, func(t *testing.T) {
			if tc.node {
				if _, err := exec.LookPath("node"); err != nil {
					t.Skip("node is not installed (Debian: apt-get install nodejs): the JavaScript ecosystem file cannot be evaluated")
				}
			}
			dir, err := filepath.Abs(filepath.Join("testdata", tc.dir))
			if err != nil {
				t.Fatal(err)
			}
			o := testOptions(dir)
			o.PM2Env = tc.pm2Env
			res, err := Import(context.Background(), tc.format, filepath.Join(dir, tc.input), o)
			if err != nil {
				t.Fatal(err)
			}
			got := res.TOML()
			var rep bytes.Buffer
			res.Report(&rep, "corral.toml")
			golden(t, filepath.Join(dir, "want.toml"), dir, got)
			golden(t, filepath.Join(dir, "want.report"), dir, rep.Bytes())
			if runtime.GOOS != "windows" { // stop signals such as QUIT exist only on Unix
				if _, err := config.Parse(filepath.Join(dir, "corral.toml"), asUser(t, got)); err != nil {
					t.Fatalf("the imported file does not load:\n%v\n%s", err, got)
				}
			}
		})
	}
}

var userLine = regexp.MustCompile(`(?m)^(user|group) = ".*"$`)

// asUser rewrites the user = and group = lines of an imported file to the
// user running the test and its primary group, which corral accepts
// without root (or drops them where that user has no name).
func asUser(t *testing.T, text []byte) string {
	t.Helper()
	me, meErr := user.Current()
	var grp string
	if meErr == nil {
		if g, err := user.LookupGroupId(me.Gid); err == nil {
			grp = g.Name
		}
	}
	return userLine.ReplaceAllStringFunc(string(text), func(l string) string {
		switch {
		case meErr != nil, strings.HasPrefix(l, "group") && grp == "":
			return ""
		case strings.HasPrefix(l, "user"):
			return "user = " + quote(me.Username)
		}
		return "group = " + quote(grp)
	})
}

// golden compares got with the file at path, where the case's absolute
// directory is written {dir}.
func golden(t *testing.T, path, dir string, got []byte) {
	t.Helper()
	got = bytes.ReplaceAll(got, []byte(dir), []byte("{dir}"))
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -run TestGolden -update to write it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (go test -run TestGolden -update rewrites it):\n%s", filepath.Base(path), diff(string(want), string(got)))
	}
}

// diff shows the first lines that differ.
func diff(want, got string) string {
	wl, gl := strings.Split(want, "\n"), strings.Split(got, "\n")
	var b strings.Builder
	shown := 0
	for i := 0; i < max(len(wl), len(gl)) && shown < 10; i++ {
		var w, g string
		if i < len(wl) {
			w = wl[i]
		}
		if i < len(gl) {
			g = gl[i]
		}
		if w != g {
			b.WriteString("line " + strconv.Itoa(i+1) + ":\n  want: " + w + "\n  got:  " + g + "\n")
			shown++
		}
	}
	return b.String()
}
