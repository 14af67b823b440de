package auth

import (
	"context"
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// Authenticate returns the caller of r: an API token from
// "Authorization: Bearer <token>", else the session cookie. A cookie is only
// accepted when the request passes CheckCSRF; a bearer token needs no such
// check because a browser never attaches it on its own.
func (s *Service) Authenticate(r *http.Request) (Principal, error) {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, token, _ := strings.Cut(h, " ")
		if !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(token) == "" {
			return Principal{}, refuse(ErrUnauthenticated, `the Authorization header must read "Bearer <token>"`)
		}
		return s.CheckToken(r.Context(), strings.TrimSpace(token))
	}
	session := s.SessionToken(r)
	if session == "" {
		return Principal{}, ErrUnauthenticated
	}
	if err := CheckCSRF(r); err != nil {
		return Principal{}, err
	}
	return s.CheckSession(r.Context(), session)
}

// SessionToken returns the session secret of r's cookie; empty without one.
func (s *Service) SessionToken(r *http.Request) string {
	c, err := r.Cookie(s.opts.CookieName)
	if err != nil {
		return ""
	}
	return c.Value
}

type authErrorKey struct{}

// Middleware authenticates every request and puts the caller in its context
// (see FromContext and Require). It rejects nothing: public endpoints stay
// reachable, and a request whose credentials failed (unknown token, expired
// session, a cookie sent cross-site) goes on without a caller, carrying the
// reason so that Require and RequireWrite refuse it with that reason — a
// cross-site cookie request gets 403 "cross-site request refused", not a
// misleading "not signed in".
func (s *Service) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		next.ServeHTTP(w, r.WithContext(s.withCaller(r)))
	})
}

// withCaller returns r's context with its caller, or with the reason it has
// none.
func (s *Service) withCaller(r *http.Request) context.Context {
	p, err := s.Authenticate(r)
	if err == nil {
		return WithPrincipal(r.Context(), p)
	}
	if !errors.Is(err, ErrUnauthenticated) && !errors.Is(err, ErrForbidden) {
		s.log.Warn("authenticate request", "remote", r.RemoteAddr, "err", err)
	}
	return context.WithValue(r.Context(), authErrorKey{}, err)
}

// Require returns the caller Middleware found for ctx if can(caller's role)
// holds (pass a method expression: Role.CanRead, Role.CanEdit, ...). Without a
// caller it returns why: ErrUnauthenticated, ErrForbidden for a cross-site
// cookie, or an internal error when the database could not be asked.
func Require(ctx context.Context, can func(Role) bool) (Principal, error) {
	p, ok := FromContext(ctx)
	if !ok {
		if err, ok := ctx.Value(authErrorKey{}).(error); ok {
			return Principal{}, err
		}
		return Principal{}, ErrUnauthenticated
	}
	if !can(p.Role) {
		return Principal{}, refuse(ErrForbidden, "the %s role does not allow this", p.Role)
	}
	return p, nil
}

// RequireWrite guards ingest endpoints: it answers 401 (with
// "WWW-Authenticate: Bearer") without valid credentials and 403 when the
// caller's role cannot write data. Errors are JSON in OpenTSDB's shape,
// {"error":{"code":401,"message":"..."}}, which its clients already parse.
// It authenticates by itself when Middleware is not in front of it.
func (s *Service) RequireWrite(next http.Handler) http.Handler {
	return s.RequireWriteAnswering(next, writeJSONRefusal)
}

// RefusalWriter answers a request that auth refused with status (401, 403, 429
// or 503; the WWW-Authenticate or Retry-After header is already set) and msg,
// which says why, in the body shape the endpoint's clients parse.
type RefusalWriter func(w http.ResponseWriter, r *http.Request, status int, msg string)

// RequireWriteAnswering is RequireWrite with refusals written by refuse.
func (s *Service) RequireWriteAnswering(next http.Handler, refuse RefusalWriter) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		if _, ok := FromContext(ctx); !ok && ctx.Value(authErrorKey{}) == nil {
			ctx = s.withCaller(r)
		}
		if _, err := Require(ctx, Role.CanWrite); err != nil {
			status, msg := refusalStatus(w, err)
			refuse(w, r, status, msg)
			return
		}
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// refusalStatus is the status and message an auth error calls for, with its headers
// set on w; internal errors are logged by Middleware and answered generically.
func refusalStatus(w http.ResponseWriter, err error) (int, string) {
	var throttled *ThrottledError
	switch {
	case errors.Is(err, ErrUnauthenticated):
		w.Header().Set("WWW-Authenticate", `Bearer realm="amas"`)
		return http.StatusUnauthorized, err.Error()
	case errors.Is(err, ErrForbidden):
		return http.StatusForbidden, err.Error()
	case errors.As(err, &throttled):
		w.Header().Set("Retry-After", strconv.Itoa(throttled.seconds()))
		return http.StatusTooManyRequests, err.Error()
	}
	return http.StatusServiceUnavailable, "cannot check credentials right now; try again"
}

func writeJSONRefusal(w http.ResponseWriter, _ *http.Request, status int, msg string) {
	body := map[string]any{"error": map[string]any{"code": status, "message": msg}}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(body)
}

// SetSessionCookie hands the browser a session secret from Login. HttpOnly
// keeps it from scripts; SameSite=Lax keeps it off cross-site subrequests.
func (s *Service) SetSessionCookie(w http.ResponseWriter, session string) {
	http.SetCookie(w, s.cookie(session, int(s.opts.SessionTTL.Seconds())))
}

// ClearSessionCookie removes the session cookie, e.g. at logout.
func (s *Service) ClearSessionCookie(w http.ResponseWriter) {
	http.SetCookie(w, s.cookie("", -1))
}

func (s *Service) cookie(value string, maxAge int) *http.Cookie {
	return &http.Cookie{
		Name:     s.opts.CookieName,
		Value:    value,
		Path:     "/",
		MaxAge:   maxAge,
		HttpOnly: true,
		Secure:   s.opts.CookieSecure,
		SameSite: http.SameSiteLaxMode,
	}
}

// CheckCSRF refuses (with ErrForbidden) a state-changing request that a page
// on another site could have made a browser send. Authenticate applies it to
// every cookie-authenticated request; the GraphQL layer must also call it for
// the login mutation, which carries no cookie yet (login CSRF would sign the
// victim in as the attacker).
//
// State-changing means any method but GET, HEAD and OPTIONS, plus websocket
// handshakes: a GET that browsers send cross-site with cookies and whose
// replies a page can then read. Two checks, each enough on its own in the
// browsers it covers:
//
//   - The request must come from this origin: Sec-Fetch-Site, which browsers
//     set and pages cannot, must be "same-origin"; without it (browsers before
//     2023), Origin, or Referer when Origin is absent, must name the request's
//     Host. With none of them the request is not from a browser page.
//   - A POST must be application/json. An HTML form can only send
//     form-encoded, multipart or text/plain bodies, and a cross-site script
//     can send JSON only after a CORS preflight, which Amas never approves.
//
// That is enough for GraphQL because queries and mutations arrive as JSON
// POSTs and subscriptions over the websocket; a GraphQL GET may only run
// queries (gqlgen's GET transport refuses mutations), whose answers the
// same-origin policy keeps from the attacking page.
func CheckCSRF(r *http.Request) error {
	if !stateChanging(r) {
		return nil
	}
	if err := checkSameOrigin(r); err != nil {
		return err
	}
	if r.Method == http.MethodPost && !isJSON(r.Header.Get("Content-Type")) {
		return refuse(ErrForbidden, "request refused: a POST signed in by cookie must have Content-Type application/json")
	}
	return nil
}

func stateChanging(r *http.Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return strings.EqualFold(r.Header.Get("Upgrade"), "websocket")
	}
	return true
}

func checkSameOrigin(r *http.Request) error {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "same-origin":
		return nil
	case "":
	default:
		return refuse(ErrForbidden, "cross-site request refused: it was sent from a page on another site")
	}
	source := r.Header.Get("Origin")
	if source == "" {
		source = r.Header.Get("Referer")
	}
	if source == "" {
		return nil
	}
	u, err := url.Parse(source)
	if err != nil || !strings.EqualFold(u.Host, r.Host) {
		return refuse(ErrForbidden, "cross-site request refused: it was sent from %q, not from %q "+
			"(a proxy in front of Amas must pass the Host header on)", originOf(u), r.Host)
	}
	return nil
}

// originOf names where a request came from without echoing a Referer's path
// and query, which may hold secrets.
func originOf(u *url.URL) string {
	if u == nil || u.Host == "" {
		return "an unknown origin"
	}
	return u.Scheme + "://" + u.Host
}

func isJSON(contentType string) bool {
	mediaType, _, err := mime.ParseMediaType(contentType)
	return err == nil && mediaType == "application/json"
}
