package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
)

// env_file: files of KEY=VALUE lines read at each start of a service, in
// the dotenv syntax that Docker Compose, foreman and the dotenv libraries
// share (and systemd's EnvironmentFile= mostly):
//
//	# a comment line; blank lines are skipped
//	KEY=value                 unquoted: to the end of the line, trimmed; " #" starts a comment
//	export KEY=value          "export " is allowed (a file that sh can source)
//	KEY = value               spaces around = are allowed
//	KEY='literal $x \n'       single quotes: exactly what is inside, may span lines
//	KEY="line\nnext \"q\""    double quotes: \n \r \t \\ \" \$ are escapes, may span lines
//	KEY=                      an empty value
//
// Nothing is expanded (no $VAR, no command substitution): values are taken
// as written. A later line wins over an earlier one, a later file over an
// earlier one, and the service's env over every file.

// EnvFile is one env_file of a service.
type EnvFile struct {
	Path     string // absolute
	Optional bool   // a missing file is skipped, not an error
}

// maxEnvFile bounds one env file: it holds variables, not data.
const maxEnvFile = 1 << 20

// ReadEnv reads a service's env files, in order, and returns their
// variables as KEY=VALUE in the order they apply (a later one wins). An
// error names the file, and for a line it cannot read, the line.
func ReadEnv(files []EnvFile) ([]string, error) {
	var out []string
	for _, ef := range files {
		vars, err := readEnvFile(ef)
		if err != nil {
			return nil, err
		}
		out = append(out, vars...)
	}
	return out, nil
}

// errEnvMissing marks an env file that does not exist.
var errEnvMissing = errors.New("does not exist")

func readEnvFile(ef EnvFile) ([]string, error) {
	if _, err := os.Stat(ef.Path); errors.Is(err, fs.ErrNotExist) {
		if ef.Optional {
			return nil, nil
		}
		return nil, fmt.Errorf("config: env_file %s %w; create it, or mark it optional ({ path = %q, optional = true })", ef.Path, errEnvMissing, ef.Path)
	}
	text, err := readRegular(ef.Path, maxEnvFile)
	if err != nil {
		return nil, fmt.Errorf("config: env_file %s %w", ef.Path, err)
	}
	return parseDotenv(ef.Path, text)
}

// parseDotenv reads text, the content of the env file at path. Its errors
// are *Error with the file's line and column.
func parseDotenv(path, text string) ([]string, error) {
	text = strings.TrimPrefix(text, "\ufeff")
	text = strings.ReplaceAll(text, "\r\n", "\n")
	fail := func(off int, format string, args ...any) error {
		line, col := lineCol(text, off)
		return &Error{File: path, Line: line, Col: col, Msg: fmt.Sprintf(format, args...)}
	}
	var out []string
	for off := 0; off < len(text); {
		end := strings.IndexByte(text[off:], '\n')
		if end < 0 {
			end = len(text)
		} else {
			end += off
		}
		line := text[off:end]
		i := off + len(line) - len(strings.TrimLeft(line, " \t"))
		if rest := text[i:end]; rest == "" || rest[0] == '#' {
			off = end + 1
			continue
		}
		if strings.HasPrefix(text[i:end], "export ") || strings.HasPrefix(text[i:end], "export\t") {
			i += len("export")
			i += len(text[i:end]) - len(strings.TrimLeft(text[i:end], " \t"))
		}
		nameAt := i
		for i < end && (text[i] == '_' || text[i] >= 'A' && text[i] <= 'Z' || text[i] >= 'a' && text[i] <= 'z' || text[i] >= '0' && text[i] <= '9') {
			i++
		}
		name := text[nameAt:i]
		i += len(text[i:end]) - len(strings.TrimLeft(text[i:end], " \t"))
		switch {
		case !strings.Contains(text[nameAt:end], "="):
			return nil, fail(nameAt, "expected NAME=value, found %q", strings.TrimSpace(text[nameAt:end]))
		case name == "" || i >= end || text[i] != '=' || name[0] >= '0' && name[0] <= '9':
			bad, _, _ := strings.Cut(text[nameAt:end], "=")
			return nil, fail(nameAt, "%q is not a variable name: use letters, digits and _, not starting with a digit", strings.TrimSpace(bad))
		case name == "CORRAL_SERVICE" || name == "CORRAL_INSTANCE" || name == "CORRAL_STATE":
			return nil, fail(nameAt, "%s is set by corral for every process of the service; remove it from this file", name)
		}
		i++ // the =
		i += len(text[i:end]) - len(strings.TrimLeft(text[i:end], " \t"))
		var value string
		switch {
		case i < end && (text[i] == '\'' || text[i] == '"'):
			q, open := text[i], i
			var b strings.Builder
			j := i + 1
			for ; j < len(text) && text[j] != q; j++ {
				if q == '"' && text[j] == '\\' && j+1 < len(text) {
					j++
					switch c := text[j]; c {
					case 'n':
						b.WriteByte('\n')
					case 'r':
						b.WriteByte('\r')
					case 't':
						b.WriteByte('\t')
					case '\\', '"', '$':
						b.WriteByte(c)
					case '\n': // a line continued
					default:
						b.WriteByte('\\')
						b.WriteByte(c)
					}
					continue
				}
				b.WriteByte(text[j])
			}
			if j >= len(text) {
				return nil, fail(open, "the %c quote of %s is never closed", q, name)
			}
			value = b.String()
			// After the closing quote: nothing, or a comment.
			end = strings.IndexByte(text[j:], '\n')
			if end < 0 {
				end = len(text)
			} else {
				end += j
			}
			if after := strings.TrimSpace(text[j+1 : end]); after != "" && after[0] != '#' {
				return nil, fail(j+1, "unexpected %q after the closing quote of %s (quote the whole value)", after, name)
			}
		default:
			value = text[i:end]
			for k := 0; k < len(value); k++ {
				if value[k] == '#' && (k == 0 || value[k-1] == ' ' || value[k-1] == '\t') {
					value = value[:k]
					break
				}
			}
			value = strings.TrimRight(value, " \t\r")
		}
		if strings.IndexByte(value, 0) >= 0 {
			return nil, fail(nameAt, "the value of %s has a NUL byte, which no program can receive", name)
		}
		out = append(out, name+"="+value)
		off = end + 1
	}
	return out, nil
}
