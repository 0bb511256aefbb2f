package testproc

func init() {
	// spin burns processor time until killed: a tree whose CPU figure
	// must grow.
	Register("spin", func([]string) {
		ready()
		x := 0
		for {
			x++
		}
	})
}
