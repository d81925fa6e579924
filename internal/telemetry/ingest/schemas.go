package ingest

import (
	"errors"
	"fmt"
	"slices"

	"github.com/getkin/kin-openapi/openapi3"
)

// limits are the bounds of the telemetry schemas that the fast decoder checks itself, read from
// the OpenAPI document at start-up.
type limits struct {
	maxEvents int      // TelemetryBatch.events maxItems
	name      lengths  // TelemetryEvent.name minLength..maxLength, in characters
	session   lengths  // TelemetryEvent.session_id minLength..maxLength
	levels    []string // TelemetryEvent.level enum
}

// lengths is a string schema's minLength..maxLength, both included.
type lengths struct{ min, max int }

// schemasFrom reads the telemetry schemas from doc: the reference decoder validates against
// them, the fast decoder gets their limits. It fails when the schemas changed shape beyond
// what the fast decoder knows (members, types, required, closed objects, formats,
// compositions): then fast.go must learn the change first, and the fuzz target shows where.
func schemasFrom(doc *openapi3.T) (*reference, *fastPath, error) {
	get := func(name string) (*openapi3.Schema, error) {
		ref := doc.Components.Schemas[name]
		if ref == nil || ref.Value == nil {
			return nil, fmt.Errorf("schema %s missing from the OpenAPI document", name)
		}
		return ref.Value, nil
	}
	event, err := get("TelemetryEvent")
	if err != nil {
		return nil, nil, err
	}
	batch, err := get("TelemetryBatch")
	if err != nil {
		return nil, nil, err
	}
	if err := checkShape(event, batch); err != nil {
		return nil, nil, fmt.Errorf("the telemetry schemas changed beyond what the fast decoder knows (update fast.go): %w", err)
	}
	p := event.Properties
	lim := limits{
		maxEvents: int(*batch.Properties["events"].Value.MaxItems),
		name:      lengthsOf(p["name"].Value),
		session:   lengthsOf(p["session_id"].Value),
	}
	for _, v := range p["level"].Value.Enum {
		lim.levels = append(lim.levels, v.(string))
	}
	return &reference{event: event, batch: batch}, &fastPath{limits: lim}, nil
}

func lengthsOf(s *openapi3.Schema) lengths { return lengths{int(s.MinLength), int(*s.MaxLength)} }

// checkShape compares the schemas with the language fast.go decodes.
func checkShape(event, batch *openapi3.Schema) error {
	names := func(s *openapi3.Schema) []string {
		var out []string
		for n := range s.Properties {
			out = append(out, n)
		}
		slices.Sort(out)
		return out
	}
	closed := func(s *openapi3.Schema) bool {
		return s.AdditionalProperties.Has != nil && !*s.AdditionalProperties.Has && s.AdditionalProperties.Schema == nil
	}
	is := func(s *openapi3.Schema, typ string) bool { return slices.Equal(s.Type.Slice(), []string{typ}) }
	plainString := func(s *openapi3.Schema, format string) bool {
		return is(s, "string") && s.Format == format && s.Pattern == "" && len(s.Enum) == 0
	}
	p := event.Properties
	for _, m := range []string{"name", "ts", "level", "session_id", "props"} {
		if p[m] == nil || p[m].Value == nil {
			return fmt.Errorf("TelemetryEvent lacks %s", m)
		}
	}
	if batch.Properties["events"] == nil || batch.Properties["events"].Value == nil {
		return errors.New("TelemetryBatch lacks events")
	}
	events := batch.Properties["events"].Value
	props := p["props"].Value
	levelStrings := true
	for _, v := range p["level"].Value.Enum {
		_, ok := v.(string)
		levelStrings = levelStrings && ok
	}
	checks := []struct {
		what string
		ok   bool
	}{
		{"event members are name, ts, level, session_id, props", slices.Equal(names(event), []string{"level", "name", "props", "session_id", "ts"})},
		{"only name is required", slices.Equal(event.Required, []string{"name"})},
		{"events are closed objects", is(event, "object") && closed(event)},
		{"a batch has only events, required, closed", is(batch, "object") && slices.Equal(names(batch), []string{"events"}) && slices.Equal(batch.Required, []string{"events"}) && closed(batch)},
		{"events is an array of 1..maxItems TelemetryEvent", is(events, "array") && events.MinItems == 1 && events.MaxItems != nil && *events.MaxItems >= 1 && events.Items != nil && events.Items.Value == event && !events.UniqueItems},
		{"name is a string with lengths only", plainString(p["name"].Value, "") && p["name"].Value.MinLength >= 1 && p["name"].Value.MaxLength != nil},
		{"session_id is a string with lengths only", plainString(p["session_id"].Value, "") && p["session_id"].Value.MinLength >= 1 && p["session_id"].Value.MaxLength != nil},
		{"ts is a date-time string", plainString(p["ts"].Value, "date-time") && p["ts"].Value.MinLength == 0 && p["ts"].Value.MaxLength == nil},
		{"level is a string enum", is(p["level"].Value, "string") && len(p["level"].Value.Enum) > 0 && levelStrings && p["level"].Value.Format == "" && p["level"].Value.Pattern == "" && p["level"].Value.MaxLength == nil && p["level"].Value.MinLength == 0},
		{"props is any object", is(props, "object") && props.AdditionalProperties.Schema == nil && (props.AdditionalProperties.Has == nil || *props.AdditionalProperties.Has) && len(props.Properties) == 0 && props.MinProps == 0 && props.MaxProps == nil && len(props.Required) == 0},
		{"kin-openapi's date-time format is the one isDateTime implements", openapi3.FormatOfStringDateTime == dateTimeFormat},
	}
	for _, c := range checks {
		if !c.ok {
			return errors.New(c.what + ": no longer so")
		}
	}
	for _, s := range []*openapi3.Schema{event, batch, events, p["name"].Value, p["ts"].Value, p["level"].Value, p["session_id"].Value, props} {
		if s.Nullable || s.ReadOnly || s.WriteOnly || len(s.AllOf)+len(s.AnyOf)+len(s.OneOf) > 0 || s.Not != nil {
			return errors.New("a telemetry schema uses nullable, readOnly, writeOnly or a composition")
		}
	}
	return nil
}

// dateTimeFormat is kin-openapi's date-time format (openapi3.FormatOfStringDateTime) as
// isDateTime implements it.
const dateTimeFormat = `^[0-9]{4}-(0[1-9]|10|11|12)-(0[1-9]|[12][0-9]|3[01])T([0-1][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?(Z|(\+|-)([0-1][0-9]|2[0-3]):[0-5][0-9])$`
