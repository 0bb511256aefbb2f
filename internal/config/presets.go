package config

import (
	"fmt"
	"regexp"
	"time"
)

type presetSpec struct {
	ready Probe
	hook  *Hook
}

// preset returns the defaults of a named preset; port 0 means its usual one.
// Keys the user sets override these.
func preset(name string, port int) (presetSpec, error) {
	switch name {
	case "":
		return presetSpec{}, nil
	case "a1111", "forge":
		// Stable Diffusion WebUI (AUTOMATIC1111) and Forge: the API answers
		// once models are loaded, and the server prints its URL; both must
		// hold. It has an endpoint that stops it cleanly, but only when
		// started with --api-server-stop (see Service.HookFor).
		if port == 0 {
			port = 7860
		}
		base := fmt.Sprintf("http://127.0.0.1:%d", port)
		return presetSpec{
			ready: Probe{
				HTTP:     base + "/sdapi/v1/options",
				Log:      regexp.MustCompile(`Running on local URL`),
				Timeout:  10 * time.Minute, // first start downloads and loads models
				Interval: 500 * time.Millisecond,
			},
			hook: &Hook{Method: "POST", URL: base + "/sdapi/v1/server-stop", RequiresArg: "--api-server-stop"},
		}, nil
	case "comfyui":
		if port == 0 {
			port = 8188
		}
		return presetSpec{
			ready: Probe{
				HTTP:     fmt.Sprintf("http://127.0.0.1:%d/system_stats", port),
				Timeout:  5 * time.Minute,
				Interval: 500 * time.Millisecond,
			},
		}, nil
	}
	return presetSpec{}, fmt.Errorf("unknown preset %q (known: a1111, forge, comfyui)", name)
}
