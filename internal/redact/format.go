package redact

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// TOMLHeader is the first line of a redacted TOML copy: re-encoding drops
// the original's comments and layout, and a reader comparing it with the
// real file should know why.
const TOMLHeader = "# redacted copy: secrets replaced with " + Mark + "; comments and layout of the original are not kept\n"

// tomlTextHeader heads a TOML file that did not parse and was redacted as
// text instead.
const tomlTextHeader = "# redacted copy: not valid TOML, redacted as text; secrets replaced with " + Mark + "\n"

// maxDepth bounds the nesting File and JSON walk; encoding/json refuses
// deeper documents anyway.
const maxDepth = 10000

var errDepth = errors.New("redact: document nested too deeply")

// File redacts one file of a bundle by its name: .json as JSON, .jsonl and
// .ndjson line by line, .toml as TOML, anything else as text. A structured
// file that does not parse is redacted as text; File never fails and never
// returns its input unredacted.
func File(name string, body []byte) []byte {
	switch strings.ToLower(path.Ext(name)) {
	case ".json":
		if out, err := JSON(body); err == nil {
			return out
		}
	case ".jsonl", ".ndjson":
		return JSONLines(body)
	case ".toml":
		text := string(body)
		// A copy that was redacted as text stays text: the redaction may have
		// made it parse, and redacting it again must not change it.
		if strings.HasPrefix(text, tomlTextHeader) {
			return []byte(String(text))
		}
		if out, err := TOML(body); err == nil {
			return out
		}
		return []byte(String(tomlTextHeader + text))
	}
	return []byte(String(string(body)))
}

// JSON redacts a JSON document and encodes it again, valid and with its key
// order kept (indented with two spaces if the input had line breaks, else
// compact). Values of secret keys become Mark (booleans and null are kept:
// they hold no secret, and "auth": false is worth seeing); objects under a
// secret key are walked with everything in them redacted; "env" objects go
// through EnvValue; arrays of strings through Argv (cmdline, command,
// argv, exec: a list of flags reads the same wherever it is); other strings
// through String. Keys go through String too: a token used as a map key
// would otherwise survive.
func JSON(doc []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	n, err := readJSON(dec, 0)
	if err != nil {
		return nil, fmt.Errorf("redact: json: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("redact: json: data after the document")
	}
	n = redactNode(n, "", false)
	var buf bytes.Buffer
	writeJSON(&buf, n)
	if !bytes.Contains(doc, []byte{'\n'}) {
		return buf.Bytes(), nil
	}
	var ind bytes.Buffer
	if err := json.Indent(&ind, buf.Bytes(), "", "  "); err != nil {
		return nil, fmt.Errorf("redact: json: %w", err) // cannot happen: writeJSON writes valid JSON
	}
	if bytes.HasSuffix(doc, []byte{'\n'}) {
		ind.WriteByte('\n')
	}
	return ind.Bytes(), nil
}

// JSONLines redacts one JSON document per line (events.jsonl, journal
// excerpts); a line that is not JSON is redacted as text. Line breaks are
// kept, so line numbers still match.
func JSONLines(body []byte) []byte {
	lines := bytes.SplitAfter(body, []byte{'\n'})
	var out bytes.Buffer
	for _, l := range lines {
		content := bytes.TrimRight(l, "\r\n")
		eol := l[len(content):]
		switch {
		case len(bytes.TrimSpace(content)) == 0:
			out.Write(content)
		default:
			if r, err := JSON(content); err == nil {
				out.Write(r)
			} else {
				out.WriteString(String(string(content)))
			}
		}
		out.Write(eol)
	}
	return out.Bytes()
}

// node is a JSON value with the order of its object members kept.
type node struct {
	kind byte // 'o' object, 'a' array, 's' string, 'n' number, 'b' bool, 'z' null
	str  string
	b    bool
	keys []string
	vals []*node
}

func readJSON(dec *json.Decoder, depth int) (*node, error) {
	if depth > maxDepth {
		return nil, errDepth
	}
	t, err := dec.Token()
	if err != nil {
		if err == io.EOF {
			return nil, io.ErrUnexpectedEOF
		}
		return nil, err
	}
	switch v := t.(type) {
	case json.Delim:
		n := &node{kind: 'a'}
		if v == '{' {
			n.kind = 'o'
		}
		for dec.More() {
			if n.kind == 'o' {
				kt, err := dec.Token()
				if err != nil {
					return nil, err
				}
				n.keys = append(n.keys, kt.(string))
			}
			c, err := readJSON(dec, depth+1)
			if err != nil {
				return nil, err
			}
			n.vals = append(n.vals, c)
		}
		if _, err := dec.Token(); err != nil { // the closing delimiter
			return nil, err
		}
		return n, nil
	case string:
		return &node{kind: 's', str: v}, nil
	case json.Number:
		return &node{kind: 'n', str: string(v)}, nil
	case bool:
		return &node{kind: 'b', b: v}, nil
	default:
		return &node{kind: 'z'}, nil
	}
}

func markNode() *node { return &node{kind: 's', str: Mark} }

func redactNode(n *node, key string, secret bool) *node {
	secret = secret || SecretName(key)
	switch n.kind {
	case 's':
		if secret && n.str != "" {
			return markNode()
		}
		n.str = String(n.str)
	case 'n':
		if secret {
			return markNode()
		}
	case 'o':
		env := !secret && strings.EqualFold(key, "env")
		for i, k := range n.keys {
			if env && n.vals[i].kind == 's' {
				n.vals[i].str = EnvValue(k, n.vals[i].str)
			} else {
				n.vals[i] = redactNode(n.vals[i], k, secret)
			}
			n.keys[i] = String(k)
		}
	case 'a':
		if !secret && allStrings(n.vals) {
			in := make([]string, len(n.vals))
			for i, v := range n.vals {
				in[i] = v.str
			}
			out := Argv(in)
			if strings.EqualFold(key, "env") {
				out = Env(in)
			}
			for i := range n.vals {
				n.vals[i].str = out[i]
			}
			break
		}
		for i := range n.vals {
			// Elements inherit the key: "api_keys": ["a", "b"].
			n.vals[i] = redactNode(n.vals[i], key, secret)
		}
	}
	return n
}

func allStrings(vs []*node) bool {
	for _, v := range vs {
		if v.kind != 's' {
			return false
		}
	}
	return len(vs) > 0
}

func writeJSON(buf *bytes.Buffer, n *node) {
	switch n.kind {
	case 'o', 'a':
		open, close := byte('['), byte(']')
		if n.kind == 'o' {
			open, close = '{', '}'
		}
		buf.WriteByte(open)
		for i, v := range n.vals {
			if i > 0 {
				buf.WriteByte(',')
			}
			if n.kind == 'o' {
				writeJSONString(buf, n.keys[i])
				buf.WriteByte(':')
			}
			writeJSON(buf, v)
		}
		buf.WriteByte(close)
	case 's':
		writeJSONString(buf, n.str)
	case 'n':
		buf.WriteString(n.str)
	case 'b':
		if n.b {
			buf.WriteString("true")
		} else {
			buf.WriteString("false")
		}
	default:
		buf.WriteString("null")
	}
}

// writeJSONString quotes s without escaping <, > and & (json.Marshal would
// write \u003c: valid, but harder to read in a bundle).
func writeJSONString(buf *bytes.Buffer, s string) {
	enc := json.NewEncoder(buf)
	enc.SetEscapeHTML(false)
	enc.Encode(s) // a string always encodes
	buf.Truncate(buf.Len() - 1)
}

// TOML redacts a TOML document (a corral.toml) and encodes it again, so
// the result is valid TOML headed by TOMLHeader; comments and layout are
// lost. The rules are JSON's, with two more: tables under services and
// profiles are named by the user (a service called "auth" is not a
// secret), and values keep their TOML type except where redacted.
func TOML(doc []byte) ([]byte, error) {
	var m map[string]any
	if _, err := toml.Decode(string(doc), &m); err != nil {
		// Not err itself: a parse error quotes the line it failed on.
		return nil, errors.New("redact: toml: the document does not parse")
	}
	m = redactTable(m, "", false, 0)
	var buf bytes.Buffer
	buf.WriteString(TOMLHeader)
	enc := toml.NewEncoder(&buf)
	enc.Indent = "" // flat, like the configurations people write
	if err := enc.Encode(m); err != nil {
		return nil, fmt.Errorf("redact: toml: encode: %w", err)
	}
	return buf.Bytes(), nil
}

func redactTable(m map[string]any, key string, secret bool, depth int) map[string]any {
	if m == nil {
		return nil
	}
	named := strings.EqualFold(key, "services") || strings.EqualFold(key, "profiles")
	env := !secret && strings.EqualFold(key, "env")
	out := make(map[string]any, len(m))
	for k, v := range m {
		var r any
		switch {
		case env:
			if s, ok := v.(string); ok {
				r = EnvValue(k, s)
			} else {
				r = redactTOML(v, k, false, depth+1)
			}
		case named:
			// The key is a name; the value is judged as if it had none.
			r = redactTOML(v, "", secret, depth+1)
		default:
			r = redactTOML(v, k, secret, depth+1)
		}
		nk := String(k)
		if _, dup := out[nk]; dup {
			// Two keys that differed only in a secret: keep both values
			// under distinct names rather than lose one.
			for i := 2; ; i++ {
				if _, dup := out[fmt.Sprintf("%s (%d)", nk, i)]; !dup {
					nk = fmt.Sprintf("%s (%d)", nk, i)
					break
				}
			}
		}
		out[nk] = r
	}
	return out
}

func redactTOML(v any, key string, secret bool, depth int) any {
	if depth > maxDepth {
		return Mark
	}
	secret = secret || SecretName(key)
	switch x := v.(type) {
	case map[string]any:
		return redactTable(x, key, secret, depth)
	case []map[string]any:
		out := make([]map[string]any, len(x))
		for i, t := range x {
			out[i] = redactTable(t, key, secret, depth+1)
		}
		return out
	case []any:
		if ss, ok := stringsOf(x); ok && !secret {
			var red []string
			if strings.EqualFold(key, "env") {
				red = Env(ss)
			} else {
				red = Argv(ss)
			}
			out := make([]any, len(red))
			for i, s := range red {
				out[i] = s
			}
			return out
		}
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = redactTOML(e, key, secret, depth+1)
		}
		return out
	case string:
		if secret && x != "" {
			return Mark
		}
		return String(x)
	case int64, float64:
		if secret {
			return Mark
		}
		return x
	case bool, time.Time:
		return x // no secret in a boolean or a date
	default:
		// A type this walk does not know: do not guess that it is harmless.
		return Mark
	}
}

func stringsOf(x []any) ([]string, bool) {
	if len(x) == 0 {
		return nil, false
	}
	out := make([]string, len(x))
	for i, e := range x {
		s, ok := e.(string)
		if !ok {
			return nil, false
		}
		out[i] = s
	}
	return out, true
}
