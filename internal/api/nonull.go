package api

import (
	"encoding"
	"encoding/json"
	"reflect"
	"sync"
)

// noNull returns v with every nil slice and map in it, at any depth, made
// empty, so that a list in an answer is [] and never null: programs in
// other languages (the Python client, an app's own code) then need no
// "null means empty" case, and a field the daemon adds later cannot bring
// one back. Fields with omitempty stay absent, as before. v itself is not
// changed (its values are shared with the supervisor): what holds a nil is
// copied. A slice or map type with a marshaling of its own
// (json.RawMessage) is left as it is: its nil may mean something else. A
// nil pointer stays null: every pointer field of the API's types has
// omitempty (the OpenAPI test refuses a null anywhere in an answer).
func noNull(v any) any {
	if v == nil {
		return v
	}
	rv := reflect.ValueOf(v)
	if !mayHoldNil(rv.Type()) {
		return v
	}
	return filled(rv).Interface()
}

var (
	marshaler     = reflect.TypeFor[json.Marshaler]()
	textMarshaler = reflect.TypeFor[encoding.TextMarshaler]()
)

func ownMarshaling(t reflect.Type) bool {
	pt := reflect.PointerTo(t)
	return t.Implements(marshaler) || t.Implements(textMarshaler) || pt.Implements(marshaler) || pt.Implements(textMarshaler)
}

// holds caches mayHoldNil per type: answers are made of a few types.
var holds sync.Map // reflect.Type → bool

// mayHoldNil reports whether a value of t can contain a nil slice or map
// that filled would change.
func mayHoldNil(t reflect.Type) bool {
	if v, ok := holds.Load(t); ok {
		return v.(bool)
	}
	holds.Store(t, true) // a recursive type is taken to hold one while it is looked at
	r := computeHolds(t)
	holds.Store(t, r)
	return r
}

func computeHolds(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Slice, reflect.Map:
		return !ownMarshaling(t) || mayHoldNil(t.Elem())
	case reflect.Pointer, reflect.Array:
		return mayHoldNil(t.Elem())
	case reflect.Interface:
		return true
	case reflect.Struct:
		for i := range t.NumField() {
			if f := t.Field(i); f.IsExported() && mayHoldNil(f.Type) {
				return true
			}
		}
	}
	return false
}

func filled(v reflect.Value) reflect.Value {
	t := v.Type()
	if !mayHoldNil(t) {
		return v
	}
	switch t.Kind() {
	case reflect.Slice:
		if v.IsNil() {
			if ownMarshaling(t) {
				return v
			}
			return reflect.MakeSlice(t, 0, 0)
		}
		if !mayHoldNil(t.Elem()) {
			return v
		}
		out := reflect.MakeSlice(t, v.Len(), v.Len())
		for i := range v.Len() {
			out.Index(i).Set(filled(v.Index(i)))
		}
		return out
	case reflect.Map:
		if v.IsNil() {
			if ownMarshaling(t) {
				return v
			}
			return reflect.MakeMap(t)
		}
		if !mayHoldNil(t.Elem()) {
			return v
		}
		out := reflect.MakeMapWithSize(t, v.Len())
		for it := v.MapRange(); it.Next(); {
			out.SetMapIndex(it.Key(), filled(it.Value()))
		}
		return out
	case reflect.Pointer:
		if v.IsNil() {
			return v
		}
		p := reflect.New(t.Elem())
		p.Elem().Set(filled(v.Elem()))
		return p
	case reflect.Interface:
		if v.IsNil() {
			return v
		}
		out := reflect.New(t).Elem()
		out.Set(filled(v.Elem()))
		return out
	case reflect.Array:
		out := reflect.New(t).Elem()
		for i := range v.Len() {
			out.Index(i).Set(filled(v.Index(i)))
		}
		return out
	case reflect.Struct:
		out := reflect.New(t).Elem()
		out.Set(v) // unexported fields as they are
		for i := range t.NumField() {
			if t.Field(i).IsExported() {
				out.Field(i).Set(filled(v.Field(i)))
			}
		}
		return out
	}
	return v
}
