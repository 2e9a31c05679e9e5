// Package ui serves evident's web UI (docs/ui.md): server-rendered HTML
// pages of the live assessment (overview, findings, a finding's evidence,
// the runtime map, a service's Runtime BOM, alerts), with a little
// JavaScript that keeps them live. Templates, styles and scripts are
// embedded: one binary, nothing fetched from elsewhere, every page usable
// without JavaScript.
//
// The UI owns the paths / and /ui/; the HTTP API (internal/httpapi) mounts
// it behind its guard, so a page shows the tenant of the request's
// credentials, like every API route.
package ui

import (
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/evidentsec/evident/internal/auth"
	"github.com/evidentsec/evident/internal/report"
	"github.com/evidentsec/evident/internal/store"
	"github.com/evidentsec/evident/internal/waf"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed assets
var assetFS embed.FS

// Source is what the pages of one tenant read: the live assessment, its
// alerts and its verdict history. Implementations are safe for
// concurrent use; the Result must not be modified.
type Source interface {
	Result() *report.Result
	// Alerts returns the alerts that match q, newest first.
	Alerts(ctx context.Context, q store.AlertQuery) ([]store.Alert, error)
	// VerdictHistory returns the verdict changes of vulnID in service,
	// newest first, at most limit (<= 0: all).
	VerdictHistory(ctx context.Context, service, vulnID string, limit int) ([]store.VerdictChange, error)
}

// Deps are what the UI reads from.
type Deps struct {
	// Tenant returns the Source of tenant id; the request's tenant is
	// the one its guard decided (auth.TenantFromContext).
	Tenant func(ctx context.Context, id string) (Source, error)
	// Patches writes and validates the virtual patches of a result, as
	// the API's /api/v1/waf/patches does; nil: the finding page shows
	// none.
	Patches func(ctx context.Context, res *report.Result) (*waf.PatchSet, error)
	// Products names what each service is deployed as, for the VEX in
	// the exports (the products setting).
	Products report.Products
	// Checks, if not nil, reports the health of the telemetry sources
	// serve polls (Tempo, Pyroscope), as /readyz shows it.
	Checks func() map[string]error
	// KEV says whether a CISA KEV catalog is loaded: without one the
	// findings table refuses a kev filter, as the API does.
	KEV    bool
	Logger *slog.Logger
	// Now is the clock of "since yesterday" and of the freshness of
	// sources; nil is time.Now.
	Now func() time.Time
}

// UI is the web UI's handler.
type UI struct {
	deps    Deps
	pages   map[string]*template.Template
	mux     *http.ServeMux
	changes changeCache
	// assetVersions are the embedded assets' versions, by file name
	// (versionsOf).
	assetVersions map[string]string
}

var _ http.Handler = (*UI)(nil)

// New parses the embedded templates and returns the UI.
func New(deps Deps) (*UI, error) {
	if deps.Tenant == nil {
		return nil, fmt.Errorf("ui: no tenant source")
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	u := &UI{deps: deps, pages: map[string]*template.Template{}, mux: http.NewServeMux(), changes: changeCache{entries: map[string]cachedChanges{}}}
	assets, err := fs.Sub(assetFS, "assets")
	if err != nil {
		return nil, fmt.Errorf("ui: assets: %w", err)
	}
	if u.assetVersions, err = versionsOf(assets); err != nil {
		return nil, fmt.Errorf("ui: assets: %w", err)
	}
	for _, page := range []string{"overview", "findings", "finding", "map", "service", "alerts", "error"} {
		t, err := template.New("layout.html").Funcs(templateFuncs(deps.Now)).Funcs(template.FuncMap{"asset": u.assetURL}).
			ParseFS(templateFS, "templates/layout.html", "templates/"+page+".html")
		if err != nil {
			return nil, fmt.Errorf("ui: parse template %s: %w", page, err)
		}
		u.pages[page] = t
	}
	u.mux.HandleFunc("GET /{$}", u.withSource(u.overview))
	u.mux.HandleFunc("GET /ui/{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, page{Tenant: namedTenant(r)}.Link("/"), http.StatusFound)
	})
	u.mux.HandleFunc("GET /ui/findings", u.withSource(u.findings))
	u.mux.HandleFunc("GET /ui/findings/{id}", u.withSource(u.finding))
	u.mux.HandleFunc("GET /ui/map", u.withSource(u.runtimeMap))
	u.mux.HandleFunc("GET /ui/services/{name}", u.withSource(u.service))
	u.mux.HandleFunc("GET /ui/services", u.withSource(u.service))
	u.mux.HandleFunc("GET /ui/alerts", u.withSource(u.alerts))
	u.mux.HandleFunc("GET /ui/export/{format}", u.withSource(u.export))
	u.mux.Handle("GET /ui/assets/", http.StripPrefix("/ui/assets/", u.cacheAssets(http.FileServerFS(assets))))
	u.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		u.fail(w, r, http.StatusNotFound, "No page at %s.", r.URL.Path)
	})
	return u, nil
}

// ServeHTTP serves the pages with headers that keep them from being
// framed or loading anything from elsewhere.
func (u *UI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	u.mux.ServeHTTP(w, r)
}

// versionsOf returns, for each file of assets, a short hash of its
// content: the version its links carry (assetURL).
func versionsOf(assets fs.FS) (map[string]string, error) {
	versions := map[string]string{}
	err := fs.WalkDir(assets, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := fs.ReadFile(assets, path)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(data)
		versions[path] = hex.EncodeToString(sum[:6])
		return nil
	})
	return versions, err
}

// assetURL is the link of the embedded asset name, with its version: a
// browser that kept the asset of another evident fetches this one's.
func (u *UI) assetURL(name string) string {
	return "/ui/assets/" + name + "?v=" + u.assetVersions[name]
}

// cacheAssets lets browsers keep an embedded asset asked for by its
// version (assetURL) for good, as nothing else is ever served under it;
// asked for otherwise, it is checked again each time. Until 2026-12-07
// every asset was kept an hour under its bare name, so a browser ran the
// script of the evident before an upgrade against the pages of the one
// after it for up to an hour. Directories are not listed.
func (u *UI) cacheAssets(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		v, ok := u.assetVersions[r.URL.Path]
		switch {
		case !ok:
			u.fail(w, r, http.StatusNotFound, "No asset at %s.", "/ui/assets/"+r.URL.Path)
			return
		case r.URL.Query().Get("v") == v:
			w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
		default:
			w.Header().Set("Cache-Control", "no-cache")
		}
		h.ServeHTTP(w, r)
	})
}

// withSource resolves the Source of the request's tenant before h runs.
func (u *UI) withSource(h func(w http.ResponseWriter, r *http.Request, src Source)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id := auth.TenantFromContext(r.Context())
		src, err := u.deps.Tenant(r.Context(), id)
		if err != nil {
			u.fail(w, r, http.StatusServiceUnavailable, "Tenant %q: %v", id, err)
			return
		}
		h(w, r, src)
	}
}

// page is what every template gets: the page's own data and the
// navigation's state.
type page struct {
	Title string
	// Nav is the navigation entry of the page.
	Nav string
	// Live is how often, in seconds, the script refreshes the page's live
	// parts; 0: never.
	Live int
	Data any
	// Tenant is the tenant the request named (a link's ?tenant=, which
	// the API's listener makes its X-Scope-OrgID) and acts in: the page's
	// links and forms keep naming it, or they would show the credentials'
	// tenant. Empty when the request named none.
	Tenant string
}

// servicePath is the path of service name's page. A name that is a dot
// segment goes in the query: a browser resolves /ui/services/.. to /ui/
// (and /ui/services/%2E%2E too, by the WHATWG URL standard), and Go's
// ServeMux redirects a path with such a segment to its cleaned form, so
// no path names that service. ui.js builds the links of alerts that
// arrive live the same way.
func servicePath(name string) string {
	if name == "." || name == ".." {
		return "/ui/services?name=" + url.QueryEscape(name)
	}
	return "/ui/services/" + url.PathEscape(name)
}

// Link returns href, a path of this server (with a query or not), with
// segments path-escaped and appended to its path, and naming the page's
// tenant in its query.
func (p page) Link(href string, segments ...string) string {
	for _, s := range segments {
		href += url.PathEscape(s)
	}
	if p.Tenant == "" {
		return href
	}
	u, err := url.Parse(href)
	if err != nil {
		return href
	}
	q := u.Query()
	q.Set(auth.TenantParam, p.Tenant)
	u.RawQuery = q.Encode()
	return u.String()
}

// Part is what a sub-template of the page gets: the page, whose Link it
// uses, and its own data.
func (p page) Part(data any) part { return part{Page: p, Data: data} }

// part is the argument of a sub-template.
type part struct {
	Page page
	Data any
}

// namedTenant is the tenant request r named and acts in, or "": the
// API's listener turns a link's ?tenant= into the X-Scope-OrgID header
// before its guard admits the tenant; a browser sends no such header
// itself.
func namedTenant(r *http.Request) string {
	if t := r.Header.Get(auth.TenantHeader); t != "" && t == auth.TenantFromContext(r.Context()) {
		return t
	}
	return ""
}

// render writes a page for request r; a template error is logged and
// answered with 500, before anything is written.
func (u *UI) render(w http.ResponseWriter, r *http.Request, status int, name string, p page) {
	if t := namedTenant(r); t != "" {
		p.Tenant = t
	}
	var buf bytes.Buffer
	if err := u.pages[name].Execute(&buf, p); err != nil {
		u.deps.Logger.Error("ui: render", "page", name, "err", err)
		http.Error(w, "internal error rendering the page", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// fail answers an error page.
func (u *UI) fail(w http.ResponseWriter, r *http.Request, status int, format string, args ...any) {
	u.render(w, r, status, "error", page{Title: http.StatusText(status), Data: fmt.Sprintf(format, args...)})
}
