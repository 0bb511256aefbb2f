package main

import (
	"encoding/json"
	"fmt"
	"net/http"
)

// uiPID returns the pid the uiserver fixture on port answers with, or 0.
func uiPID(port int) int {
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	var a struct {
		PID int `json:"pid"`
	}
	json.NewDecoder(resp.Body).Decode(&a)
	return a.PID
}
