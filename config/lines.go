package config

import (
	"strconv"
	"strings"
)

// positions maps the path of a key or table to the line where it first appears. A path is
// the chain of keys from the top of the document, with "#N" after the name of an array of
// tables for its N-th table (0-based): {"worker", "#1", "env", "HOME"} is HOME in the env of
// the second [[worker]].
//
// The TOML decoder keeps no positions for values, so scanPositions finds them in the text.
type positions map[string]int

func pathKey(path []string) string { return strings.Join(path, "\x00") }

// line returns the line of path, or of its closest enclosing key or table that has one
// (a key inside an inline table has no line of its own), or 0.
func (ps positions) line(path ...string) int {
	for n := len(path); n > 0; n-- {
		if l, ok := ps[pathKey(path[:n])]; ok {
			return l
		}
	}
	return 0
}

// record notes line for path and each of its prefixes not seen before.
func (ps positions) record(path []string, line int) {
	for n := 1; n <= len(path); n++ {
		k := pathKey(path[:n])
		if _, ok := ps[k]; !ok {
			ps[k] = line
		}
	}
}

// scanPositions finds the table headers and the keys at the start of statements in src,
// which must be valid TOML (it is only scanned after the decoder accepted it; on anything
// else it returns some positions, never panics). It tracks strings, comments and brackets so
// that text inside values (a multi-line array, a string holding "key = x") is not taken for
// a key; keys inside inline tables are not recorded.
func scanPositions(src string) positions {
	ps := make(positions)
	arrays := make(map[string]int) // path key of an array of tables -> tables so far
	var cur []string               // path of the current table
	src = strings.TrimPrefix(src, "\ufeff")
	line, depth := 1, 0 // depth: open brackets and braces inside a value
	stmt := true        // at the start of a statement (after a newline, outside any value)
	for i := 0; i < len(src); {
		c := src[i]
		if stmt && depth == 0 {
			switch c {
			case ' ', '\t', '\r':
				i++
				continue
			case '\n', '#':
				// a blank or comment line: handled below
			case '[':
				array := strings.HasPrefix(src[i:], "[[")
				start := i + 1
				if array {
					start++
				}
				parts, j := scanKey(src, start)
				stmt, i = false, j
				if len(parts) == 0 {
					continue
				}
				path := indexed(arrays, parts[:len(parts)-1])
				path = append(path, parts[len(parts)-1])
				if array {
					k := pathKey(path)
					path = append(path, "#"+strconv.Itoa(arrays[k]))
					arrays[k]++
				} else if n, ok := arrays[pathKey(path)]; ok {
					path = append(path, "#"+strconv.Itoa(n-1)) // invalid TOML; be safe
				}
				cur = path
				ps.record(path, line)
				// The rest of the header (']' or ']]', a comment) is scanned below;
				// depth never goes below 0.
				continue
			default:
				parts, j := scanKey(src, i)
				stmt = false
				if len(parts) > 0 {
					ps.record(append(append([]string(nil), cur...), parts...), line)
					i = j
					continue
				}
			}
		}
		switch c {
		case '\n':
			line++
			if depth == 0 {
				stmt = true
			}
			i++
		case '#':
			for i < len(src) && src[i] != '\n' {
				i++
			}
		case '"', '\'':
			j := skipString(src, i)
			line += strings.Count(src[i:j], "\n")
			i = j
		case '[', '{':
			depth++
			i++
		case ']', '}':
			depth = max(depth-1, 0)
			i++
		default:
			i++
		}
	}
	return ps
}

// indexed returns the table path of header key parts: after each part that names an array
// of tables comes the index of its last table, as TOML resolves [worker.env].
func indexed(arrays map[string]int, parts []string) []string {
	var path []string
	for _, p := range parts {
		path = append(path, p)
		if n, ok := arrays[pathKey(path)]; ok {
			path = append(path, "#"+strconv.Itoa(n-1))
		}
	}
	return path
}

// scanKey reads a dotted key (bare, "basic" or 'literal' parts) at src[i:], skipping blanks
// around the parts. It returns the parts and where it stopped; no parts when there is no key.
func scanKey(src string, i int) (parts []string, j int) {
	j = i
	for {
		j = skipBlanks(src, j)
		if j >= len(src) {
			return parts, j
		}
		switch c := src[j]; {
		case c == '"':
			k := j + 1
			for k < len(src) && src[k] != '"' && src[k] != '\n' {
				if src[k] == '\\' {
					k++
				}
				k++
			}
			if k >= len(src) || src[k] != '"' {
				return parts, j
			}
			s, err := strconv.Unquote(src[j : k+1])
			if err != nil {
				s = src[j+1 : k] // a TOML escape Go does not know: close enough
			}
			parts, j = append(parts, s), k+1
		case c == '\'':
			k := strings.IndexAny(src[j+1:], "'\n")
			if k < 0 || src[j+1+k] != '\'' {
				return parts, j
			}
			parts, j = append(parts, src[j+1:j+1+k]), j+k+2
		case isBare(c):
			k := j
			for k < len(src) && isBare(src[k]) {
				k++
			}
			parts, j = append(parts, src[j:k]), k
		default:
			return parts, j
		}
		j = skipBlanks(src, j)
		if j >= len(src) || src[j] != '.' {
			return parts, j
		}
		j++
	}
}

func isBare(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-'
}

func skipBlanks(src string, i int) int {
	for i < len(src) && (src[i] == ' ' || src[i] == '\t') {
		i++
	}
	return i
}

// skipString returns the index just past the string that starts at src[i] (a quote):
// basic "..." or literal '...', single-line or triple-quoted multi-line.
func skipString(src string, i int) int {
	q := src[i]
	escapes := q == '"'
	if triple := strings.Repeat(string(q), 3); strings.HasPrefix(src[i:], triple) {
		j := i + 3
		for j < len(src) {
			switch {
			case escapes && src[j] == '\\':
				j += 2
			case strings.HasPrefix(src[j:], triple):
				j += 3
				// Up to two more quotes belong to the content: """a"""" is `a"`.
				for n := 0; n < 2 && j < len(src) && src[j] == q; n++ {
					j++
				}
				return j
			default:
				j++
			}
		}
		return len(src)
	}
	j := i + 1
	for j < len(src) && src[j] != q && src[j] != '\n' {
		if escapes && src[j] == '\\' {
			j++
		}
		j++
	}
	if j < len(src) && src[j] == q {
		j++
	}
	return min(j, len(src))
}
