package httpapi

import (
	"context"
	"encoding/csv"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/m4sh/backend/gen/api"
	"github.com/m4sh/backend/internal/apperr"
	"github.com/m4sh/backend/internal/attendance"
	"github.com/m4sh/backend/internal/classroom"
	"github.com/m4sh/backend/internal/page"
)

// AttendanceLister reads a session's attendance, one page at a time.
type AttendanceLister interface {
	List(ctx context.Context, session uuid.UUID, p page.Request) ([]attendance.Row, *string, error)
}

var _ AttendanceLister = (*attendance.Recorder)(nil)

type acceptKey struct{}

// withAccept hands the request's Accept header to the operations that negotiate their
// answer's type (the strict interface passes no headers it does not declare).
func withAccept(f api.StrictHandlerFunc, operationID string) api.StrictHandlerFunc {
	if operationID != "ClassroomSessionAttendance" {
		return f
	}
	return func(ctx context.Context, w http.ResponseWriter, r *http.Request, request any) (any, error) {
		return f(context.WithValue(ctx, acceptKey{}, strings.Join(r.Header.Values("Accept"), ",")), w, r, request)
	}
}

// prefersCSV reports whether an Accept header ranks text/csv (or text/*) above
// application/json; anything else, a tie included, is answered with JSON.
func prefersCSV(accept string) bool {
	var csvQ, jsonQ float64
	for _, part := range strings.Split(accept, ",") {
		mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		q := 1.0
		if v, ok := params["q"]; ok {
			if q, err = strconv.ParseFloat(v, 64); err != nil || q < 0 || q > 1 {
				continue
			}
		}
		switch mt {
		case "text/csv", "text/*":
			csvQ = max(csvQ, q)
		case "application/json":
			jsonQ = max(jsonQ, q)
		}
	}
	return csvQ > 0 && csvQ > jsonQ
}

// ClassroomSessionAttendance answers a session's attendance to the classroom's tutor: JSON
// pages, or every row as CSV streamed page by page. A member gets 403, anyone else 404.
func (s *Server) ClassroomSessionAttendance(ctx context.Context, req api.ClassroomSessionAttendanceRequestObject) (api.ClassroomSessionAttendanceResponseObject, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := s.classrooms.GetSession(ctx, p.UserID, req.ClassId, req.SessionId); err != nil {
		return nil, err
	}
	if _, role, err := s.classrooms.Get(ctx, p.UserID, req.ClassId); err != nil {
		return nil, err
	} else if role != classroom.RoleTutor {
		return nil, apperr.New(apperr.Forbidden, "only the classroom's tutor may read its attendance")
	}
	accept, _ := ctx.Value(acceptKey{}).(string)
	if prefersCSV(accept) {
		// The first page is read here, so that a database failure is still a 503 problem.
		pr := page.Request{Limit: page.MaxLimit}
		rows, next, err := s.attendance.List(ctx, req.SessionId, pr)
		if err != nil {
			return nil, err
		}
		return attendanceCSV{ctx: ctx, log: s.log, list: s.attendance, session: req.SessionId, rows: rows, next: next}, nil
	}
	items, next, err := listPage(ctx, req.Params.Limit, req.Params.Cursor, func(ctx context.Context, _ string, pr page.Request) ([]attendance.Row, *string, error) {
		return s.attendance.List(ctx, req.SessionId, pr)
	}, attendanceDTO)
	if err != nil {
		return nil, err
	}
	return api.ClassroomSessionAttendance200JSONResponse{Items: items, NextCursor: next}, nil
}

func attendanceDTO(r attendance.Row) api.AttendanceRow {
	return api.AttendanceRow{UserId: r.UserID, Name: r.Name, Role: api.Role(r.Role), FirstJoinedAt: r.FirstJoinedAt,
		LastLeftAt: r.LastLeftAt, PresentSeconds: r.PresentSeconds, Joins: r.Joins}
}

// attendanceCSV streams every row of a session's attendance as CSV, the first page read
// already. A failure once the answer has started aborts the connection, so a client never
// takes a cut-off export for a complete one.
type attendanceCSV struct {
	ctx     context.Context
	log     *slog.Logger
	list    AttendanceLister
	session uuid.UUID
	rows    []attendance.Row
	next    *string
}

var attendanceCSVHeader = []string{"user_id", "name", "role", "first_joined_at", "last_left_at", "present_seconds", "joins"}

func (a attendanceCSV) VisitClassroomSessionAttendanceResponse(w http.ResponseWriter) error {
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.WriteHeader(http.StatusOK)
	cw := csv.NewWriter(w)
	_ = cw.Write(attendanceCSVHeader)
	rc := http.NewResponseController(w)
	for {
		for _, r := range a.rows {
			_ = cw.Write(attendanceRecord(r))
		}
		cw.Flush()
		if err := cw.Error(); err != nil {
			return nil // the client went away
		}
		if a.next == nil {
			return nil
		}
		_ = rc.Flush()
		c, err := page.Decode(*a.next)
		if err == nil {
			a.rows, a.next, err = a.list.List(a.ctx, a.session, page.Request{Limit: page.MaxLimit, After: &c})
		}
		if err != nil {
			a.log.ErrorContext(a.ctx, "attendance CSV cut short", "session", a.session, "err", err)
			panic(http.ErrAbortHandler)
		}
	}
}

// attendanceRecord is one CSV line. A cell a spreadsheet would read as a formula (a user's
// own name or id starting with = + - @, a tab or a carriage return) is prefixed with '.
func attendanceRecord(r attendance.Row) []string {
	left := ""
	if r.LastLeftAt != nil {
		left = r.LastLeftAt.UTC().Format(time.RFC3339Nano)
	}
	return []string{csvCell(r.UserID), csvCell(r.Name), r.Role, r.FirstJoinedAt.UTC().Format(time.RFC3339Nano), left,
		strconv.FormatInt(r.PresentSeconds, 10), fmt.Sprint(r.Joins)}
}

func csvCell(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}
