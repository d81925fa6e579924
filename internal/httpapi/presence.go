package httpapi

import (
	"context"

	"github.com/google/uuid"

	"github.com/m4sh/backend/gen/api"
	"github.com/m4sh/backend/internal/presence"
)

// PresenceLister reports who is connected to a session's WebSocket.
type PresenceLister interface {
	Present(ctx context.Context, session uuid.UUID) ([]presence.User, error)
}

var _ PresenceLister = (*presence.Hub)(nil)

// ClassroomSessionPresence lists the users connected to a session now (tutor or member;
// anyone else is told the classroom does not exist).
func (s *Server) ClassroomSessionPresence(ctx context.Context, req api.ClassroomSessionPresenceRequestObject) (api.ClassroomSessionPresenceResponseObject, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := s.classrooms.GetSession(ctx, p.UserID, req.ClassId, req.SessionId); err != nil {
		return nil, err
	}
	users, err := s.presence.Present(ctx, req.SessionId)
	if err != nil {
		return nil, err
	}
	out := api.ClassroomSessionPresence200JSONResponse{Users: make([]api.PresenceUser, len(users))}
	for i, u := range users {
		out.Users[i] = api.PresenceUser{UserId: u.UserID, Name: u.Name, Role: api.Role(u.Role)}
	}
	return out, nil
}
