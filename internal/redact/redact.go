package redact

import (
	"math"
	"regexp"
	"sort"
	"strings"
)

// Mark replaces a redacted value. It contains no character that any rule
// takes for part of a value worth redacting, so redacting twice gives the
// same text as redacting once.
const Mark = "[redacted]"

// Words that make a name secret wherever they end a word of it (APIKEY,
// HFTOKEN, OAUTH), plurals included; TOKENS is left out on purpose: in ML
// tools it counts tokens (--max-tokens 512, --max-num-batched-tokens).
var secretSuffixes = []string{
	"TOKEN", "KEY", "KEYS", "SECRET", "SECRETS", "PASSWORD", "PASSWORDS",
	"PASSWD", "PASSPHRASE", "AUTH", "CREDENTIAL", "CREDENTIALS", "COOKIE", "COOKIES",
}

// Words that make a name secret only as a whole word: as a suffix they
// would catch BYPASS, COMPASS, OBSESSION.
var secretWords = map[string]bool{
	"PASS": true, "PW": true, "PWD": true, "SESSION": true, "SESSIONS": true,
	"PRIVATE": true, "AUTHORIZATION": true, "BEARER": true, "CRED": true, "CREDS": true,
}

// A last word that says the value describes the secret without being it:
// --gradio-auth-path is a file name, TOKEN_COUNT a number, SSH_AUTH_SOCK a
// socket. Such values still go through String (a token or a URL password
// in them is still caught).
var descriptorWords = map[string]bool{
	"PATH": true, "PATHS": true, "FILE": true, "FILES": true, "FILENAME": true,
	"DIR": true, "DIRECTORY": true, "SOCK": true, "SOCKET": true, "NAME": true,
	"URL": true, "URI": true, "HOST": true, "PORT": true, "TIMEOUT": true, "TTL": true,
	"COUNT": true, "LEN": true, "LENGTH": true, "SIZE": true, "TYPE": true, "MODE": true,
	"ENABLED": true, "DISABLED": true,
}

// A first word that makes a flag a switch rather than a carrier of a secret
// (--no-auth, --disable-auth-check, --skip-token-check).
var switchWords = map[string]bool{"NO": true, "DISABLE": true, "SKIP": true}

// SecretName reports whether a name (an environment variable, a JSON or TOML
// key, a flag without its dashes) says that its value is a secret.
func SecretName(name string) bool {
	u := strings.ToUpper(name)
	if u == "PWD" || u == "OLDPWD" { // the working directory, not a password
		return false
	}
	ws := words(name)
	if len(ws) == 0 || descriptorWords[ws[len(ws)-1]] || switchWords[ws[0]] {
		return false
	}
	for _, w := range ws {
		if secretWords[w] {
			return true
		}
		for _, s := range secretSuffixes {
			if strings.HasSuffix(w, s) {
				return true
			}
		}
	}
	return false
}

// secretFlag is SecretName for flags, plus A1111's --ngrok, whose value is
// an ngrok auth token although its name does not say so.
func secretFlag(name string) bool {
	return SecretName(name) || strings.EqualFold(name, "ngrok")
}

// words splits a name at every non-alphanumeric character and at case
// changes (hfToken, HFToken: HF TOKEN), upper-cased.
func words(name string) []string {
	var out []string
	flush := func(w string) {
		if w != "" {
			out = append(out, strings.ToUpper(w))
		}
	}
	start := 0
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !isAlnum(c) {
			flush(name[start:i])
			start = i + 1
			continue
		}
		if i > start && isUpper(c) {
			p := name[i-1]
			if isLower(p) || isDigit(p) || (isUpper(p) && i+1 < len(name) && isLower(name[i+1])) {
				flush(name[start:i])
				start = i
			}
		}
	}
	flush(name[start:])
	return out
}

func isUpper(c byte) bool { return c >= 'A' && c <= 'Z' }
func isLower(c byte) bool { return c >= 'a' && c <= 'z' }
func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func isAlnum(c byte) bool { return isUpper(c) || isLower(c) || isDigit(c) }

var (
	// Well-known token shapes; group 1 is the character before, which must
	// not be a letter or digit (RE2 has no look-behind).
	prefixRe = regexp.MustCompile(`(^|[^A-Za-z0-9])(` +
		`sk-[A-Za-z0-9_-]{16,}|[sr]k_(?:live|test)_[A-Za-z0-9]{16,}|hf_[A-Za-z0-9]{16,}|` +
		`gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}|glpat-[A-Za-z0-9_-]{16,}|` +
		`xox[abposr]-[A-Za-z0-9-]{10,}|xapp-[A-Za-z0-9-]{10,}|(?:AKIA|ASIA)[A-Z0-9]{16}|` +
		`AIza[A-Za-z0-9_-]{30,}|npm_[A-Za-z0-9]{30,}|pypi-[A-Za-z0-9_-]{30,}|r8_[A-Za-z0-9]{20,}|` +
		`eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*)`)
	pemRe = regexp.MustCompile(`(?s)(-----BEGIN [A-Z0-9 ]*PRIVATE KEY-----)(?:.*?(-----END [A-Z0-9 ]*PRIVATE KEY-----)|.*)`)
	// A header whose whole value is a credential: the scheme is kept, the
	// rest of the line (up to a closing quote) goes.
	headerRe = regexp.MustCompile(`(?i)\b((?:proxy-)?authorization|set-cookie|cookie|x-api-key)(\\?["']?[ \t]*[:=][ \t]*\\?["']?)` +
		`((?:bearer|basic|token|digest|negotiate|ntlm|apikey|bot)[ \t]+)?`)
	bearerRe  = regexp.MustCompile(`(?i)\b(bearer[ \t]+)([A-Za-z0-9._~+/=-]+)`)
	urlPassRe = regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.-]*://)([^\s/?#@:"'<>]*):([^\s/?#"'<>]*)@`)
	urlUserRe = regexp.MustCompile(`([A-Za-z][A-Za-z0-9+.-]*://)([^\s/?#@:"'<>\[\]]+)@`)
	pairRe    = regexp.MustCompile(`([A-Za-z_][A-Za-z0-9_.-]*)(\\?["']?)([ \t]*[:=][ \t]*)`)
	flagRe    = regexp.MustCompile(`--?[A-Za-z][A-Za-z0-9_.-]*`)
	argFlagRe = regexp.MustCompile(`(?s)^--?([A-Za-z][A-Za-z0-9_.-]*)(?:=(.*))?$`)
	envNameRe = regexp.MustCompile(`^[A-Z][A-Z0-9_]*$`)
	shapeWord = regexp.MustCompile(`[A-Za-z0-9_\-+/=.~]+`)
	alnumRun  = regexp.MustCompile(`[A-Za-z0-9]+`)
	// The names headerRe knows; pairs leaves them to it.
	headerNames = map[string]bool{"authorization": true, "proxy-authorization": true, "set-cookie": true, "cookie": true, "x-api-key": true}
)

// String redacts free text: a log line, a command string given to a shell,
// an event message. See the package documentation for the rules.
//
// Every rule reads the original text and reports the spans it would
// replace; the union of them is replaced at the end. Replacing rule by rule
// instead lets one rule hide what another needs: in "key= --hf-token X",
// redacting key's value first removes the flag that says X is a token.
func String(s string) string {
	if s == "" {
		return s
	}
	var sp spans
	for _, m := range pemRe.FindAllStringSubmatchIndex(s, -1) {
		a, b := m[3], m[1]
		if m[4] >= 0 {
			b = m[4]
		}
		// Keep the line breaks around the body, so the block still reads.
		if a < b && s[a] == '\n' {
			a++
		}
		if a < b && s[b-1] == '\n' {
			b--
		}
		sp.add(a, b)
	}
	sp.group(s, prefixRe, 2)
	// By hand, not FindAll: the value runs to the end of the line, and a
	// header named again inside it must not scan that line once more.
	for pos := 0; pos < len(s); {
		m := headerRe.FindStringIndex(s[pos:])
		if m == nil {
			break
		}
		a, b := pos+m[1], pos+m[1]
		for ; b < len(s) && s[b] != '\n' && s[b] != '\r'; b++ {
			if (s[b] == '"' || s[b] == '\'') && closes(s, b+1) ||
				s[b] == '\\' && b+1 < len(s) && (s[b+1] == '"' || s[b+1] == '\'') && closes(s, b+2) {
				break
			}
		}
		for b > a && isSpace(s[b-1]) {
			b--
		}
		sp.add(a, b)
		pos = max(b, a+1)
	}
	sp.group(s, bearerRe, 2)
	sp.group(s, urlPassRe, 3)
	for _, m := range urlUserRe.FindAllStringSubmatchIndex(s, -1) {
		if hasTokenRun(s[m[4]:m[5]]) {
			sp.add(m[4], m[5])
		}
	}
	flags(s, &sp)
	pairs(s, &sp)
	return sp.apply(s)
}

// spans collects the byte ranges of s to replace with Mark.
type spans [][2]int

func (sp *spans) add(a, b int) {
	if a < b {
		*sp = append(*sp, [2]int{a, b})
	}
}

// group adds submatch g of every match of re.
func (sp *spans) group(s string, re *regexp.Regexp, g int) {
	for _, m := range re.FindAllStringSubmatchIndex(s, -1) {
		if m[2*g] >= 0 {
			sp.add(m[2*g], m[2*g+1])
		}
	}
}

// apply replaces the union of the spans, overlapping or touching ones
// merged into one Mark.
func (sp spans) apply(s string) string {
	if len(sp) == 0 {
		return s
	}
	sort.Slice(sp, func(i, j int) bool { return sp[i][0] < sp[j][0] })
	var b strings.Builder
	last := 0
	for i := 0; i < len(sp); {
		a, e := sp[i][0], sp[i][1]
		for i++; i < len(sp) && sp[i][0] <= e; i++ {
			e = max(e, sp[i][1])
		}
		b.WriteString(s[last:a])
		b.WriteString(Mark)
		last = e
	}
	b.WriteString(s[last:])
	return b.String()
}

// pairs finds the value of key=value and key: value (quoted or not) when
// the key is secret, and the token-looking words of the value when the key
// is an environment-style NAME assigned with '=' (CIVITAI=3f9...).
func pairs(s string, sp *spans) {
	for pos := 0; pos < len(s); {
		loc := pairRe.FindStringSubmatchIndex(s[pos:])
		if loc == nil {
			break
		}
		base := pos
		key, sep := s[base+loc[2]:base+loc[3]], s[base+loc[6]:base+loc[7]]
		vStart := base + loc[1]
		// The next key may start inside this value (a URL's query), so the
		// scan goes on after the key, not after the value.
		pos = base + loc[3]
		secret := SecretName(key)
		envStyle := !secret && envNameRe.MatchString(key) && strings.Contains(sep, "=")
		if !secret && !envStyle {
			continue
		}
		vs, ve, unterminated := valueSpan(s, vStart, "&")
		if unterminated {
			// Nothing after an unterminated quote on this line is looked at
			// again: a line of A="B="C="... would cost its length squared.
			pos = ve
		}
		val := s[vs:ve]
		switch {
		case vs == ve || val == Mark:
		case headerNames[strings.ToLower(key)]:
			// Authorization: Bearer x: headerRe has the credential.
		case secret:
			sp.add(vs, ve)
			pos = ve // all of it goes, pairs inside it included
		default:
			for _, w := range shapeWord.FindAllStringIndex(val, -1) {
				if hasTokenRun(val[w[0]:w[1]]) {
					sp.add(vs+w[0], vs+w[1])
				}
			}
		}
	}
}

// flags finds the value of a secret flag in text: --flag=value, --flag
// value, and the quoted list forms "--flag", "value" and '--flag' 'value'.
func flags(s string, sp *spans) {
	for pos := 0; pos < len(s); {
		loc := flagRe.FindStringIndex(s[pos:])
		if loc == nil {
			break
		}
		st, en := pos+loc[0], pos+loc[1]
		pos = en
		if st > 0 && !strings.ContainsRune(" \t\r\n\"'[(,{=", rune(s[st-1])) {
			continue // inside a word: re-auth, a/b-token
		}
		if !secretFlag(strings.TrimLeft(s[st:en], "-")) {
			continue
		}
		open := ""
		if st > 0 && (s[st-1] == '"' || s[st-1] == '\'') {
			open = s[st-1 : st]
			if st > 1 && s[st-2] == '\\' {
				open = s[st-2 : st]
			}
		}
		v := en
		eq := v < len(s) && s[v] == '='
		if eq {
			v++
		} else {
			j := v
			if open != "" && strings.HasPrefix(s[v:], open) {
				j += len(open)
				k := skipSpace(s, j, true)
				if k < len(s) && s[k] == ',' {
					k = skipSpace(s, k+1, true)
				}
				if k == j {
					continue // "--token"x: no value follows
				}
				j = k
			} else {
				j = skipSpace(s, v, false)
				if j == v {
					continue // a switch at the end of a line or word
				}
			}
			v = j
		}
		inner := v
		if inner+1 < len(s) && s[inner] == '\\' && (s[inner+1] == '"' || s[inner+1] == '\'') {
			inner++
		}
		if inner < len(s) && (s[inner] == '"' || s[inner] == '\'') {
			inner++
		}
		if !eq && strings.HasPrefix(s[inner:], "--") {
			continue // the next flag, not a value ("--flag", "--other" too)
		}
		vs, ve, _ := valueSpan(s, v, "")
		if vs == ve {
			continue
		}
		sp.add(vs, ve)
		pos = ve
	}
}

func skipSpace(s string, i int, newlines bool) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t' || newlines && (s[i] == '\n' || s[i] == '\r')) {
		i++
	}
	return i
}

// valueSpan returns the bounds of the value starting at i: the inside of a
// quoted value ("...", '...', \"...\"; an unterminated quote runs to the
// end of the line), or an unquoted run up to white space or a stop byte.
func valueSpan(s string, i int, stops string) (start, end int, unterminated bool) {
	if i >= len(s) {
		return i, i, false
	}
	q := ""
	switch {
	case s[i] == '"' || s[i] == '\'':
		q = s[i : i+1]
	case s[i] == '\\' && i+1 < len(s) && (s[i+1] == '"' || s[i+1] == '\''):
		q = s[i : i+2]
	}
	if q != "" {
		start = i + len(q)
		end = start
		for end < len(s) && s[end] != '\n' && s[end] != '\r' {
			if strings.HasPrefix(s[end:], q) {
				return start, end, false
			}
			if q == `"` && s[end] == '\\' && end+1 < len(s) && s[end+1] != '\n' {
				end++
			}
			end++
		}
		// Unterminated: to the end of the line, less trailing blanks, which
		// a second pass would otherwise take for part of "[redacted] ".
		for end > start && isSpace(s[end-1]) {
			end--
		}
		return start, end, true
	}
	for end = i; end < len(s) && !isSpace(s[end]) && !strings.ContainsRune(stops, rune(s[end])); end++ {
		switch {
		case (s[end] == '"' || s[end] == '\'') && closes(s, end+1):
			return i, end, false
		case s[end] == '\\' && end+1 < len(s) && (s[end+1] == '"' || s[end+1] == '\'') && closes(s, end+2):
			return i, end, false
		}
	}
	return i, end, false
}

// closes reports whether a quote before i ends a quoted string around the
// value (shell = "bash webui.sh --hf-token X") rather than opening one
// inside it (--password=ab"cd"): it is followed by a blank, punctuation or
// the end. Only what follows decides, so the answer does not change when
// something before has been redacted.
func closes(s string, i int) bool {
	return i >= len(s) || isSpace(s[i]) || strings.ContainsRune(",;:)]}\"'\\", rune(s[i]))
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
}

// shapes redacts the words of an environment value that look like a token
// whatever their name says; a word here may hold slashes, so a base64 token
// goes whole.
func shapes(v string) string {
	return shapeWord.ReplaceAllStringFunc(v, func(w string) string {
		if hasTokenRun(w) {
			return Mark
		}
		return w
	})
}

func hasTokenRun(w string) bool {
	for _, r := range alnumRun.FindAllString(w, -1) {
		if tokenish(r) {
			return true
		}
	}
	return false
}

// tokenish: a run of letters and digits that looks generated. Random
// tokens mix digits into letters (hex, base62); without digits, a long run
// must change case often (random base52), which camel-case names do not.
func tokenish(r string) bool {
	if len(r) < 16 {
		return false
	}
	var upper, lower, digit, switches int
	for i := 0; i < len(r); i++ {
		c := r[i]
		switch {
		case isUpper(c):
			upper++
		case isLower(c):
			lower++
		default:
			digit++
		}
		if i > 0 && (isUpper(c) != isUpper(r[i-1]) || isDigit(c) != isDigit(r[i-1])) {
			switches++
		}
	}
	if upper+lower == 0 {
		return false // a number
	}
	if digit == 0 && (len(r) < 20 || upper == 0 || lower == 0 || switches*3 < len(r)) {
		return false
	}
	// 2 bits per character: above runs of a few repeated characters
	// (000000000000000001, aaaa1111aaaa1111), below practically every
	// random key (a 32-digit hex key has about 3.6, under 2.9 about once
	// in 10^5; a fuzzed one found 2.99 when this was 3).
	return entropy(r) >= 2.0
}

// entropy is the Shannon entropy of r in bits per byte.
func entropy(r string) float64 {
	var n [256]int
	for i := 0; i < len(r); i++ {
		n[r[i]]++
	}
	h := 0.0
	for _, c := range n {
		if c > 0 {
			p := float64(c) / float64(len(r))
			h -= p * math.Log2(p)
		}
	}
	return h
}

// Argv redacts a command line: the value of a secret flag, in its own
// element (--hf-token X) or after '=' (--api-key=sk-...), and every other
// element as String (a shell -c script, an Authorization header for curl).
// The flag itself is kept so the command still reads.
func Argv(argv []string) []string {
	if argv == nil {
		return nil
	}
	out := make([]string, len(argv))
	for i := 0; i < len(argv); i++ {
		a := argv[i]
		if m := argFlagRe.FindStringSubmatchIndex(a); m != nil && secretFlag(a[m[2]:m[3]]) {
			switch {
			case m[4] >= 0: // --flag=value
				if m[4] < len(a) {
					a = a[:m[4]] + Mark
				}
				out[i] = a
				continue
			case i+1 < len(argv) && !strings.HasPrefix(argv[i+1], "--"):
				out[i] = a
				if argv[i+1] != "" {
					out[i+1] = Mark
				}
				i++
				continue
			}
		}
		out[i] = String(a)
	}
	return out
}

// EnvValue redacts the value of environment variable name: all of it when
// the name is secret, else what String finds in it (COMMANDLINE_ARGS holds
// flags) and the words that look like a token. An empty value stays empty:
// that a token is unset is worth seeing.
func EnvValue(name, value string) string {
	if value == "" {
		return value
	}
	if SecretName(name) {
		return Mark
	}
	return shapes(String(value))
}

// Env redacts "NAME=value" entries (os.Environ, exec.Cmd.Env).
func Env(env []string) []string {
	if env == nil {
		return nil
	}
	out := make([]string, len(env))
	for i, e := range env {
		if k, v, ok := strings.Cut(e, "="); ok {
			out[i] = k + "=" + EnvValue(k, v)
		} else {
			out[i] = String(e)
		}
	}
	return out
}

// EnvMap is Env for a map.
func EnvMap(env map[string]string) map[string]string {
	if env == nil {
		return nil
	}
	out := make(map[string]string, len(env))
	for k, v := range env {
		out[k] = EnvValue(k, v)
	}
	return out
}
