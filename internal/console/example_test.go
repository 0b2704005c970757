package console_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/outpost/outpost/internal/console"
	"github.com/outpost/outpost/internal/console/consoletest"
)

// The control plane mounts the console under /console/ next to its API;
// the backend is its application layer (here the in-memory fake).
func ExampleNew() {
	backend := consoletest.New(time.Now)
	c, err := console.New(console.Options{Backend: backend})
	if err != nil {
		panic(err)
	}
	mux := http.NewServeMux()
	mux.Handle("/console/", c)
	// mux.Handle("/v1/", api) …

	w := httptest.NewRecorder()
	mux.ServeHTTP(w, httptest.NewRequest("GET", "/console/products", nil))
	fmt.Println(w.Code, w.Header().Get("Location"))
	// Output: 303 /console/signin?next=%2Fconsole%2Fproducts
}
