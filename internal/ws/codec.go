package ws

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.yaml.in/yaml/v3"
)

// Schemas are the AsyncAPI document's message schemas, compiled for validation.
type Schemas struct {
	Client *jsonschema.Schema // ClientMessage: every frame a client may send
	Server *jsonschema.Schema // ServerMessage: every frame the server may send (tests)
}

const docURL = "urn:m4sh:asyncapi"

// CompileSchemas compiles the ClientMessage and ServerMessage schemas of an AsyncAPI
// document (YAML). AsyncAPI 3.0 schemas are JSON Schema draft 7 supersets.
func CompileSchemas(asyncapiYAML []byte) (*Schemas, error) {
	var y any
	if err := yaml.Unmarshal(asyncapiYAML, &y); err != nil {
		return nil, fmt.Errorf("parsing asyncapi document: %w", err)
	}
	j, err := json.Marshal(y)
	if err != nil {
		return nil, fmt.Errorf("converting asyncapi document to JSON: %w", err)
	}
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(j))
	if err != nil {
		return nil, fmt.Errorf("converting asyncapi document to JSON: %w", err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft7)
	c.AssertFormat()
	if err := c.AddResource(docURL, doc); err != nil {
		return nil, fmt.Errorf("loading asyncapi document: %w", err)
	}
	var s Schemas
	if s.Client, err = c.Compile(docURL + "#/components/schemas/ClientMessage"); err != nil {
		return nil, fmt.Errorf("compiling ClientMessage: %w", err)
	}
	if s.Server, err = c.Compile(docURL + "#/components/schemas/ServerMessage"); err != nil {
		return nil, fmt.Errorf("compiling ServerMessage: %w", err)
	}
	return &s, nil
}

// msgKind is the kind of an inbound message.
type msgKind uint8

const (
	msgCursor msgKind = iota + 1
	msgPing
	msgState
	msgHand
	msgReaction
	msgSpotlight
	msgViewport
)

// inbound is a decoded, validated client message.
type inbound struct {
	kind msgKind
	x, y float64
	// state is a state message's object, re-encoded compactly (keys sorted, no HTML
	// escaping): the form relayed, stored and measured against maxStateBytes.
	state string
	// w and h are a viewport's extent.
	w, h float64
	// on is a hand's raised or the spotlight's on; target a hand's user_id ("": own).
	on     bool
	target string
	emoji  string
}

// errInvalid marks a frame that is not valid JSON or not a ClientMessage (close 4400).
var errInvalid = errors.New("frame is not a valid client message")

// decode validates one text frame against the ClientMessage schema and decodes it. The
// shapes that make up nearly all traffic are recognised by decodeFast, which the fuzz test
// FuzzDecode proves never accepts what the schema refuses nor decodes differently;
// everything else goes through the schema validator.
func (s *Schemas) decode(b []byte) (inbound, error) {
	if m, ok := decodeFast(b); ok {
		return m, nil
	}
	return s.decodeSlow(b)
}

// decodeSlow is the reference path: full JSON parse, schema validation, then decoding.
func (s *Schemas) decodeSlow(b []byte) (inbound, error) {
	doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
	if err != nil {
		return inbound{}, fmt.Errorf("%w: %v", errInvalid, err)
	}
	if err := s.Client.Validate(doc); err != nil {
		return inbound{}, fmt.Errorf("%w: %v", errInvalid, err)
	}
	m := doc.(map[string]any) // the schema admits objects only
	switch m["type"] {
	case typeCursor:
		x, _ := strconv.ParseFloat(string(m["x"].(json.Number)), 64)
		y, _ := strconv.ParseFloat(string(m["y"].(json.Number)), 64)
		return inbound{kind: msgCursor, x: x, y: y}, nil
	case typePing:
		return inbound{kind: msgPing}, nil
	case typeState:
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(m["state"]); err != nil {
			return inbound{}, fmt.Errorf("%w: %v", errInvalid, err)
		}
		return inbound{kind: msgState, state: string(bytes.TrimSuffix(buf.Bytes(), []byte("\n")))}, nil
	case typeHand:
		target, _ := m["user_id"].(string)
		return inbound{kind: msgHand, on: m["raised"].(bool), target: target}, nil
	case typeReaction:
		return inbound{kind: msgReaction, emoji: m["emoji"].(string)}, nil
	case typeSpotlight:
		return inbound{kind: msgSpotlight, on: m["on"].(bool)}, nil
	case typeViewport:
		var v [4]float64
		for i, k := range [...]string{"x", "y", "w", "h"} {
			v[i], _ = strconv.ParseFloat(string(m[k].(json.Number)), 64)
		}
		return inbound{kind: msgViewport, x: v[0], y: v[1], w: v[2], h: v[3]}, nil
	}
	return inbound{}, fmt.Errorf("%w: schema admits an unknown type %v", errInvalid, m["type"])
}

var (
	fastCursorHead = []byte(`{"type":"cursor","x":`)
	fastCursorMid  = []byte(`,"y":`)
	fastPing       = []byte(`{"type":"ping"}`)
)

// coordLimit is the Coordinate schema's bound. The fast path accepts only values strictly
// inside it: float rounding is monotonic and the bound is exact in float64, so a decimal
// that parses below it is below it.
const coordLimit = 1e9

// decodeFast recognises exactly `{"type":"cursor","x":N,"y":N}` (no white space) and
// `{"type":"ping"}`. ok=false means "not recognised", not "invalid".
func decodeFast(b []byte) (inbound, bool) {
	if bytes.Equal(b, fastPing) {
		return inbound{kind: msgPing}, true
	}
	if !bytes.HasPrefix(b, fastCursorHead) {
		return inbound{}, false
	}
	rest := b[len(fastCursorHead):]
	x, n, ok := scanNumber(rest)
	if !ok {
		return inbound{}, false
	}
	rest = rest[n:]
	if !bytes.HasPrefix(rest, fastCursorMid) {
		return inbound{}, false
	}
	rest = rest[len(fastCursorMid):]
	y, n, ok := scanNumber(rest)
	if !ok || len(rest) != n+1 || rest[n] != '}' {
		return inbound{}, false
	}
	return inbound{kind: msgCursor, x: x, y: y}, true
}

// scanNumber reads a JSON number (RFC 8259 grammar) at the start of b and parses it; ok is
// false when there is none or it is not strictly inside ±coordLimit.
func scanNumber(b []byte) (float64, int, bool) {
	i := 0
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	default:
		return 0, 0, false
	}
	if i < len(b) && b[i] == '.' {
		i++
		d := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == d {
			return 0, 0, false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		d := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == d {
			return 0, 0, false
		}
	}
	f, err := strconv.ParseFloat(string(b[:i]), 64)
	if err != nil || f >= coordLimit || f <= -coordLimit {
		return 0, 0, false
	}
	return f, i, true
}
