package httpx

import (
	"errors"
	"regexp"
	"sort"
	"strings"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"

	"github.com/m4sh/backend/internal/apperr"
)

var unsupportedProperty = regexp.MustCompile(`^property "([^"]*)" is unsupported$`)

// FieldErrors flattens kin-openapi's nested errors into one entry per offending field, named
// by location: body.<json path>, query.<name>, path.<name>, header.<name>.
func FieldErrors(err error) []apperr.FieldError {
	var out []apperr.FieldError
	var walk func(loc string, err error)
	walk = func(loc string, err error) {
		switch e := err.(type) {
		case openapi3.MultiError:
			for _, inner := range e {
				walk(loc, inner)
			}
		case *openapi3filter.RequestError:
			l := "body"
			if e.Parameter != nil {
				l = e.Parameter.In + "." + e.Parameter.Name
			}
			if strings.Contains(e.Reason, "unsupported content type") || strings.Contains(e.Reason, "header Content-Type") {
				out = append(out, apperr.FieldError{Field: "header.Content-Type", Message: e.Reason})
				return
			}
			if e.Err == nil {
				out = append(out, apperr.FieldError{Field: l, Message: e.Reason})
				return
			}
			var se *openapi3.SchemaError
			var me openapi3.MultiError
			if errors.As(e.Err, &me) || errors.As(e.Err, &se) {
				walk(l, e.Err)
				return
			}
			msg := e.Reason
			if msg == "" {
				msg = e.Err.Error()
			}
			out = append(out, apperr.FieldError{Field: l, Message: msg})
		case *openapi3.SchemaError:
			field := loc
			if p := e.JSONPointer(); len(p) > 0 {
				field += "." + strings.Join(p, ".")
			}
			// An unknown member is reported on its object; name the member itself.
			if m := unsupportedProperty.FindStringSubmatch(e.Reason); m != nil && (e.SchemaField == "properties" || e.SchemaField == "additionalProperties") {
				field += "." + m[1]
			}
			out = append(out, apperr.FieldError{Field: field, Message: e.Reason})
		default:
			var re *openapi3filter.RequestError
			var se *openapi3.SchemaError
			switch {
			case errors.As(err, &re):
				walk(loc, re)
			case errors.As(err, &se):
				walk(loc, se)
			default:
				out = append(out, apperr.FieldError{Field: loc, Message: "invalid value"})
			}
		}
	}
	walk("request", err)
	sort.SliceStable(out, func(i, j int) bool { return out[i].Field < out[j].Field })
	return out
}
