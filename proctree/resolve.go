package proctree

// Resolve says which mechanism Start would give a tree with opts now,
// without starting one, and, when Auto settled for a weaker tier than the
// platform's best, why. An error is what Start would fail with (a forced
// mechanism that does not work here). It is what a daemon reports as its
// tier: the requested Auto says nothing about what holds.
func Resolve(opts Options) (m Mechanism, fallback string, err error) {
	return resolve(opts.Containment, opts)
}
