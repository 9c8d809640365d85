// Command protobuf-table writes the table the embedded API server (kubeforge-testkit) decodes
// Kubernetes protobuf request bodies with: for every built-in kind, which Go struct it is, and for
// every struct, each field's protobuf number, JSON name, type and the JSON encoding's rules
// (omitempty, pointer, inline). It reads them from the Go types themselves, by reflection, so the
// table says exactly what client-go's own protobuf and JSON encoders do.
//
// With -fixtures DIR it also writes sample objects as client-go sends them (`NAME.pb`: the
// protobuf serializer's bytes; `NAME.json`: the JSON serializer's), which the testkit's tests
// decode and compare.
//
// Run by scripts/protobuf-table.sh; see there.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"

	apiextv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/client-go/kubernetes/scheme"
	apiregv1 "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1"
)

// special names the types whose protobuf and JSON forms differ in shape (custom marshalers).
var special = map[reflect.Type]string{
	reflect.TypeFor[metav1.Time]():                           "time",
	reflect.TypeFor[metav1.MicroTime]():                      "microtime",
	reflect.TypeFor[metav1.Duration]():                       "duration",
	reflect.TypeFor[resource.Quantity]():                     "quantity",
	reflect.TypeFor[intstr.IntOrString]():                    "intorstring",
	reflect.TypeFor[runtime.RawExtension]():                  "json",
	reflect.TypeFor[metav1.FieldsV1]():                       "json",
	reflect.TypeFor[apiextv1.JSON]():                         "json",
	reflect.TypeFor[apiextv1.JSONSchemaPropsOrArray]():       "schema-or-array",
	reflect.TypeFor[apiextv1.JSONSchemaPropsOrBool]():        "schema-or-bool",
	reflect.TypeFor[apiextv1.JSONSchemaPropsOrStringArray](): "schema-or-strings",
}

// Field is one protobuf field: [number, JSON name ("" when inline), type, flags].
// Flags: r repeated, p pointer (present means set, even to zero), o omitempty, z omitzero,
// i inline.
type Field [4]any

type table struct {
	Kinds    map[string]string  `json:"kinds"`
	Messages map[string][]Field `json:"messages"`
}

func name(t reflect.Type) string {
	return strings.TrimPrefix(t.PkgPath(), "k8s.io/") + "." + t.Name()
}

var jsonMarshaler = reflect.TypeFor[json.Marshaler]()

func (tb *table) typeOf(t reflect.Type, tag string) (string, string) {
	flags := ""
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
		flags += "p"
	}
	if s, ok := special[t]; ok {
		tb.addSpecialDeps(t)
		return s, flags
	}
	switch t.Kind() {
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return "bytes", flags
		}
		elem, _ := tb.typeOf(t.Elem(), "")
		if t.Name() != "" && !strings.Contains(tag, ",rep,") {
			// A named slice (Verbs, ExtraValue) in an `opt` field or a map value is a message
			// of `repeated items = 1`; anywhere else a slice is a repeated field.
			return "items:" + elem, flags
		}
		return elem, flags + "r"
	case reflect.Map:
		key, _ := tb.typeOf(t.Key(), "")
		val, _ := tb.typeOf(t.Elem(), "")
		return "map:" + key + ":" + val, flags
	case reflect.Struct:
		if t.Implements(jsonMarshaler) || reflect.PointerTo(t).Implements(jsonMarshaler) {
			fmt.Fprintf(os.Stderr, "protobuf-table: %s has its own JSON form and no rule here\n", name(t))
		}
		tb.message(t)
		return "m:" + name(t), flags
	case reflect.String:
		return "string", flags
	case reflect.Bool:
		return "bool", flags
	case reflect.Int32:
		return "int32", flags
	case reflect.Int64, reflect.Int:
		return "int64", flags
	case reflect.Uint32:
		return "uint32", flags
	case reflect.Uint64:
		return "uint64", flags
	case reflect.Float64:
		return "double", flags
	case reflect.Float32:
		return "float", flags
	}
	panic(fmt.Sprintf("protobuf-table: no rule for %s (%s)", t, t.Kind()))
}

// addSpecialDeps records the schema messages the JSONSchemaProps unions refer to.
func (tb *table) addSpecialDeps(t reflect.Type) {
	if strings.HasPrefix(t.Name(), "JSONSchemaPropsOr") {
		tb.message(reflect.TypeFor[apiextv1.JSONSchemaProps]())
	}
}

func (tb *table) message(t reflect.Type) {
	n := name(t)
	if _, done := tb.Messages[n]; done {
		return
	}
	tb.Messages[n] = nil // breaks cycles (JSONSchemaProps)
	fields := []Field{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag := f.Tag.Get("protobuf")
		if tag == "" || tag == "-" {
			continue // TypeMeta: carried by the envelope, not the message
		}
		parts := strings.Split(tag, ",")
		num, err := strconv.Atoi(parts[1])
		if err != nil {
			panic(fmt.Sprintf("%s.%s: protobuf tag %q", n, f.Name, tag))
		}
		jsonTag := strings.Split(f.Tag.Get("json"), ",")
		jsonName := jsonTag[0]
		ty, flags := tb.typeOf(f.Type, tag)
		if f.Anonymous && jsonName == "" {
			flags += "i"
		} else if jsonName == "" {
			jsonName = f.Name
		}
		for _, opt := range jsonTag[1:] {
			switch opt {
			case "omitempty":
				flags += "o"
			case "omitzero":
				flags += "z"
			}
		}
		fields = append(fields, Field{num, jsonName, ty, flags})
	}
	tb.Messages[n] = fields
}

func main() {
	out := flag.String("out", "", "where to write the table (JSON)")
	fixtures := flag.String("fixtures", "", "directory to write sample .pb/.json bodies to")
	flag.Parse()

	s := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{scheme.AddToScheme, apiextv1.AddToScheme, apiregv1.AddToScheme, metav1.AddMetaToScheme} {
		if err := add(s); err != nil {
			panic(err)
		}
	}
	tb := &table{Kinds: map[string]string{}, Messages: map[string][]Field{}}
	gvks := s.AllKnownTypes()
	keys := make([]string, 0, len(gvks))
	for gvk, t := range gvks {
		if gvk.Version == runtime.APIVersionInternal {
			continue
		}
		if _, ok := reflect.New(t).Interface().(interface{ Marshal() ([]byte, error) }); !ok {
			continue // no protobuf form (e.g. WatchEvent's internal forms)
		}
		tb.message(t)
		key := gvk.GroupVersion().String() + "/" + gvk.Kind
		tb.Kinds[key] = name(t)
		keys = append(keys, key)
	}
	sort.Strings(keys)
	data, err := json.Marshal(tb)
	if err != nil {
		panic(err)
	}
	if *out != "" {
		if err := os.WriteFile(*out, append(data, '\n'), 0o644); err != nil {
			panic(err)
		}
		fmt.Fprintf(os.Stderr, "protobuf-table: %d kinds, %d messages, %d bytes -> %s\n", len(keys), len(tb.Messages), len(data), *out)
	}
	if *fixtures != "" {
		writeFixtures(s, *fixtures)
	}
}
