package importer

import (
	"errors"
	"strings"
)

// splitWords splits a command line into words as Python's shlex.split does
// (POSIX rules, which is how supervisord splits command= and a shell would
// split PM2's args): whitespace separates words; single quotes are literal;
// in double quotes a backslash escapes only " and \; outside quotes it
// escapes any character.
func splitWords(s string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inWord := false
	rs := []rune(s)
	for i := 0; i < len(rs); i++ {
		c := rs[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case c == '\\':
			inWord = true
			if i+1 >= len(rs) {
				return nil, errors.New("no escaped character after the last backslash")
			}
			i++
			cur.WriteRune(rs[i])
		case c == '\'':
			inWord = true
			j := i + 1
			for j < len(rs) && rs[j] != '\'' {
				j++
			}
			if j >= len(rs) {
				return nil, errors.New("no closing quotation (')")
			}
			cur.WriteString(string(rs[i+1 : j]))
			i = j
		case c == '"':
			inWord = true
			j := i + 1
			for ; j < len(rs) && rs[j] != '"'; j++ {
				if rs[j] == '\\' && j+1 < len(rs) && (rs[j+1] == '"' || rs[j+1] == '\\') {
					j++
				}
				cur.WriteRune(rs[j])
			}
			if j >= len(rs) {
				return nil, errors.New(`no closing quotation (")`)
			}
			i = j
		default:
			inWord = true
			cur.WriteRune(c)
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

// envWordChars are the characters Python's shlex (posix mode) puts in a
// word, plus the ones supervisord adds for environment=.
const envWordChars = "abcdfeghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_" +
	"ßàáâãäåæçèéêëìíîïðñòóôõöøùúûüýþÿÀÁÂÃÄÅÆÇÈÉÊËÌÍÎÏÐÑÒÓÔÕÖØÙÚÛÜÝÞ" +
	"/.+-():"

// envTokens splits supervisord's environment= value into tokens the way
// supervisord's dict_of_key_value_pairs does (shlex.shlex, posix mode, with
// its added word characters): runs of word characters and quoted parts are
// one token, each other character is a token by itself, # starts a comment
// to the end of the line. So KEY=a@b is five tokens, and a value with such
// characters needs quotes, as it does for supervisord.
func envTokens(s string) ([]string, error) {
	var toks []string
	var cur strings.Builder
	inTok := false
	emit := func() {
		if inTok {
			toks = append(toks, cur.String())
			cur.Reset()
			inTok = false
		}
	}
	rs := []rune(s)
	for i := 0; i < len(rs); i++ {
		c := rs[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			emit()
		case c == '#':
			emit()
			for i+1 < len(rs) && rs[i+1] != '\n' {
				i++
			}
		case c == '\\':
			if i+1 >= len(rs) {
				return nil, errors.New("no escaped character after the last backslash")
			}
			inTok = true
			i++
			cur.WriteRune(rs[i])
		case c == '\'' || c == '"':
			inTok = true
			j := i + 1
			for ; j < len(rs) && rs[j] != c; j++ {
				if c == '"' && rs[j] == '\\' && j+1 < len(rs) && (rs[j+1] == '"' || rs[j+1] == '\\') {
					j++
				}
				cur.WriteRune(rs[j])
			}
			if j >= len(rs) {
				return nil, errors.New("no closing quotation (" + string(c) + ")")
			}
			i = j
		case strings.ContainsRune(envWordChars, c):
			inTok = true
			cur.WriteRune(c)
		default:
			emit()
			toks = append(toks, string(c))
		}
	}
	emit()
	return toks, nil
}

// envPairs parses KEY=val,KEY2="v,2" as supervisord does: a key, "=", a
// value, and one separator token (normally ","), repeated.
func envPairs(s string) ([][2]string, error) {
	toks, err := envTokens(s)
	if err != nil {
		return nil, err
	}
	var kv [][2]string
	for i := 0; i < len(toks); i += 4 {
		if i+2 >= len(toks) || toks[i+1] != "=" {
			return nil, errors.New("expected KEY=value pairs separated by commas; quote a value with other characters than letters, digits and _/.+-(): (e.g. KEY=\"a b@c\")")
		}
		kv = append(kv, [2]string{toks[i], toks[i+2]})
	}
	return kv, nil
}
