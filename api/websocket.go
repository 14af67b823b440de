package api

import (
	"context"
	"errors"
	"log/slog"
	"strings"

	"github.com/99designs/gqlgen/graphql/handler/transport"

	"github.com/amas-eye/amas/auth"
)

// closeForbidden is graphql-transport-ws's close code for a refused
// connection_init.
const closeForbidden = 4403

// maxCloseReason is the most a websocket close frame's reason may hold, in bytes.
const maxCloseReason = 123

// websocketInit checks a websocket's credentials when its connection_init
// arrives. An API token may come in the payload, as {"Authorization": "Bearer
// <token>"} (or "authorization") or {"token": "<token>"}. Without one, the
// session cookie of the upgrade request counts: auth.Middleware checked it, and
// refused it when the upgrade came from a page on another site (cross-site
// websocket hijacking); the websocket library also refuses such an Origin.
func websocketInit(a *auth.Service) transport.WebsocketInitFunc {
	return func(ctx context.Context, payload transport.InitPayload) (context.Context, *transport.InitPayload, error) {
		token, err := initToken(payload)
		if err != nil {
			return refuseInit(ctx, err)
		}
		if token != "" {
			p, err := a.CheckToken(ctx, token)
			if err != nil {
				return refuseInit(ctx, err)
			}
			return auth.WithPrincipal(ctx, p), nil, nil
		}
		if _, err := auth.Require(ctx, func(auth.Role) bool { return true }); err != nil {
			return refuseInit(ctx, err)
		}
		return ctx, nil, nil
	}
}

// initToken reads the API token of a connection_init payload; empty when there
// is none.
func initToken(payload transport.InitPayload) (string, error) {
	if h := payload.Authorization(); h != "" {
		scheme, token, _ := strings.Cut(h, " ")
		token = strings.TrimSpace(token)
		if !strings.EqualFold(scheme, "Bearer") || token == "" {
			return "", errors.New(`connection_init refused: its Authorization must read "Bearer <token>"`)
		}
		return token, nil
	}
	return payload.GetString("token"), nil
}

// refuseInit closes the websocket with 4403 and err's text as the reason: the
// graphql-transport-ws protocol has no error message for a refused init, so
// the close frame is where a client reads why.
func refuseInit(ctx context.Context, err error) (context.Context, *transport.InitPayload, error) {
	reason := err.Error()
	if !errors.Is(err, auth.ErrUnauthenticated) && !errors.Is(err, auth.ErrForbidden) && !strings.HasPrefix(reason, "connection_init") {
		// Not the client's fault (the database could not be asked).
		reason = "cannot check credentials right now; try again"
	}
	if len(reason) > maxCloseReason {
		reason = reason[:maxCloseReason]
	}
	ctx = transport.AppendCloseReason(ctx, reason)
	ctx = transport.WithWebsocketCloseCode(ctx, closeForbidden)
	return ctx, nil, errors.New(reason)
}

// websocketError logs websocket read and write failures other than the client
// going away.
func websocketError(log *slog.Logger) transport.WebsocketErrorFunc {
	return func(ctx context.Context, err error) {
		if errors.Is(err, transport.ErrWebsocketClosed) || errors.Is(err, context.Canceled) {
			return
		}
		log.Debug("websocket", "err", err)
	}
}
