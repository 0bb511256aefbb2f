// Package top owns corral top, the dashboard's live view in a terminal
// (for a server reached over ssh): what it shows for the daemon's answers
// and what its keys do.
//
// Model is a Bubble Tea model whose Update and View are functions of the
// messages it is given (Snapshot, EventMsg, ActionDone, keys, the window's
// size) and of nothing else: it never reads a clock or a terminal, so a
// test drives it with recorded statuses and reads its View as text. What
// it asks of the daemon goes through the Daemon interface, as commands
// (tea.Cmd) that Bubble Tea runs off the model's goroutine: reading the
// services, and the start, stop and restart a key asks for. Run puts a
// Model on a terminal and feeds it the event stream; Once prints a single
// snapshot for a pipe or a script.
//
// It does not own how a service or a tree is formatted elsewhere
// (internal/render), nor the daemon's API (package client).
package top
