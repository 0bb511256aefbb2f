package api

import (
	"encoding/json"
	"testing"
)

// noNull turns every nil list and map into an empty one at any depth,
// leaves omitempty fields absent and values with a marshaling of their
// own alone, and does not change what it was given (the supervisor's).
func TestNoNull(t *testing.T) {
	type inner struct {
		List []string `json:"list"`
		Opt  []int    `json:"opt,omitempty"`
	}
	type outer struct {
		Items  []inner           `json:"items"`
		Ptr    *inner            `json:"ptr"`
		NilPtr *inner            `json:"nil_ptr"`
		Map    map[string][]int  `json:"map"`
		NilMap map[string]string `json:"nil_map"`
		Raw    json.RawMessage   `json:"raw,omitempty"`
		Any    any               `json:"any"`
		Nested map[string]*inner `json:"nested"`
		hidden []string
	}
	v := outer{Items: []inner{{}}, Ptr: &inner{}, Map: map[string][]int{"a": nil}, Any: inner{}, Nested: map[string]*inner{"x": {}}, hidden: nil}
	b, err := json.Marshal(noNull(v))
	if err != nil {
		t.Fatal(err)
	}
	want := `{"items":[{"list":[]}],"ptr":{"list":[]},"nil_ptr":null,"map":{"a":[]},"nil_map":{},"any":{"list":[]},"nested":{"x":{"list":[]}}}`
	if string(b) != want {
		t.Fatalf("got  %s\nwant %s", b, want)
	}
	if v.Items[0].List != nil || v.Ptr.List != nil || v.Map["a"] != nil || v.Nested["x"].List != nil {
		t.Fatal("noNull changed its argument")
	}
	if b, _ := json.Marshal(noNull([]inner(nil))); string(b) != "[]" {
		t.Fatalf("a nil list answers %s", b)
	}
}
