// Package webui holds what the vendor console and the site status page
// share in the browser: the stylesheet (base.css) and the live relative
// times (times.js), embedded so an air-gapped site needs nothing else.
package webui

import (
	"embed"
	"errors"
	"io/fs"
)

//go:embed base.css times.js
var shared embed.FS

// Static returns own (a page's static files) with the shared files
// beside it: a name own lacks is looked up in base.css and times.js.
func Static(own fs.FS) fs.FS { return union{own} }

type union struct{ own fs.FS }

func (u union) Open(name string) (fs.File, error) {
	f, err := u.own.Open(name)
	if errors.Is(err, fs.ErrNotExist) {
		return shared.Open(name)
	}
	return f, err
}
