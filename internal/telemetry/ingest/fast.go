package ingest

import (
	"bytes"
	"errors"
	"slices"
	"sync"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/m4sh/backend/internal/telemetry"
)

// fastPath is the ingest's fast decoder: a single-pass, allocation-light decoder for exactly
// the language of the reference path (reference.go: encoding/json into generic values, then
// kin-openapi's VisitJSON, then eventFrom), which costs about 4 µs per event, most of the
// ingest's time for batches; fastPath is several times faster than it. It is also faster than
// the same checks over valyala/fastjson (validate, parse, walk, re-encode props): inflating
// and decoding a 20-event batch took 1.6–2.2× as long that way, measured side by side; with
// inflating and decoding ≈ 18 % of the ingest's CPU (BENCHMARKS.md), that estimates a loss
// above the tenth of the 20-event throughput we accept for a plainer parser.
// It accepts a body only when the reference path would accept it, and then returns exactly the events the reference
// path would return (props re-encoded byte for byte as encoding/json does: members sorted,
// duplicates impossible, the same escapes). On anything else — any error, and a few valid but
// unusual inputs it does not handle (duplicate member names) — it declines, and the request
// takes the reference path, so that refusals keep their messages and fields. FuzzDecode checks
// this equivalence on arbitrary bodies against the reference path and thereby against the
// OpenAPI document.
//
// The schema constraints it encodes (TelemetryEvent, TelemetryBatch in openapi.yaml; the
// numbers and the levels are read from the document, the shape is checked by schemasFrom):
//   - the body is one JSON object; with an "events" member it is a batch: an object with only
//     "events", an array of 1..maxEvents events; otherwise it is one event;
//   - an event is an object with only the members name (required; string of name.min..max
//     characters), ts (string, date-time), level (one of the enum), session_id (string of
//     session.min..max characters) and props (object, any members);
//   - member names match exactly (case-sensitive);
//
// and what the reference path adds: UTF-8, nothing but whitespace after the value, ts a real
// RFC 3339 time, no U+0000 in name, session_id or anywhere in props (names included), props
// nested at most maxPropsDepth levels.
type fastPath struct {
	limits limits
	pool   sync.Pool // *fastDecoder
}

var (
	// errDecline: the fast path does not accept the body; the reference path decides.
	errDecline = errors.New("telemetry fast path: declined")
	// errDuplicate: the body repeats a member name. encoding/json keeps the last one, which
	// the reference path handles; the fast path leaves such bodies to it.
	errDuplicate = errors.New("telemetry fast path: duplicate member name")
)

// fastDecoder holds the scratch buffers of one decode; decoders are pooled.
type fastDecoder struct {
	limits  *limits
	in      []byte
	pos     int
	str     []byte        // a decoded string with escapes
	props   []byte        // the canonical props of all events, back to back
	keys    []byte        // decoded member names of the props objects being encoded
	members []propsMember // members of the props objects being encoded (a stack)
	tmp     []byte        // a props object's members while they are put in order
	spans   []span        // each event's props in props
}

type span struct{ start, end int }

type propsMember struct {
	key span // the decoded name, in keys
	seg span // `"name":value`, in props
}

// decode decodes body as the reference path does, or returns errDecline / errDuplicate.
func (f *fastPath) decode(body []byte) ([]telemetry.Event, error) {
	d, _ := f.pool.Get().(*fastDecoder)
	if d == nil {
		d = &fastDecoder{limits: &f.limits}
	}
	events, err := d.decode(body)
	d.in = nil
	if cap(d.props) <= 64<<10 {
		f.pool.Put(d)
	}
	return events, err
}

func (d *fastDecoder) decode(body []byte) ([]telemetry.Event, error) {
	d.in, d.pos = body, 0
	d.props, d.keys, d.members, d.spans = d.props[:0], d.keys[:0], d.members[:0], d.spans[:0]
	d.ws()
	if !d.eat('{') {
		return nil, errDecline
	}
	d.ws()
	// A body is a batch when it has an "events" member, wherever it is; then it may have no
	// other member. Events are decoded straight into the slice either way.
	var events []telemetry.Event
	if d.peek() == '"' {
		key, err := d.str0()
		if err != nil {
			return nil, err
		}
		if string(key) == "events" {
			if events, err = d.batch(); err != nil {
				return nil, err
			}
		} else {
			events = make([]telemetry.Event, 1)
			if err := d.eventMembers(&events[0], nil, key); err != nil {
				return nil, err
			}
		}
	} else {
		// "{}" and the like: no name.
		return nil, errDecline
	}
	d.ws()
	if d.pos != len(d.in) {
		return nil, errDecline
	}
	d.finishProps(events)
	return events, nil
}

// batch decodes `:[event, ...]}` after the "events" member name.
func (d *fastDecoder) batch() ([]telemetry.Event, error) {
	d.ws()
	if !d.eat(':') {
		return nil, errDecline
	}
	d.ws()
	if !d.eat('[') {
		return nil, errDecline
	}
	events := make([]telemetry.Event, 0, d.countEvents())
	for {
		d.ws()
		if len(events) == d.limits.maxEvents || d.peek() != '{' {
			return nil, errDecline
		}
		events = append(events, telemetry.Event{})
		e := &events[len(events)-1]
		d.pos++
		d.ws()
		if d.peek() != '"' {
			return nil, errDecline
		}
		key, err := d.str0()
		if err != nil {
			return nil, err
		}
		var prev *telemetry.Event
		if len(events) > 1 {
			prev = &events[len(events)-2]
		}
		if err := d.eventMembers(e, prev, key); err != nil {
			return nil, err
		}
		d.ws()
		if d.eat(',') {
			continue
		}
		if !d.eat(']') {
			return nil, errDecline
		}
		break
	}
	d.ws()
	switch d.peek() {
	case '}':
		d.pos++
		return events, nil
	case ',':
		// Another member: an unsupported property, or "events" again.
		return nil, errDecline
	}
	return nil, errDecline
}

// countEvents guesses how many events follow, to size the slice once: it counts `{"` at
// the start of events, which may overcount (objects in props) but never undercounts by much.
func (d *fastDecoder) countEvents() int {
	n := bytes.Count(d.in[d.pos:], []byte(`{"name"`))
	return min(max(n, 1), d.limits.maxEvents)
}

// Event member bits, to spot duplicates and the missing name.
const (
	hasName = 1 << iota
	hasTS
	hasLevel
	hasSession
	hasProps
)

// eventMembers decodes the members of an event object whose first member name, key, was
// just read, through the closing '}'. Events of a batch mostly share their name and session
// with the previous one, prev: they then share its strings.
func (d *fastDecoder) eventMembers(e, prev *telemetry.Event, key []byte) error {
	var seen int
	for {
		d.ws()
		if !d.eat(':') {
			return errDecline
		}
		d.ws()
		var bit int
		switch string(key) {
		case "name":
			bit = hasName
			var prevName string
			if prev != nil {
				prevName = prev.Name
			}
			s, err := d.boundedStr(d.limits.name, prevName)
			if err != nil {
				return err
			}
			e.Name = s
		case "ts":
			bit = hasTS
			s, err := d.str0()
			if err != nil {
				return err
			}
			if !isDateTime(s) {
				return errDecline
			}
			t, err := time.Parse(time.RFC3339Nano, string(s))
			if err != nil {
				return errDecline
			}
			e.TS = t
		case "level":
			bit = hasLevel
			s, err := d.str0()
			if err != nil {
				return err
			}
			i := slices.Index(d.limits.levels, string(s))
			if i < 0 {
				return errDecline
			}
			e.Level = d.limits.levels[i]
		case "session_id":
			bit = hasSession
			var prevSession string
			if prev != nil {
				prevSession = prev.SessionID
			}
			s, err := d.boundedStr(d.limits.session, prevSession)
			if err != nil {
				return err
			}
			e.SessionID = s
		case "props":
			bit = hasProps
			if d.peek() != '{' {
				return errDecline
			}
			start := len(d.props)
			if err := d.value(1); err != nil {
				return err
			}
			d.spans = append(d.spans, span{start, len(d.props)})
		default:
			// "events" beside event members makes a batch with unsupported members; anything
			// else is an unsupported member of an event.
			return errDecline
		}
		if seen&bit != 0 {
			return errDuplicate
		}
		seen |= bit
		d.ws()
		if d.eat('}') {
			break
		}
		if !d.eat(',') {
			return errDecline
		}
		d.ws()
		if d.peek() != '"' {
			return errDecline
		}
		var err error
		if key, err = d.str0(); err != nil {
			return err
		}
	}
	if seen&hasName == 0 {
		return errDecline
	}
	if seen&hasProps == 0 {
		d.spans = append(d.spans, span{-1, -1})
	}
	return nil
}

// finishProps copies all props into one allocation and hands each event its part.
func (d *fastDecoder) finishProps(events []telemetry.Event) {
	if len(d.props) == 0 {
		return
	}
	all := bytes.Clone(d.props)
	for i := range events {
		if s := d.spans[i]; s.start >= 0 {
			events[i].Props = all[s.start:s.end:s.end]
		}
	}
}

// value encodes the JSON value at the input position into props as encoding/json re-encodes
// a value decoded into interfaces with UseNumber, and checks it as checkJSON does: depth is
// the value's nesting level (props itself is 1).
func (d *fastDecoder) value(depth int) error {
	if depth > maxPropsDepth {
		return errDecline
	}
	switch c := d.peek(); {
	case c == '{':
		return d.object(depth)
	case c == '[':
		d.pos++
		d.props = append(d.props, '[')
		d.ws()
		if d.eat(']') {
			d.props = append(d.props, ']')
			return nil
		}
		for {
			d.ws()
			if err := d.value(depth + 1); err != nil {
				return err
			}
			d.ws()
			if d.eat(']') {
				d.props = append(d.props, ']')
				return nil
			}
			if !d.eat(',') {
				return errDecline
			}
			d.props = append(d.props, ',')
		}
	case c == '"':
		s, err := d.str0()
		if err != nil {
			return err
		}
		if bytes.IndexByte(s, 0) >= 0 {
			return errDecline
		}
		d.props = appendJSONString(d.props, s)
		return nil
	case c == 't':
		return d.literal("true")
	case c == 'f':
		return d.literal("false")
	case c == 'n':
		return d.literal("null")
	case c == '-' || ('0' <= c && c <= '9'):
		return d.number()
	}
	return errDecline
}

// object encodes an object with its members ordered by name, as encoding/json writes a map.
func (d *fastDecoder) object(depth int) error {
	d.pos++ // '{'
	d.props = append(d.props, '{')
	body := len(d.props)
	base, keysBase := len(d.members), len(d.keys)
	d.ws()
	if d.eat('}') {
		d.props = append(d.props, '}')
		return nil
	}
	for {
		d.ws()
		if d.peek() != '"' {
			return errDecline
		}
		k, err := d.str0()
		if err != nil {
			return err
		}
		if bytes.IndexByte(k, 0) >= 0 {
			return errDecline
		}
		var m propsMember
		m.key.start = len(d.keys)
		d.keys = append(d.keys, k...)
		m.key.end = len(d.keys)
		if len(d.members) > base {
			d.props = append(d.props, ',')
		}
		m.seg.start = len(d.props)
		d.props = appendJSONString(d.props, k)
		d.props = append(d.props, ':')
		d.ws()
		if !d.eat(':') {
			return errDecline
		}
		d.ws()
		if err := d.value(depth + 1); err != nil {
			return err
		}
		m.seg.end = len(d.props)
		d.members = append(d.members, m)
		d.ws()
		if d.eat('}') {
			break
		}
		if !d.eat(',') {
			return errDecline
		}
	}
	ms := d.members[base:]
	sorted := true
	for i := 1; i < len(ms); i++ {
		switch c := bytes.Compare(d.key(ms[i-1]), d.key(ms[i])); {
		case c == 0:
			return errDuplicate
		case c > 0:
			sorted = false
		}
	}
	if !sorted {
		slices.SortFunc(ms, func(a, b propsMember) int { return bytes.Compare(d.key(a), d.key(b)) })
		for i := 1; i < len(ms); i++ {
			if bytes.Equal(d.key(ms[i-1]), d.key(ms[i])) {
				return errDuplicate
			}
		}
		d.tmp = append(d.tmp[:0], d.props[body:]...)
		d.props = d.props[:body]
		for i, m := range ms {
			if i > 0 {
				d.props = append(d.props, ',')
			}
			d.props = append(d.props, d.tmp[m.seg.start-body:m.seg.end-body]...)
		}
	}
	d.props = append(d.props, '}')
	d.members, d.keys = d.members[:base], d.keys[:keysBase]
	return nil
}

func (d *fastDecoder) key(m propsMember) []byte { return d.keys[m.key.start:m.key.end] }

func (d *fastDecoder) literal(lit string) error {
	if !bytes.HasPrefix(d.in[d.pos:], []byte(lit)) {
		return errDecline
	}
	d.pos += len(lit)
	d.props = append(d.props, lit...)
	return nil
}

// number copies a number as it is written (a json.Number keeps its text) after checking the
// JSON grammar: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (d *fastDecoder) number() error {
	in, i := d.in, d.pos
	if i < len(in) && in[i] == '-' {
		i++
	}
	switch {
	case i < len(in) && in[i] == '0':
		i++
	case i < len(in) && '1' <= in[i] && in[i] <= '9':
		for i++; i < len(in) && isDigit(in[i]); i++ {
		}
	default:
		return errDecline
	}
	if i < len(in) && in[i] == '.' {
		i++
		if i >= len(in) || !isDigit(in[i]) {
			return errDecline
		}
		for ; i < len(in) && isDigit(in[i]); i++ {
		}
	}
	if i < len(in) && (in[i] == 'e' || in[i] == 'E') {
		i++
		if i < len(in) && (in[i] == '+' || in[i] == '-') {
			i++
		}
		if i >= len(in) || !isDigit(in[i]) {
			return errDecline
		}
		for ; i < len(in) && isDigit(in[i]); i++ {
		}
	}
	d.props = append(d.props, in[d.pos:i]...)
	d.pos = i
	return nil
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// boundedStr reads a string member whose length in characters lies within b and that
// holds no U+0000; equal to prev (the previous event's value), it returns prev itself, so
// a batch repeating a name allocates it once.
func (d *fastDecoder) boundedStr(b lengths, prev string) (string, error) {
	s, err := d.str0()
	if err != nil {
		return "", err
	}
	if n := utf8.RuneCount(s); n < b.min || n > b.max || bytes.IndexByte(s, 0) >= 0 {
		return "", errDecline
	}
	if prev != "" && string(s) == prev {
		return prev, nil
	}
	return string(s), nil
}

// str0 reads the string at the input position and returns its decoded bytes as
// encoding/json decodes them — valid only until the next call. Anything but a string, invalid
// UTF-8 and control characters decline (decode refuses them).
func (d *fastDecoder) str0() ([]byte, error) {
	if d.peek() != '"' {
		return nil, errDecline
	}
	in := d.in
	start := d.pos + 1
	for i := start; i < len(in); {
		c := in[i]
		switch {
		case c == '"':
			d.pos = i + 1
			return in[start:i], nil
		case c == '\\':
			return d.strEscaped(start, i)
		case c < 0x20:
			return nil, errDecline
		case c < utf8.RuneSelf:
			i++
		default:
			r, n := utf8.DecodeRune(in[i:])
			if r == utf8.RuneError && n == 1 {
				return nil, errDecline
			}
			i += n
		}
	}
	return nil, errDecline
}

// strEscaped continues str0 from the first backslash at i, unquoting into d.str as
// encoding/json does (a lone or unpaired surrogate escape becomes U+FFFD).
func (d *fastDecoder) strEscaped(start, i int) ([]byte, error) {
	in := d.in
	b := append(d.str[:0], in[start:i]...)
	for i < len(in) {
		c := in[i]
		switch {
		case c == '"':
			d.pos = i + 1
			d.str = b
			return b, nil
		case c == '\\':
			if i+1 >= len(in) {
				return nil, errDecline
			}
			switch e := in[i+1]; e {
			case '"', '\\', '/':
				b = append(b, e)
				i += 2
			case 'b':
				b = append(b, '\b')
				i += 2
			case 'f':
				b = append(b, '\f')
				i += 2
			case 'n':
				b = append(b, '\n')
				i += 2
			case 'r':
				b = append(b, '\r')
				i += 2
			case 't':
				b = append(b, '\t')
				i += 2
			case 'u':
				r := getu4(in[i:])
				if r < 0 {
					return nil, errDecline
				}
				i += 6
				if utf16.IsSurrogate(r) {
					if r2 := getu4(in[i:]); r2 >= 0 {
						if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
							b = utf8.AppendRune(b, dec)
							i += 6
							break
						}
					}
					r = utf8.RuneError
				}
				b = utf8.AppendRune(b, r)
			default:
				return nil, errDecline
			}
		case c < 0x20:
			return nil, errDecline
		case c < utf8.RuneSelf:
			b = append(b, c)
			i++
		default:
			r, n := utf8.DecodeRune(in[i:])
			if r == utf8.RuneError && n == 1 {
				return nil, errDecline
			}
			b = append(b, in[i:i+n]...)
			i += n
		}
	}
	return nil, errDecline
}

// getu4 decodes `\uXXXX` at the start of s, or returns -1.
func getu4(s []byte) rune {
	if len(s) < 6 || s[0] != '\\' || s[1] != 'u' {
		return -1
	}
	var r rune
	for _, c := range s[2:6] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return -1
		}
		r = r*16 + rune(c)
	}
	return r
}

// appendJSONString writes s (valid UTF-8) as encoding/json writes a string with HTML
// escaping, its default.
func appendJSONString(dst, s []byte) []byte {
	const hex = "0123456789abcdef"
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '\\', '"':
				dst = append(dst, '\\', c)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, n := utf8.DecodeRune(s[i:])
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hex[r&0xF])
			start = i + n
		}
		i += n
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// isDateTime is kin-openapi's date-time format (openapi3.FormatOfStringDateTime):
// ^[0-9]{4}-(0[1-9]|10|11|12)-(0[1-9]|[12][0-9]|3[01])T([0-1][0-9]|2[0-3]):[0-5][0-9]:([0-5][0-9]|60)(\.[0-9]+)?(Z|(\+|-)([0-1][0-9]|2[0-3]):[0-5][0-9])$
// (its calendar check is implied by the time.Parse that follows).
func isDateTime(s []byte) bool {
	if len(s) < 20 {
		return false
	}
	d := func(i int) bool { return isDigit(s[i]) }
	if !d(0) || !d(1) || !d(2) || !d(3) || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':' {
		return false
	}
	if !(s[5] == '0' && '1' <= s[6] && s[6] <= '9' || s[5] == '1' && '0' <= s[6] && s[6] <= '2') {
		return false
	}
	if !(s[8] == '0' && '1' <= s[9] && s[9] <= '9' || (s[8] == '1' || s[8] == '2') && d(9) || s[8] == '3' && (s[9] == '0' || s[9] == '1')) {
		return false
	}
	if !isHour(s[11], s[12]) || !('0' <= s[14] && s[14] <= '5' && d(15)) {
		return false
	}
	if !('0' <= s[17] && s[17] <= '5' && d(18) || s[17] == '6' && s[18] == '0') {
		return false
	}
	i := 19
	if s[i] == '.' {
		i++
		if i >= len(s) || !d(i) {
			return false
		}
		for i < len(s) && d(i) {
			i++
		}
	}
	switch {
	case i == len(s)-1:
		return s[i] == 'Z'
	case i == len(s)-6:
		return (s[i] == '+' || s[i] == '-') && isHour(s[i+1], s[i+2]) && s[i+3] == ':' &&
			'0' <= s[i+4] && s[i+4] <= '5' && isDigit(s[i+5])
	}
	return false
}

func isHour(a, b byte) bool {
	return (a == '0' || a == '1') && isDigit(b) || a == '2' && '0' <= b && b <= '3'
}

func (d *fastDecoder) peek() byte {
	if d.pos < len(d.in) {
		return d.in[d.pos]
	}
	return 0
}

func (d *fastDecoder) eat(c byte) bool {
	if d.pos < len(d.in) && d.in[d.pos] == c {
		d.pos++
		return true
	}
	return false
}

// ws skips JSON whitespace.
func (d *fastDecoder) ws() {
	for d.pos < len(d.in) {
		switch d.in[d.pos] {
		case ' ', '\t', '\n', '\r':
			d.pos++
		default:
			return
		}
	}
}
