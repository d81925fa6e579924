package httpapi

import (
	"context"

	"github.com/m4sh/backend/gen/api"
	"github.com/m4sh/backend/internal/classroom"
	"github.com/m4sh/backend/internal/page"
)

func classroomDTO(c classroom.Classroom) api.Classroom {
	return api.Classroom{Id: c.ID, Title: c.Title, TutorId: c.TutorID, CreatedAt: c.CreatedAt}
}

func memberDTO(m classroom.Member) api.Member {
	return api.Member{UserId: m.UserID, Name: m.Name, Role: api.Role(m.Role), JoinedAt: m.JoinedAt}
}

func sessionDTO(s classroom.Session) api.ClassroomSession {
	return api.ClassroomSession{Id: s.ID, ClassroomId: s.ClassroomID, Title: s.Title,
		Status: api.SessionStatus(s.Status), StartedAt: s.StartedAt, EndedAt: s.EndedAt}
}

// ClassroomCreate makes the caller the tutor of a new classroom.
func (s *Server) ClassroomCreate(ctx context.Context, req api.ClassroomCreateRequestObject) (api.ClassroomCreateResponseObject, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	title, err := cleanTitle("body.title", &req.Body.Title, true)
	if err != nil {
		return nil, err
	}
	c, err := s.classrooms.Create(ctx, p.UserID, title)
	if err != nil {
		return nil, err
	}
	return api.ClassroomCreate201JSONResponse(classroomDTO(c)), nil
}

// ClassroomList pages through the caller's classrooms.
func (s *Server) ClassroomList(ctx context.Context, req api.ClassroomListRequestObject) (api.ClassroomListResponseObject, error) {
	items, next, err := listPage(ctx, req.Params.Limit, req.Params.Cursor, s.classrooms.List, classroomDTO)
	if err != nil {
		return nil, err
	}
	return api.ClassroomList200JSONResponse{Items: items, NextCursor: next}, nil
}

// ClassroomGet returns one classroom.
func (s *Server) ClassroomGet(ctx context.Context, req api.ClassroomGetRequestObject) (api.ClassroomGetResponseObject, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	c, _, err := s.classrooms.Get(ctx, p.UserID, req.ClassId)
	if err != nil {
		return nil, err
	}
	return api.ClassroomGet200JSONResponse(classroomDTO(c)), nil
}

// ClassroomMemberList returns the roster.
func (s *Server) ClassroomMemberList(ctx context.Context, req api.ClassroomMemberListRequestObject) (api.ClassroomMemberListResponseObject, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	ms, err := s.classrooms.Members(ctx, p.UserID, req.ClassId)
	if err != nil {
		return nil, err
	}
	out := api.ClassroomMemberList200JSONResponse{Items: make([]api.Member, len(ms))}
	for i, m := range ms {
		out.Items[i] = memberDTO(m)
	}
	return out, nil
}

// ClassroomMemberAdd adds a member: 201 when new, 200 when already one.
func (s *Server) ClassroomMemberAdd(ctx context.Context, req api.ClassroomMemberAddRequestObject) (api.ClassroomMemberAddResponseObject, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	if err := checkUserID("body.user_id", req.Body.UserId); err != nil {
		return nil, err
	}
	m, created, err := s.classrooms.AddMember(ctx, p.UserID, req.ClassId, req.Body.UserId)
	if err != nil {
		return nil, err
	}
	if created {
		return api.ClassroomMemberAdd201JSONResponse(memberDTO(m)), nil
	}
	return api.ClassroomMemberAdd200JSONResponse(memberDTO(m)), nil
}

// ClassroomMemberRemove removes a member.
func (s *Server) ClassroomMemberRemove(ctx context.Context, req api.ClassroomMemberRemoveRequestObject) (api.ClassroomMemberRemoveResponseObject, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	if err := checkUserID("path.user_id", req.UserId); err != nil {
		return nil, err
	}
	if err := s.classrooms.RemoveMember(ctx, p.UserID, req.ClassId, req.UserId); err != nil {
		return nil, err
	}
	return api.ClassroomMemberRemove204Response{}, nil
}

// ClassroomSessionCreate starts a session.
func (s *Server) ClassroomSessionCreate(ctx context.Context, req api.ClassroomSessionCreateRequestObject) (api.ClassroomSessionCreateResponseObject, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	var title string
	if req.Body != nil {
		if title, err = cleanTitle("body.title", req.Body.Title, false); err != nil {
			return nil, err
		}
	}
	sess, err := s.classrooms.CreateSession(ctx, p.UserID, req.ClassId, title)
	if err != nil {
		return nil, err
	}
	return api.ClassroomSessionCreate201JSONResponse(sessionDTO(sess)), nil
}

// ClassroomSessionList pages through a classroom's sessions.
func (s *Server) ClassroomSessionList(ctx context.Context, req api.ClassroomSessionListRequestObject) (api.ClassroomSessionListResponseObject, error) {
	items, next, err := listPage(ctx, req.Params.Limit, req.Params.Cursor, func(ctx context.Context, user string, pr page.Request) ([]classroom.Session, *string, error) {
		return s.classrooms.ListSessions(ctx, user, req.ClassId, pr)
	}, sessionDTO)
	if err != nil {
		return nil, err
	}
	return api.ClassroomSessionList200JSONResponse{Items: items, NextCursor: next}, nil
}

// ClassroomSessionGet returns one session.
func (s *Server) ClassroomSessionGet(ctx context.Context, req api.ClassroomSessionGetRequestObject) (api.ClassroomSessionGetResponseObject, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	sess, err := s.classrooms.GetSession(ctx, p.UserID, req.ClassId, req.SessionId)
	if err != nil {
		return nil, err
	}
	return api.ClassroomSessionGet200JSONResponse(sessionDTO(sess)), nil
}

// ClassroomSessionUpdate ends a session.
func (s *Server) ClassroomSessionUpdate(ctx context.Context, req api.ClassroomSessionUpdateRequestObject) (api.ClassroomSessionUpdateResponseObject, error) {
	p, err := principal(ctx)
	if err != nil {
		return nil, err
	}
	sess, err := s.classrooms.EndSession(ctx, p.UserID, req.ClassId, req.SessionId)
	if err != nil {
		return nil, err
	}
	return api.ClassroomSessionUpdate200JSONResponse(sessionDTO(sess)), nil
}
