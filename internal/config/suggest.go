package config

import (
	"fmt"
	"slices"
	"strings"
)

// Suggest returns the candidates a mistyped word most likely meant: the
// ones at the smallest edit distance (a swap of two neighbouring letters
// counts as one edit), if that distance is small for the word's length;
// a word that differs only in case, or is the start of exactly one
// candidate, is matched too. At most two are returned, sorted; none when
// nothing is close, so that a hint is never a guess.
func Suggest(word string, candidates []string) []string {
	if word == "" || len(candidates) == 0 {
		return nil
	}
	lw := strings.ToLower(word)
	var prefixed []string
	best, bestD := []string(nil), maxEdits(word)+1
	for _, c := range candidates {
		if c == word {
			return nil // it is there: nothing to suggest
		}
		lc := strings.ToLower(c)
		if len(lw) >= 3 && strings.HasPrefix(lc, lw) {
			prefixed = append(prefixed, c)
		}
		d := editDistance(lw, lc)
		switch {
		case d < bestD:
			best, bestD = []string{c}, d
		case d == bestD && len(best) > 0 && !slices.Contains(best, c):
			best = append(best, c)
		}
	}
	if len(best) == 0 && len(prefixed) == 1 {
		best = prefixed
	}
	if len(best) > 2 {
		return nil // too many near misses: no hint beats a wrong one
	}
	slices.Sort(best)
	return best
}

// maxEdits is how many edits a word of this length may be from what it
// meant: one for short words (where two edits turn "dir" into "env"), two
// up to eight letters, three beyond.
func maxEdits(word string) int {
	switch n := len(word); {
	case n <= 4:
		return 1
	case n <= 8:
		return 2
	default:
		return 3
	}
}

// DidYouMean returns ` (did you mean "x"?)`, ` (did you mean "x" or "y"?)`,
// or "" when Suggest finds nothing.
func DidYouMean(word string, candidates []string) string {
	s := Suggest(word, candidates)
	switch len(s) {
	case 0:
		return ""
	case 1:
		return fmt.Sprintf(" (did you mean %q?)", s[0])
	}
	return fmt.Sprintf(" (did you mean %q or %q?)", s[0], s[1])
}

// editDistance is the optimal string alignment distance between a and b
// (in bytes): insertions, deletions, substitutions and transpositions of
// neighbours count one each.
func editDistance(a, b string) int {
	// Three rows: the one before the previous is needed for transpositions.
	pp := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], pp[j-2]+1)
			}
		}
		pp, prev, cur = prev, cur, pp
	}
	return prev[len(b)]
}
