package docs

import (
	"context"
	"encoding/json"
	"sort"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"go.yaml.in/yaml/v3"

	"github.com/m4sh/backend/asyncapi"
	"github.com/m4sh/backend/gen/api"
	"github.com/m4sh/backend/internal/ws"
)

// TestOpenAPIExamples: every operation's request body and success answers carry an example
// (on the media type or its schema), which the reference pages show, and every example of
// the document is valid against its schema.
func TestOpenAPIExamples(t *testing.T) {
	t.Parallel()
	doc, err := api.GetSpec()
	if err != nil {
		t.Fatal(err)
	}
	if err := doc.Validate(context.Background(), openapi3.EnableExamplesValidation()); err != nil {
		t.Fatalf("the OpenAPI document or one of its examples is invalid: %v", err)
	}
	hasExample := func(mt *openapi3.MediaType) bool {
		return mt.Example != nil || len(mt.Examples) > 0 || (mt.Schema != nil && mt.Schema.Value != nil && mt.Schema.Value.Example != nil)
	}
	var missing []string
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			if op.RequestBody != nil && op.RequestBody.Value != nil {
				for ct, mt := range op.RequestBody.Value.Content {
					if !hasExample(mt) {
						missing = append(missing, method+" "+path+" request "+ct)
					}
				}
			}
			for status, r := range op.Responses.Map() {
				if !strings.HasPrefix(status, "2") || r.Value == nil {
					continue
				}
				for ct, mt := range r.Value.Content {
					if !hasExample(mt) {
						missing = append(missing, method+" "+path+" "+status+" "+ct)
					}
				}
			}
		}
	}
	sort.Strings(missing)
	for _, m := range missing {
		t.Errorf("no example: %s", m)
	}
}

// TestAsyncAPIExamples: every message has an example, and each is a frame the contract
// allows (ClientMessage or ServerMessage) of that message's payload type.
func TestAsyncAPIExamples(t *testing.T) {
	t.Parallel()
	schemas, err := ws.CompileSchemas(asyncapi.YAML)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Components struct {
			Messages map[string]struct {
				Payload struct {
					Ref string `yaml:"$ref"`
				}
				Examples []struct {
					Name    string
					Payload any
				}
			}
		}
	}
	if err := yaml.Unmarshal(asyncapi.YAML, &d); err != nil {
		t.Fatal(err)
	}
	for key, m := range d.Components.Messages {
		if len(m.Examples) == 0 {
			t.Errorf("message %s has no example", key)
		}
		for _, ex := range m.Examples {
			// Through JSON, as a frame arrives: YAML maps become JSON objects.
			b, err := json.Marshal(ex.Payload)
			if err != nil {
				t.Fatal(err)
			}
			var v any
			if err := json.Unmarshal(b, &v); err != nil {
				t.Fatal(err)
			}
			ce, se := schemas.Client.Validate(v), schemas.Server.Validate(v)
			if ce != nil && se != nil {
				t.Errorf("message %s example %s is neither a ClientMessage (%v) nor a ServerMessage (%v)", key, ex.Name, ce, se)
			}
			payload := m.Payload.Ref[strings.LastIndex(m.Payload.Ref, "/")+1:]
			if typ, _ := v.(map[string]any)["type"].(string); !payloadHasType(t, payload, typ) {
				t.Errorf("message %s example %s has type %q, not the const of %s", key, ex.Name, typ, payload)
			}
		}
	}
}

// payloadHasType reports whether the named AsyncAPI schema's `type` property is const typ.
func payloadHasType(t *testing.T, schema, typ string) bool {
	t.Helper()
	var d struct {
		Components struct {
			Schemas map[string]struct {
				Properties map[string]struct {
					Const string `yaml:"const"`
				}
			}
		}
	}
	if err := yaml.Unmarshal(asyncapi.YAML, &d); err != nil {
		t.Fatal(err)
	}
	return d.Components.Schemas[schema].Properties["type"].Const == typ
}
