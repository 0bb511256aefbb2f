package api

import (
	"errors"
	"net/http/httptest"
	"reflect"
	"strings"
	"testing"

	"github.com/corral-sh/corral/internal/service"
)

func TestLaunchBody(t *testing.T) {
	for _, tc := range []struct {
		body string
		args []string
		env  map[string]string
		err  string
	}{
		{body: ``},
		{body: `{"args": ["--port", "7861"], "env": {"A": "1"}}`, args: []string{"--port", "7861"}, env: map[string]string{"A": "1"}},
		{body: `{"args": [], "env": {}}`, args: []string{}, env: map[string]string{}},
		{body: `{"args": null}`},
		{body: `{"args": ["--x", null]}`, err: "args[1] is null"},
		{body: `{"env": {"TOKEN": null}}`, err: `env["TOKEN"] is null`},
		{body: `{"args": "--x"}`, err: "args must be a list of strings"},
		{body: `{"env": {"A": 1}}`, err: "env must be an object of strings"},
		{body: `{"argv": []}`, err: `unknown field "argv"`},
	} {
		var o service.StartOptions
		err := launchBody(httptest.NewRequest("POST", "/v1/services/a/start", strings.NewReader(tc.body)), "start", &o)
		if tc.err != "" {
			if err == nil || !errors.Is(err, errBadInput) || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: %v, want a bad request with %q", tc.body, err, tc.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(o.Args, tc.args) || !reflect.DeepEqual(o.Env, tc.env) {
			t.Errorf("%s: args %#v env %#v err %v", tc.body, o.Args, o.Env, err)
		}
	}
}
