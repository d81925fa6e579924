package httpapi

import (
	"context"
	"time"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/m4sh/backend/gen/api"
	"github.com/m4sh/backend/internal/clienttext"
	"github.com/m4sh/backend/internal/devtoken"
)

// devOnlyExt marks operations that exist only with DEV_TOKENS=1 (Deps.DevTokens set).
const devOnlyExt = "x-m4sh-dev-only"

// DevTokens mints dev sign-in tokens (devtoken.Minter); nil turns the dev routes off.
type DevTokens interface {
	Users() []devtoken.User
	Mint(userID, name string) (devtoken.Token, error)
}

// withoutDevRoutes returns doc without the paths of dev-only operations, for routing when
// DEV_TOKENS is off: the validator then answers them 404 "no such route", byte for byte what
// an unknown path gets, so that a deployment does not even reveal they could exist. doc
// itself (shared with /docs) is left alone.
func withoutDevRoutes(doc *openapi3.T) *openapi3.T {
	paths := openapi3.NewPaths()
	for path, item := range doc.Paths.Map() {
		dev := false
		for _, op := range item.Operations() {
			if _, ok := op.Extensions[devOnlyExt]; ok {
				dev = true
			}
		}
		if !dev {
			paths.Set(path, item)
		}
	}
	out := *doc
	out.Paths = paths
	return &out
}

// DevUserList lists the users of the demo's sign-in picker.
func (s *Server) DevUserList(ctx context.Context, _ api.DevUserListRequestObject) (api.DevUserListResponseObject, error) {
	users := s.devTokens.Users()
	items := make([]api.DevUser, len(users))
	for i, u := range users {
		items[i] = api.DevUser{UserId: u.ID, Name: u.Name, Role: api.Role(u.Role)}
	}
	return api.DevUserList200JSONResponse{Items: items}, nil
}

// DevTokenCreate mints a short-lived access token for any valid user id.
func (s *Server) DevTokenCreate(ctx context.Context, req api.DevTokenCreateRequestObject) (api.DevTokenCreateResponseObject, error) {
	if err := checkUserID("body.user_id", req.Body.UserId); err != nil {
		return nil, err
	}
	name := ""
	if req.Body.Name != nil {
		name = clienttext.Clean(*req.Body.Name)
	}
	tok, err := s.devTokens.Mint(req.Body.UserId, name)
	if err != nil {
		return nil, err
	}
	return api.DevTokenCreate201JSONResponse{
		AccessToken: tok.AccessToken, TokenType: api.Bearer, ExpiresIn: int(devtoken.TTL / time.Second),
		ExpiresAt: tok.ExpiresAt.UTC(), UserId: tok.UserID, Name: tok.Name,
	}, nil
}
