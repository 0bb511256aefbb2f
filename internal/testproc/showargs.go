package testproc

import (
	"encoding/json"
	"fmt"
	"os"
	"strings"
)

// ShowEnv names (comma-separated) the environment variables the showargs
// fixture prints.
const ShowEnv = "CORRAL_TESTPROC_SHOW"

// ShowArgsPrefix starts the one line showargs prints: its arguments and the
// variables named in ShowEnv (unset ones absent), as JSON.
const ShowArgsPrefix = "showargs: "

// ShowArgs is what showargs prints after ShowArgsPrefix.
type ShowArgs struct {
	Args []string          `json:"args"`
	Env  map[string]string `json:"env"`
}

func init() {
	// showargs [ARG...]: print what the program was started with, then
	// stay, as a server whose launch options an app chose.
	Register("showargs", func(args []string) {
		out := ShowArgs{Args: args, Env: map[string]string{}}
		if out.Args == nil {
			out.Args = []string{}
		}
		for _, k := range strings.Split(os.Getenv(ShowEnv), ",") {
			if v, ok := os.LookupEnv(k); ok && k != "" {
				out.Env[k] = v
			}
		}
		b, _ := json.Marshal(out)
		fmt.Println(ShowArgsPrefix + string(b))
		ready()
		block()
	})
}
