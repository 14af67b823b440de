package resolvers

import (
	"github.com/amas-eye/amas/auth"
	"github.com/amas-eye/amas/graph/model"
)

func userOf(p auth.Principal) *model.User {
	if p.TokenID != 0 {
		return &model.User{Username: p.TokenName, Role: p.Role, APIToken: true}
	}
	return &model.User{Username: p.Username, Role: p.Role}
}
