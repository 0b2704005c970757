package sitepage_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/outpost/outpost/internal/sitepage"
	"github.com/outpost/outpost/internal/sitepage/sitepagetest"
)

// The mirror serves its status page at "/" and the upload under /site/;
// the JSON API keeps its /v1/ routes, which are more specific.
func ExampleNew() {
	page, err := sitepage.New(sitepage.Options{Backend: sitepagetest.New(time.Now, "admin-token")})
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	mux.Handle("GET /{$}", page)
	mux.Handle("/site/", page)
	// mux.Handle("GET /v1/status", statusJSON) …

	w := httptest.NewRecorder()
	mux.ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
	fmt.Println(w.Code, w.Header().Get("Content-Type"))
	// Output: 200 text/html; charset=utf-8
}
