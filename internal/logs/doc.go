// Package logs owns the output of services: each service has a Sink that
// splits its stdout and stderr into lines, keeps the last lines in memory
// (bounded by count and bytes), appends them to a size-rotated file, and
// hands new lines to subscribers (`corral logs -f`, log-line readiness).
//
// Progress bars (tqdm and friends) redraw one line with '\r'; a Sink keeps
// only the last state of such a line, not every redraw.
package logs
