package api_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/corral-sh/corral/internal/api"
	"github.com/corral-sh/corral/internal/daemon"
	"github.com/corral-sh/corral/internal/ipc"
	"github.com/corral-sh/corral/internal/journal"
	"github.com/corral-sh/corral/internal/testproc"
	"github.com/corral-sh/corral/proctree"
)

// docs/openapi.json describes the API; these tests hold it to what the
// daemon really does. To add a route: add it to api's route table and to
// the document's paths, and make TestOpenAPIMatchesTheDaemon send it at
// least one request that succeeds (it fails for an operation it never
// saw succeed).

const openAPIPath = "../../docs/openapi.json"

// oaDoc is the OpenAPI document, decoded with numbers kept as written.
type oaDoc struct{ root map[string]any }

func loadOpenAPI(t *testing.T) *oaDoc {
	t.Helper()
	b, err := os.ReadFile(openAPIPath)
	if err != nil {
		t.Fatal(err)
	}
	var root map[string]any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(&root); err != nil {
		t.Fatalf("%s is not JSON: %v", openAPIPath, err)
	}
	if v, _ := root["openapi"].(string); !strings.HasPrefix(v, "3.0.") {
		t.Fatalf("%s: openapi %q, want 3.0.x (the validator below knows its schema dialect)", openAPIPath, v)
	}
	return &oaDoc{root: root}
}

// methods are the operation keys of an OpenAPI path item.
var methods = []string{"get", "put", "post", "delete", "patch", "head", "options"}

// operations returns "METHOD /path" → operation.
func (d *oaDoc) operations() map[string]map[string]any {
	out := map[string]map[string]any{}
	paths, _ := d.root["paths"].(map[string]any)
	for p, item := range paths {
		item, _ := item.(map[string]any)
		for _, m := range methods {
			if op, ok := item[m].(map[string]any); ok {
				out[strings.ToUpper(m)+" "+p] = op
			}
		}
	}
	return out
}

// resolve follows a local reference (#/components/...).
func (d *oaDoc) resolve(ref string) (map[string]any, error) {
	if !strings.HasPrefix(ref, "#/") {
		return nil, fmt.Errorf("reference %q is not local", ref)
	}
	var cur any = d.root
	for _, part := range strings.Split(ref[2:], "/") {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("reference %q does not resolve", ref)
		}
		if cur, ok = m[part]; !ok {
			return nil, fmt.Errorf("reference %q does not resolve", ref)
		}
	}
	m, ok := cur.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("reference %q is not an object", ref)
	}
	return m, nil
}

// deref returns o, or what its $ref points to.
func (d *oaDoc) deref(o map[string]any) (map[string]any, error) {
	for range 10 {
		ref, ok := o["$ref"].(string)
		if !ok {
			return o, nil
		}
		var err error
		if o, err = d.resolve(ref); err != nil {
			return nil, err
		}
	}
	return nil, fmt.Errorf("references too deep")
}

// schemaKeywords are the keywords validate checks (description is for
// people). A schema that uses another fails: the document would promise
// more than the test holds the daemon to.
var schemaKeywords = map[string]bool{
	"$ref": true, "type": true, "properties": true, "required": true, "additionalProperties": true,
	"items": true, "enum": true, "format": true, "oneOf": true, "nullable": true, "description": true,
}

// validate checks v (decoded with UseNumber) against schema, a subset of
// OpenAPI 3.0's JSON Schema: type, properties, required,
// additionalProperties (false or a schema), items, enum, format date-time,
// oneOf, nullable, $ref. It returns what does not hold, by JSON path.
func (d *oaDoc) validate(schema map[string]any, v any, at string) []string {
	for k := range schema {
		if !schemaKeywords[k] {
			return []string{fmt.Sprintf("%s: the schema uses %q, which the validator does not check", at, k)}
		}
	}
	if ref, ok := schema["$ref"].(string); ok {
		if len(schema) > 1 {
			return []string{fmt.Sprintf("%s: $ref %s has siblings (OpenAPI 3.0 ignores them)", at, ref)}
		}
		s, err := d.resolve(ref)
		if err != nil {
			return []string{at + ": " + err.Error()}
		}
		return d.validate(s, v, at)
	}
	if v == nil {
		if schema["nullable"] == true {
			return nil
		}
		return []string{at + ": null (the API never sends null: a list is [], an optional field is absent)"}
	}
	if alts, ok := schema["oneOf"].([]any); ok {
		var matched int
		var why []string
		for i, alt := range alts {
			alt, _ := alt.(map[string]any)
			p := d.validate(alt, v, at)
			if len(p) == 0 {
				matched++
			} else {
				why = append(why, fmt.Sprintf("oneOf[%d]: %s", i, strings.Join(p, "; ")))
			}
		}
		if matched != 1 {
			return []string{fmt.Sprintf("%s: matches %d of oneOf's %d schemas, want 1 (%s)", at, matched, len(alts), strings.Join(why, " | "))}
		}
		return nil
	}
	var out []string
	switch typ, _ := schema["type"].(string); typ {
	case "string":
		s, ok := v.(string)
		if !ok {
			return []string{fmt.Sprintf("%s: %v is not a string", at, v)}
		}
		switch f, _ := schema["format"].(string); f {
		case "":
		case "date-time":
			if _, err := time.Parse(time.RFC3339Nano, s); err != nil {
				out = append(out, fmt.Sprintf("%s: %q is not an RFC 3339 date-time", at, s))
			}
		default:
			out = append(out, fmt.Sprintf("%s: the schema uses format %q, which the validator does not check", at, f))
		}
	case "integer":
		n, ok := v.(json.Number)
		if _, err := n.Int64(); !ok || err != nil {
			if _, uerr := strconv.ParseUint(string(n), 10, 64); !ok || uerr != nil {
				return []string{fmt.Sprintf("%s: %v is not an integer", at, v)}
			}
		}
	case "number":
		if _, ok := v.(json.Number); !ok {
			return []string{fmt.Sprintf("%s: %v is not a number", at, v)}
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			return []string{fmt.Sprintf("%s: %v is not a boolean", at, v)}
		}
	case "array":
		arr, ok := v.([]any)
		if !ok {
			return []string{fmt.Sprintf("%s: %v is not an array", at, v)}
		}
		items, ok := schema["items"].(map[string]any)
		if !ok {
			return []string{at + ": an array schema without items"}
		}
		for i, e := range arr {
			out = append(out, d.validate(items, e, fmt.Sprintf("%s[%d]", at, i))...)
		}
	case "object":
		obj, ok := v.(map[string]any)
		if !ok {
			return []string{fmt.Sprintf("%s: %v is not an object", at, v)}
		}
		props, _ := schema["properties"].(map[string]any)
		req, _ := schema["required"].([]any)
		for _, r := range req {
			if _, ok := obj[r.(string)]; !ok {
				out = append(out, fmt.Sprintf("%s: required field %q is missing", at, r))
			}
		}
		keys := make([]string, 0, len(obj))
		for k := range obj {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			if ps, ok := props[k].(map[string]any); ok {
				out = append(out, d.validate(ps, obj[k], at+"."+k)...)
				continue
			}
			switch ap := schema["additionalProperties"].(type) {
			case bool:
				if !ap {
					out = append(out, fmt.Sprintf("%s: field %q is not in the schema", at, k))
				}
			case map[string]any:
				out = append(out, d.validate(ap, obj[k], at+"."+k)...)
			default:
				// Every object schema says whether it is closed: an open
				// one by default would let any field the daemon adds pass.
				out = append(out, fmt.Sprintf("%s: field %q, and the schema does not say additionalProperties", at, k))
			}
		}
	default:
		return []string{fmt.Sprintf("%s: the schema has no type the validator knows (%q)", at, typ)}
	}
	if enum, ok := schema["enum"].([]any); ok && !slices.ContainsFunc(enum, func(e any) bool { return fmt.Sprint(e) == fmt.Sprint(v) }) {
		out = append(out, fmt.Sprintf("%s: %v is not one of %v", at, v, enum))
	}
	return out
}

// A validator that cannot fail proves nothing: each of these bodies
// breaks the schema in one way, and each must be refused.
func TestOpenAPIValidatorRefuses(t *testing.T) {
	doc := loadOpenAPI(t)
	svc := map[string]any{"$ref": "#/components/schemas/Service"}
	good := `{"name":"a","state":"ready","since":"2026-01-02T03:04:05Z","restarts":0,"starts":1,"member_count":1,"rss":5,"cpu_seconds":0.5,"profiles":[],
		"members":[{"pid":1,"ppid":0,"pgid":1,"start":"2026-01-02T03:04:05.5+01:00","cmdline":["x"],"rss":5,"state":"S","start_ticks":9,"cpu_seconds":0.5}]}`
	decode := func(s string) any {
		dec := json.NewDecoder(strings.NewReader(s))
		dec.UseNumber()
		var v any
		if err := dec.Decode(&v); err != nil {
			t.Fatal(err)
		}
		return v
	}
	if p := doc.validate(svc, decode(good), "$"); len(p) > 0 {
		t.Fatalf("a good body is refused: %v", p)
	}
	for _, tc := range []struct{ what, body, want string }{
		{"an undeclared field", strings.Replace(good, `"rss":5,`, `"rss":5,"bogus":1,`, 1), `field "bogus" is not in the schema`},
		{"a null list", strings.Replace(good, `"members":[`, `"external_pids":null,"members":[`, 1), "$.external_pids: null"},
		{"a missing field", strings.Replace(good, `"restarts":0,`, "", 1), `required field "restarts"`},
		{"a wrong type", strings.Replace(good, `"starts":1`, `"starts":"1"`, 1), `$.starts: 1 is not an integer`},
		{"a fraction for an integer", strings.Replace(good, `"starts":1`, `"starts":1.5`, 1), `1.5 is not an integer`},
		{"a value outside the enum", strings.Replace(good, `"state":"ready"`, `"state":"sleepy"`, 1), `sleepy is not one of`},
		{"a bad time", strings.Replace(good, `"since":"2026-01-02T03:04:05Z"`, `"since":"yesterday"`, 1), `"yesterday" is not an RFC 3339`},
		{"a bad nested item", strings.Replace(good, `"cmdline":["x"]`, `"cmdline":[1]`, 1), `$.members[0].cmdline[0]: 1 is not a string`},
	} {
		p := doc.validate(svc, decode(tc.body), "$")
		if !strings.Contains(strings.Join(p, "\n"), tc.want) {
			t.Errorf("%s: problems %q, want one with %q", tc.what, p, tc.want)
		}
	}
	line := map[string]any{"$ref": "#/components/schemas/EventStreamLine"}
	if p := doc.validate(line, decode(`{"heartbeat":true,"time":"2026-01-02T03:04:05Z","seq":3}`), "$"); len(p) == 0 {
		t.Error("a heartbeat with a seq passed oneOf")
	}
	if p := doc.validate(map[string]any{"type": "string", "pattern": "x"}, "x", "$"); len(p) == 0 {
		t.Error("a keyword the validator does not check passed")
	}
}

// Every route the handler registers is in the document, and every
// operation of the document is a route.
func TestOpenAPIHasEveryRoute(t *testing.T) {
	doc := loadOpenAPI(t)
	var served []string
	for _, r := range api.Routes() {
		served = append(served, r.Method+" "+r.Path)
	}
	var documented []string
	for k := range doc.operations() {
		documented = append(documented, k)
	}
	sort.Strings(served)
	sort.Strings(documented)
	if !slices.Equal(served, documented) {
		t.Fatalf("the handler serves\n  %s\nthe document describes\n  %s", strings.Join(served, "\n  "), strings.Join(documented, "\n  "))
	}
	// Every operation is complete enough to check answers against.
	for k, op := range doc.operations() {
		rs, _ := op["responses"].(map[string]any)
		if _, ok := rs["200"]; !ok {
			t.Errorf("%s: no 200 answer", k)
		}
		for code, r := range rs {
			r, err := doc.deref(r.(map[string]any))
			if err != nil {
				t.Errorf("%s %s: %v", k, code, err)
				continue
			}
			if c, _ := r["content"].(map[string]any); len(c) == 0 {
				t.Errorf("%s %s: no content", k, code)
			}
		}
	}
}

// constsOfType returns the values of the string constants of type typ
// declared in file: derived from the code, so that a new one cannot be
// forgotten by a hand-kept list.
func constsOfType(t *testing.T, file, typ string) []string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), file, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, spec := range g.Specs {
			vs := spec.(*ast.ValueSpec)
			if id, ok := vs.Type.(*ast.Ident); !ok || id.Name != typ {
				continue
			}
			for _, v := range vs.Values {
				if lit, ok := v.(*ast.BasicLit); ok && lit.Kind == token.STRING {
					s, _ := strconv.Unquote(lit.Value)
					out = append(out, s)
				}
			}
		}
	}
	if len(out) == 0 {
		t.Fatalf("no constants of type %s in %s", typ, file)
	}
	sort.Strings(out)
	return out
}

// tableKeys returns the first column's `names` of the tables in section
// (a "## " heading) of docs/api.md.
func tableKeys(t *testing.T, section string) []string {
	t.Helper()
	b, err := os.ReadFile("../../docs/api.md")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	in := false
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "#") && !strings.HasPrefix(line, "###") {
			in = strings.TrimSpace(strings.TrimLeft(line, "#")) == section
			continue
		}
		if in && strings.HasPrefix(line, "| `") {
			cell := strings.TrimPrefix(line, "| `")
			out = append(out, cell[:strings.IndexByte(cell, '`')])
		}
	}
	sort.Strings(out)
	return out
}

func enumOf(t *testing.T, doc *oaDoc, ref string, prop string) []string {
	t.Helper()
	s, err := doc.resolve(ref)
	if err != nil {
		t.Fatal(err)
	}
	if prop != "" {
		props, _ := s["properties"].(map[string]any)
		s, _ = props[prop].(map[string]any)
	}
	var out []string
	for _, e := range s["enum"].([]any) {
		out = append(out, e.(string))
	}
	sort.Strings(out)
	return out
}

// Every event kind, service state and error code the code has is
// explained in docs/api.md and listed in the document's enums, and
// nothing else is.
func TestDocsListEveryKindStateAndCode(t *testing.T) {
	doc := loadOpenAPI(t)
	kinds := constsOfType(t, "../journal/journal.go", "Kind")
	states := constsOfType(t, "../service/state.go", "State")
	for _, c := range []struct {
		what string
		code []string
		list []string
	}{
		{"event kinds: docs/api.md, Events", kinds, tableKeys(t, "Events")},
		{"event kinds: openapi Event.kind", kinds, enumOf(t, doc, "#/components/schemas/Event", "kind")},
		{"states: docs/api.md, States", states, tableKeys(t, "States")},
		{"states: openapi Service.state", states, enumOf(t, doc, "#/components/schemas/Service", "state")},
		{"error codes: docs/api.md, Errors", enumOf(t, doc, "#/components/schemas/ErrorCode", ""), tableKeys(t, "Errors")},
	} {
		if !slices.Equal(c.code, c.list) {
			t.Errorf("%s:\n  the code has %v\n  listed are   %v", c.what, c.code, c.list)
		}
	}
}

// checker sends requests to a real daemon and holds every answer to the
// document: the operation lists its status, the body (each line of a
// stream) validates against its schema, its Corral-* headers are declared
// and its required ones sent, and every query parameter sent is declared.
type checker struct {
	t    *testing.T
	doc  *oaDoc
	hc   *http.Client
	ok   map[string]bool // operations answered with a 2xx
	seen []string        // operation and status of each answer, for the log
}

// operation finds the document's operation for a request: a concrete path
// before a template, as OpenAPI matches them. "" when none takes it.
func (c *checker) operation(method, path string) (string, map[string]any) {
	var best string
	var bestOp map[string]any
	bestVars := -1
	for key, op := range c.doc.operations() {
		m, tmpl, _ := strings.Cut(key, " ")
		if m != method {
			continue
		}
		ts, ps := strings.Split(tmpl, "/"), strings.Split(path, "/")
		if len(ts) != len(ps) {
			continue
		}
		vars, match := 0, true
		for i := range ts {
			if strings.HasPrefix(ts[i], "{") && strings.HasSuffix(ts[i], "}") && ps[i] != "" {
				vars++
			} else if ts[i] != ps[i] {
				match = false
				break
			}
		}
		if match && (bestVars < 0 || vars < bestVars) {
			best, bestOp, bestVars = key, op, vars
		}
	}
	return best, bestOp
}

// pathExists reports whether some operation of another method takes path.
func (c *checker) pathExists(path string) bool {
	for _, m := range methods {
		if k, _ := c.operation(strings.ToUpper(m), path); k != "" {
			return true
		}
	}
	return false
}

// answer is a checked answer: its status, headers and, for JSON, the body.
type answer struct {
	status int
	header http.Header
	body   any    // the JSON body (UseNumber); nil for a stream
	lines  []any  // a stream's lines
	text   string // a text body (the metrics)
}

func (a answer) field(path ...string) any {
	var cur any = a.body
	for _, p := range path {
		m, _ := cur.(map[string]any)
		cur = m[p]
	}
	return cur
}

// do sends method target and checks the answer against the document; want
// is the status the test expects. A follow stream is read until its first
// heartbeat (stream: lines to read at most, 0 for a whole answer).
func (c *checker) do(method, target string, want int) answer {
	c.t.Helper()
	return c.send(method, target, "", want)
}

// send is do with a JSON request body (""; none). A body sent to an
// operation must be one it declares, and, when it is expected to succeed,
// valid against the document's schema of it.
func (c *checker) send(method, target, body string, want int) answer {
	c.t.Helper()
	u, err := url.Parse("http://corral" + target)
	if err != nil {
		c.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
		if key, op := c.operation(method, u.Path); key != "" {
			rb, ok := op["requestBody"].(map[string]any)
			if !ok {
				c.t.Fatalf("%s: sent a body, and the document declares none", key)
			}
			content, _ := rb["content"].(map[string]any)
			media, _ := content["application/json"].(map[string]any)
			schema, _ := media["schema"].(map[string]any)
			if p := c.doc.validate(schema, decodeNumbers(c.t, []byte(body)), "request body"); want/100 == 2 && len(p) > 0 {
				c.t.Errorf("%s: the request body %s does not match the document:\n  %s", key, body, strings.Join(p, "\n  "))
			}
		}
	}
	req, _ := http.NewRequestWithContext(ctx, method, u.String(), rd)
	resp, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, target, err)
	}
	defer resp.Body.Close()
	a := answer{status: resp.StatusCode, header: resp.Header}
	if resp.StatusCode != want {
		b, _ := io.ReadAll(resp.Body)
		c.t.Fatalf("%s %s: status %d, want %d: %s", method, target, resp.StatusCode, want, b)
	}
	key, op := c.operation(method, u.Path)
	var responses map[string]any
	if key == "" {
		// No operation takes it: the document's no-route answers.
		nr, _ := c.doc.root["x-corral-no-route"].(map[string]any)
		responses, _ = nr["responses"].(map[string]any)
		key = "no route"
		if c.pathExists(u.Path) && resp.StatusCode != http.StatusMethodNotAllowed {
			c.t.Errorf("%s %s: the path has other methods, and the answer is %d, not 405", method, target, resp.StatusCode)
		}
	} else {
		responses, _ = op["responses"].(map[string]any)
		c.checkParams(key, op, u.Query())
	}
	c.seen = append(c.seen, fmt.Sprintf("%s %d", key, resp.StatusCode))
	r, ok := responses[strconv.Itoa(resp.StatusCode)].(map[string]any)
	if !ok {
		b, _ := io.ReadAll(resp.Body)
		c.t.Fatalf("%s %s (%s): status %d is not among the document's answers: %s", method, target, key, resp.StatusCode, b)
	}
	r, err = c.doc.deref(r)
	if err != nil {
		c.t.Fatal(err)
	}
	c.checkHeaders(key, resp, r)
	ct, _, _ := strings.Cut(resp.Header.Get("Content-Type"), ";")
	content, _ := r["content"].(map[string]any)
	media, ok := content[ct].(map[string]any)
	if !ok {
		c.t.Fatalf("%s %s (%s %d): content type %q is not the document's (%v)", method, target, key, resp.StatusCode, ct, content)
	}
	schema, _ := media["schema"].(map[string]any)
	fail := func(at string, problems []string) {
		c.t.Errorf("%s %s (%s %d): the answer does not match the document:\n  %s", method, target, key, resp.StatusCode, strings.Join(problems, "\n  "))
	}
	if typ, _ := schema["type"].(string); typ == "string" && strings.HasPrefix(ct, "text/") {
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			c.t.Fatal(err)
		}
		a.text = string(b)
	} else if ct == "application/x-ndjson" {
		follow := u.Query().Get("follow") == "1"
		sc := bufio.NewScanner(resp.Body)
		sc.Buffer(nil, 1<<20)
		for sc.Scan() {
			v := decodeNumbers(c.t, sc.Bytes())
			if p := c.doc.validate(schema, v, fmt.Sprintf("line %d", len(a.lines)+1)); len(p) > 0 {
				fail("", p)
			}
			a.lines = append(a.lines, v)
			if m, _ := v.(map[string]any); follow && m["heartbeat"] == true {
				break // the follow was idle long enough to say it lives
			}
		}
		if err := sc.Err(); err != nil {
			c.t.Fatalf("%s %s: reading the stream: %v", method, target, err)
		}
	} else {
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			c.t.Fatal(err)
		}
		a.body = decodeNumbers(c.t, b)
		if p := c.doc.validate(schema, a.body, "$"); len(p) > 0 {
			fail("$", p)
		}
	}
	if resp.StatusCode/100 == 2 && key != "no route" {
		c.ok[key] = true
	}
	return a
}

func decodeNumbers(t *testing.T, b []byte) any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		t.Fatalf("not JSON: %v: %q", err, b)
	}
	return v
}

func (c *checker) checkParams(key string, op map[string]any, q url.Values) {
	declared := map[string]bool{}
	params, _ := op["parameters"].([]any)
	for _, p := range params {
		p, err := c.doc.deref(p.(map[string]any))
		if err != nil {
			c.t.Fatal(err)
		}
		if p["in"] == "query" {
			declared[p["name"].(string)] = true
		}
	}
	for k := range q {
		if !declared[k] {
			c.t.Errorf("%s: query parameter %q is not in the document", key, k)
		}
	}
}

func (c *checker) checkHeaders(key string, resp *http.Response, r map[string]any) {
	declared := map[string]bool{}
	hs, _ := r["headers"].(map[string]any)
	for name, h := range hs {
		declared[http.CanonicalHeaderKey(name)] = true
		h, _ := h.(map[string]any)
		if h["required"] == true && resp.Header.Get(name) == "" {
			c.t.Errorf("%s %d: header %s is required by the document and missing", key, resp.StatusCode, name)
		}
	}
	for name := range resp.Header {
		if (strings.HasPrefix(name, "Corral-") || name == "Allow") && !declared[name] {
			c.t.Errorf("%s %d: header %s is not in the document", key, resp.StatusCode, name)
		}
	}
}

// The real daemon (daemon.Run, its supervisor running this test binary's
// fixtures) answers every operation as the document says, errors and
// streams included.
func TestOpenAPIMatchesTheDaemon(t *testing.T) {
	doc := loadOpenAPI(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "corral.toml")
	env := `{ CORRAL_TESTPROC = "%s", GORACE = "atexit_sleep_ms=0" }`
	cfg := fmt.Sprintf(`
[services.web]
command = ['%[1]s', "webui", "--workers", "1"]
env = `+fmt.Sprintf(env, "webui")+`
autostart = false
ready = { log = "%[2]s", timeout = "1m" }
profiles = { other = ["--workers", "2"] }
stop = { grace = "5s" }

[services.slow]
command = ['%[1]s', "sleep"]
env = `+fmt.Sprintf(env, "sleep")+`
autostart = false
ready = { log = "never printed", timeout = "1m" }
stop = { grace = "5s" }

[services.broken]
command = ['%[1]s', "exit", "3"]
env = `+fmt.Sprintf(env, "exit")+`
autostart = false
ready = { log = "never printed", timeout = "1m" }
restart = { policy = "never" }
`, exe, testproc.TreeStarted)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dir, "s")
	listening := make(chan struct{})
	ran := make(chan error, 1)
	go func() {
		_, err := daemon.Run(context.Background(), daemon.Options{ConfigPath: cfgPath, StateDir: state,
			Version: "test", Listening: func() { close(listening) }})
		ran <- err
	}()
	select {
	case <-listening:
	case err := <-ran:
		t.Fatalf("daemon: %v", err)
	case <-time.After(time.Minute):
		t.Fatal("the daemon does not listen after a minute")
	}
	c := &checker{t: t, doc: doc, ok: map[string]bool{},
		hc: &http.Client{Transport: &http.Transport{DialContext: ipc.Dialer(ipc.Path(state))}}}
	shutDown := false
	t.Cleanup(func() {
		if !shutDown {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			req, _ := http.NewRequestWithContext(ctx, "POST", "http://corral/v1/shutdown", nil)
			if resp, err := c.hc.Do(req); err == nil {
				resp.Body.Close()
			}
		}
		select {
		case <-ran:
		case <-time.After(time.Minute):
			t.Error("the daemon did not end after its shutdown")
		}
	})

	// The daemon says the tier in use, not the requested auto.
	d := c.do("GET", "/v1/daemon", 200)
	want, _, _ := proctree.Resolve(proctree.Options{})
	if d.field("mechanism") == "auto" || d.field("containment") != "auto" {
		t.Errorf("daemon: mechanism %v, containment %v; want the tier in use (%s here) and auto", d.field("mechanism"), d.field("containment"), want)
	}

	c.do("GET", "/v1/services", 200)
	c.do("GET", "/v1/services?members=1", 200)
	c.do("GET", "/v1/services/web", 200)
	c.do("GET", "/v1/services/nope", 404)
	c.do("GET", "/v1/services/nope/logs", 404)

	s := c.do("POST", "/v1/services/web/ensure?timeout=50s", 200)
	if s.field("state") != "ready" || s.field("mechanism") != d.field("mechanism") {
		t.Errorf("ensure: state %v, mechanism %v; want ready with the daemon's %v", s.field("state"), s.field("mechanism"), d.field("mechanism"))
	}
	c.do("POST", "/v1/services/web/start", 200)
	c.do("POST", "/v1/services/web/start?profile=other", 409)
	c.do("POST", "/v1/services/web/start?profile=nosuch", 400)
	c.do("POST", "/v1/services/web/ensure?timeout=soon", 400)
	c.do("POST", "/v1/services/nope/stop", 404)
	c.do("POST", "/v1/services/slow/ensure?timeout=200ms", 504)
	c.do("POST", "/v1/services/broken/start?wait=1", 502)
	c.do("GET", "/v1/services/broken", 200) // failed, with last_exit and code
	c.do("GET", "/v1/services/web", 200)

	// Streams: a tail, a resume, and follows idle until their heartbeat.
	lines := c.do("GET", "/v1/services/web/logs?n=0", 200).lines
	if len(lines) == 0 {
		t.Fatal("web printed nothing")
	}
	first := lines[0].(map[string]any)["seq"].(json.Number)
	resumed := c.do("GET", "/v1/services/web/logs?after="+first.String(), 200)
	if len(resumed.lines) != len(lines)-1 || resumed.header.Get("Corral-First-Seq") != "1" {
		t.Errorf("logs after %s: %d lines, first kept %s; want %d and 1", first, len(resumed.lines), resumed.header.Get("Corral-First-Seq"), len(lines)-1)
	}
	last, epoch := resumed.header.Get("Corral-Last-Seq"), resumed.header.Get("Corral-Epoch")
	if same := c.do("GET", "/v1/services/web/logs?after="+last+"&epoch="+epoch, 200); len(same.lines) != 0 {
		t.Errorf("logs after the last line, same epoch: %d lines, want none", len(same.lines))
	}
	// A number of another numbering (an earlier daemon's) skips nothing.
	if other := c.do("GET", "/v1/services/web/logs?after="+last+"&epoch=earlier", 200); len(other.lines) != len(lines) {
		t.Errorf("logs after %s of another epoch: %d lines, want all %d kept", last, len(other.lines), len(lines))
	}
	c.do("GET", "/v1/services/web/logs?follow=1&heartbeat=20ms&after="+last, 200)
	c.do("GET", "/v1/services/web/logs?n=x", 400)
	ev := c.do("GET", "/v1/events?n=0", 200)
	c.do("GET", "/v1/events?n=5&after=2", 200)
	c.do("GET", "/v1/events?follow=1&heartbeat=20ms&after="+ev.header.Get("Corral-Last-Seq"), 200)
	c.do("GET", "/v1/events?after=x", 400)
	c.do("GET", "/v1/events?follow=1&heartbeat=1h", 400)

	c.do("POST", "/v1/services/web/restart?wait=1&timeout=50s", 200)
	stopped := c.do("POST", "/v1/services/web/stop", 200)
	if stopped.field("last_stop", "survivors") == nil {
		t.Errorf("stop: no last_stop report: %v", stopped.body)
	}

	// Launch options and services defined through the API.
	def := fmt.Sprintf(`{"command": [%q, "sleep"], "env": {"CORRAL_TESTPROC": "sleep", "GORACE": "atexit_sleep_ms=0"}, "autostart": false, "stop": {"grace": "5s"}}`, exe)
	if dn := c.send("PUT", "/v1/services/api", def, 201); dn.field("state") != "stopped" {
		t.Errorf("put: state %v, want stopped (autostart false)", dn.field("state"))
	}
	c.send("PUT", "/v1/services/api", def, 200)
	c.send("PUT", "/v1/services/api", `{"command": ["x"], "restart": {"backoff": "soon"}}`, 400)
	c.send("PUT", "/v1/services/web", def, 409)
	started := c.send("POST", "/v1/services/api/start", `{"args": ["--x", "a b"], "env": {"A": "1"}}`, 200)
	if fmt.Sprint(started.field("args")) != "[--x a b]" || fmt.Sprint(started.field("env_keys")) != "[A]" {
		t.Errorf("start with launch options: args %v env_keys %v", started.field("args"), started.field("env_keys"))
	}
	c.send("POST", "/v1/services/api/ensure?timeout=50s", `{"args": ["--y"]}`, 409)
	c.send("POST", "/v1/services/api/ensure?timeout=50s", `{"argz": []}`, 400)
	c.send("POST", "/v1/services/api/restart?timeout=50s", `{"args": []}`, 200)
	c.send("POST", "/v1/services/api/ensure?timeout=50s&restart_if_different=1", `{"env": {}}`, 200)
	if gone := c.do("DELETE", "/v1/services/api", 200); gone.field("state") != "stopped" || gone.field("last_stop") == nil {
		t.Errorf("delete: %v", gone.body)
	}
	c.do("DELETE", "/v1/services/api", 404)
	c.do("DELETE", "/v1/services/web", 409)

	c.do("POST", "/v1/reload", 200)
	if err := os.WriteFile(cfgPath, []byte(cfg+"\n[services.bad]\ncomand = [\"x\"]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c.do("POST", "/v1/reload", 400)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}

	c.do("POST", "/v1/bundle", 200)
	c.do("POST", "/v1/bundle?service=web", 200)
	c.do("POST", "/v1/bundle?service=nope", 404)

	// A leftover of an "earlier run": a tree this daemon does not run,
	// journaled as a spawn of ghost.
	leftover(t, state)
	found := c.do("POST", "/v1/reap?dry_run=1", 200)
	if n := len(found.body.([]any)); n != 1 {
		t.Errorf("reap dry run: %d reports, want 1 (the leftover)", n)
	}
	c.do("POST", "/v1/reap", 200)
	c.do("POST", "/v1/reap", 200) // nothing left: []

	// The metrics (text) and the dashboard: an address it refuses, then
	// one it takes, and the same dashboard again.
	if m := c.do("GET", "/metrics", 200); !strings.Contains(m.text, `corral_service_state{service="web",state="ready"}`) {
		t.Errorf("GET /metrics has no state of web:\n%.2000s", m.text)
	}
	c.do("POST", "/v1/dashboard?addr=0.0.0.0:0", 400)
	dash1 := c.do("POST", "/v1/dashboard?addr=127.0.0.1:0", 200)
	again := c.do("POST", "/v1/dashboard", 200)
	if dash1.body.(map[string]any)["url"] != again.body.(map[string]any)["url"] {
		t.Errorf("a second POST /v1/dashboard started another: %v, then %v", dash1.body, again.body)
	}
	// The daemon's dashboard serves its page with the token, and nothing
	// without it.
	dashURL, _ := dash1.body.(map[string]any)["url"].(string)
	for _, tc := range []struct {
		url  string
		want int
	}{{dashURL, 200}, {strings.SplitN(dashURL, "?", 2)[0] + "api/v1/services", 401}} {
		resp, err := http.Get(tc.url)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("GET %s: %d, want %d", strings.SplitN(tc.url, "?", 2)[0], resp.StatusCode, tc.want)
		}
	}
	if info := c.do("GET", "/v1/daemon", 200); info.body.(map[string]any)["dashboard"] == nil {
		t.Errorf("/v1/daemon does not say where the dashboard listens: %v", info.body)
	}

	// What no operation takes.
	c.do("GET", "/v1/nope", 404)
	c.do("POST", "/v1/services/web/frobnicate", 404)
	c.do("GET", "/v1//daemon", 404)
	c.do("DELETE", "/v1/daemon", 405)
	c.do("GET", "/v1/services/web/start", 405)

	// Events of the run so far, now with stops, reaps and bundles.
	c.do("GET", "/v1/events?n=0", 200)

	c.do("POST", "/v1/shutdown", 200)
	shutDown = true

	for key := range doc.operations() {
		if !c.ok[key] {
			t.Errorf("%s was never answered with a 2xx: give it a request above", key)
		}
	}
	t.Logf("answers checked:\n  %s", strings.Join(c.seen, "\n  "))
}

// leftover starts a tree outside the daemon and journals it as a spawn of
// service ghost, as an earlier daemon that crashed would have left it; a
// cleanup makes sure it is gone.
func leftover(t *testing.T, state string) {
	t.Helper()
	var g proctree.Gated
	tr, err := proctree.Start(testproc.Command("sleep"), proctree.Options{Service: "ghost",
		Gate: func(gated proctree.Gated) error { g = gated; return nil }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		tr.Stop(ctx, syscall.SIGKILL, 0)
	})
	f, err := journal.OpenFile(filepath.Join(state, journal.FileName))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := f.Append(journal.Event{Seq: 1, Time: time.Now(), Kind: journal.Spawn, Service: "ghost", Instance: g.Instance,
		PID: g.PID, Start: g.StartTicks, Boot: g.Boot, Cgroup: g.Container, Cmdline: []string{"sleep"}, Message: "started by an earlier run"}, true); err != nil {
		t.Fatal(err)
	}
}
