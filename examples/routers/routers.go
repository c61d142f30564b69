// Package routers shows stepup's net/http middleware under chi, gin and
// echo. The README's snippets are copies of these functions, which this
// example module compiles and tests (the SDK's go.mod depends on none of
// the routers).
package routers

import (
	"net/http"
	"time"

	"github.com/gin-gonic/gin"
	"github.com/go-chi/chi/v5"
	"github.com/labstack/echo/v4"
	"github.com/stepupauth/stepup"
)

var salaries = stepup.MFA.WithMaxAge(5 * time.Minute).Named("salaries")

// Chi: chi's middleware is net/http's, so the Client's plugs in as is.
func Chi(client *stepup.Client) http.Handler {
	r := chi.NewRouter()
	r.Get("/callback", client.CallbackHandler().ServeHTTP)
	r.Get("/login", client.LoginHandler().ServeHTTP)
	r.Group(func(r chi.Router) {
		r.Use(client.RequireLogin)
		r.Get("/", func(w http.ResponseWriter, r *http.Request) {
			s, _ := stepup.SessionFromContext(r.Context())
			w.Write([]byte("hello " + s.Name))
		})
	})
	r.With(client.RequireStepUp(salaries)).Get("/salaries", func(w http.ResponseWriter, r *http.Request) {
		s, _ := stepup.SessionFromContext(r.Context())
		w.Write([]byte("salaries for " + s.Subject))
	})
	return r
}

// GinMiddleware adapts a net/http middleware (RequireLogin, RequireStepUp)
// to gin: the request goes on (c.Next) only when the middleware calls its
// next handler, with the request it passes (its context holds the session);
// otherwise the middleware has answered (a redirect or a 401) and the chain
// stops.
func GinMiddleware(mw func(http.Handler) http.Handler) gin.HandlerFunc {
	return func(c *gin.Context) {
		passed := false
		mw(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			passed = true
			c.Request = r
			c.Next()
		})).ServeHTTP(c.Writer, c.Request)
		if !passed {
			c.Abort()
		}
	}
}

// Gin mounts the handlers with gin.WrapH and the middleware with
// GinMiddleware.
func Gin(client *stepup.Client) http.Handler {
	r := gin.New()
	r.GET("/callback", gin.WrapH(client.CallbackHandler()))
	r.GET("/login", gin.WrapH(client.LoginHandler()))
	r.GET("/salaries", GinMiddleware(client.RequireStepUp(salaries)), func(c *gin.Context) {
		s, _ := stepup.SessionFromContext(c.Request.Context())
		c.String(http.StatusOK, "salaries for %s", s.Subject)
	})
	return r
}

// Echo mounts the handlers with echo.WrapHandler and the middleware with
// echo.WrapMiddleware (echo's own adapter).
func Echo(client *stepup.Client) http.Handler {
	e := echo.New()
	e.GET("/callback", echo.WrapHandler(client.CallbackHandler()))
	e.GET("/login", echo.WrapHandler(client.LoginHandler()))
	e.GET("/salaries", func(c echo.Context) error {
		s, _ := stepup.SessionFromContext(c.Request().Context())
		return c.String(http.StatusOK, "salaries for "+s.Subject)
	}, echo.WrapMiddleware(client.RequireStepUp(salaries)))
	return e
}
