package httpapi

import (
	"github.com/m4sh/backend/internal/apperr"
	"github.com/m4sh/backend/internal/clienttext"
)

// checkUserID applies the one user-id rule (clienttext.UserID, the same as for tokens) to a
// user id a client sent in field.
func checkUserID(field, id string) error {
	if err := clienttext.UserID(id); err != nil {
		return apperr.Validation("invalid user id", apperr.FieldError{Field: field, Message: err.Error()})
	}
	return nil
}

// cleanTitle cleans a client's title (clienttext.Clean). A title that is empty once cleaned
// is a validation error; an optional one that is absent or sent as "" is "".
func cleanTitle(field string, title *string, required bool) (string, error) {
	if title == nil || (!required && *title == "") {
		if required {
			return "", apperr.Validation("invalid title", apperr.FieldError{Field: field, Message: "required"})
		}
		return "", nil
	}
	t := clienttext.Clean(*title)
	if t == "" {
		return "", apperr.Validation("invalid title", apperr.FieldError{Field: field,
			Message: "must hold visible characters (control and format characters are removed, white space trimmed)"})
	}
	return t, nil
}
