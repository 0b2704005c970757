package httpapi

import (
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"strconv"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/controlplane"
	"github.com/outpost/outpost/internal/update"
	"github.com/outpost/outpost/internal/wire"
)

// The handlers below are the routes whose bodies are not JSON both ways:
// uploads, downloads, envelopes and tar streams.

// createArtifact stores a MANAGED artifact from a raw or multipart body
// (hashing while it streams), or records an EXTERNAL one from a JSON body.
func (s *Server) createArtifact(w http.ResponseWriter, r *http.Request) error {
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch ct {
	case "application/json":
		r.Body = http.MaxBytesReader(w, r.Body, s.MaxBodyBytes)
		return create(http.StatusCreated, func(r *http.Request, in controlplane.ExternalInput) (*catalog.Artifact, error) {
			return s.App.CreateExternalArtifact(r.Context(), in)
		})(w, r)
	case "multipart/form-data":
		return s.uploadMultipart(w, r)
	default:
		q := r.URL.Query()
		in, err := uploadInput(q.Get("sha256"), q.Get("size_bytes"))
		if err != nil {
			return err
		}
		in.Length = r.ContentLength
		return s.upload(w, r, r.Body, in)
	}
}

func uploadInput(sha, size string) (controlplane.UploadInput, error) {
	in := controlplane.UploadInput{SHA256: sha, SizeBytes: -1, Length: -1}
	if size != "" {
		n, err := strconv.ParseInt(size, 10, 64)
		if err != nil || n < 0 {
			return in, catalog.Invalid("size_bytes", "must be a non-negative integer")
		}
		in.SizeBytes = n
	}
	return in, nil
}

func (s *Server) upload(w http.ResponseWriter, r *http.Request, body io.Reader, in controlplane.UploadInput) error {
	a, err := s.App.UploadArtifact(r.Context(), body, in)
	if err != nil {
		return err
	}
	wire.WriteJSON(w, http.StatusCreated, a)
	return nil
}

// uploadMultipart reads the form fields sha256 and size_bytes (which must
// come before the file part) and streams the part named "file".
func (s *Server) uploadMultipart(w http.ResponseWriter, r *http.Request) error {
	mr, err := r.MultipartReader()
	if err != nil {
		return catalog.Invalid("body", "malformed multipart body: %v", err)
	}
	fields := map[string]string{}
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			return catalog.Invalid("file", "multipart body has no part named \"file\"")
		}
		if err != nil {
			return catalog.Invalid("body", "malformed multipart body: %v", err)
		}
		name := part.FormName()
		if name == "file" {
			in, err := uploadInput(fields["sha256"], fields["size_bytes"])
			if err != nil {
				return err
			}
			return s.upload(w, r, part, in)
		}
		if name != "sha256" && name != "size_bytes" {
			return catalog.Invalid(name, "unknown form field")
		}
		v, err := io.ReadAll(io.LimitReader(part, 128))
		if err != nil {
			return catalog.Invalid(name, "unreadable form field")
		}
		fields[name] = string(v)
	}
}

// downloadArtifact serves an artifact the caller may download: bytes
// (with Range), or a redirect to a presigned or external URL.
func (s *Server) downloadArtifact(w http.ResponseWriter, r *http.Request) error {
	d, err := s.App.OpenArtifact(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	if d.Redirect != "" {
		http.Redirect(w, r, d.Redirect, http.StatusFound)
		return nil
	}
	defer d.Body.Close()
	w.Header().Set("ETag", `"`+d.Artifact.SHA256+`"`)
	w.Header().Set(wire.HeaderChecksum, d.Artifact.SHA256)
	w.Header().Set("Content-Type", "application/octet-stream")
	if rs, ok := d.Body.(io.ReadSeeker); ok {
		http.ServeContent(w, r, "", d.ModTime, rs)
		return nil
	}
	w.Header().Set("Content-Length", strconv.FormatInt(d.Artifact.SizeBytes, 10))
	_, err = io.Copy(w, d.Body)
	return s.abortOn(r, err)
}

// downloadDelta serves an offered delta the caller may download, with
// Range.
func (s *Server) downloadDelta(w http.ResponseWriter, r *http.Request) error {
	d, err := s.App.OpenDelta(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	defer d.Body.Close()
	w.Header().Set("ETag", `"`+d.Delta.SHA256+`"`)
	w.Header().Set(wire.HeaderChecksum, d.Delta.SHA256)
	w.Header().Set("Content-Type", "application/octet-stream")
	if rs, ok := d.Body.(io.ReadSeeker); ok {
		http.ServeContent(w, r, "", d.ModTime, rs)
		return nil
	}
	w.Header().Set("Content-Length", strconv.FormatInt(d.Delta.SizeBytes, 10))
	_, err = io.Copy(w, d.Body)
	return s.abortOn(r, err)
}

// getSnapshot answers the envelope bytes exactly as stored.
func (s *Server) getSnapshot(w http.ResponseWriter, r *http.Request) error {
	snap, err := s.App.Snapshot(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	writeEnvelope(w, snap)
	return nil
}

// mirrorSnapshot answers the tenant's newest envelope verbatim, or 304
// when the mirror already holds it (?after=N).
func (s *Server) mirrorSnapshot(w http.ResponseWriter, r *http.Request) error {
	after, err := int64Param(r, "after")
	if err != nil {
		return err
	}
	snap, err := s.App.LatestSnapshot(r.Context(), after)
	if err != nil {
		return err
	}
	if snap == nil {
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	writeEnvelope(w, snap)
	return nil
}

func writeEnvelope(w http.ResponseWriter, snap *catalog.Snapshot) {
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(snap.Envelope)))
	h.Set("ETag", `"`+snap.Hash+`"`)
	h.Set(wire.HeaderSequence, strconv.FormatInt(snap.Sequence, 10))
	h.Set(wire.HeaderSnapshotID, snap.SnapshotID)
	w.WriteHeader(http.StatusOK)
	w.Write(snap.Envelope)
}

// exportBundle streams a bundle: GET /v1/tenants/{id}/bundle?since=&mirror_id=&format=&no_deltas=
func (s *Server) exportBundle(w http.ResponseWriter, r *http.Request) error {
	since, err := int64Param(r, "since")
	if err != nil {
		return err
	}
	o := controlplane.BundleOptions{TenantID: r.PathValue("id"), Since: since, MirrorID: r.URL.Query().Get("mirror_id"), Format: r.URL.Query().Get("format")}
	switch v := r.URL.Query().Get("no_deltas"); v {
	case "", "false", "0":
	case "true", "1":
		o.NoDeltas = true
	default:
		return catalog.Invalid("no_deltas", "must be true or false, not %q", v)
	}
	// What the bundle holds (its size, what deltas saved) is known only
	// at its end: it follows the tar as a trailer.
	w.Header().Set("Trailer", wire.HeaderBundleResult)
	sw := &stream{w: w, contentType: "application/x-tar"}
	res, err := s.App.ExportBundle(r.Context(), o, sw)
	if err = s.finish(r, sw, err); err != nil {
		return err
	}
	if b, jerr := json.Marshal(res); jerr == nil && res != nil {
		w.Header().Set(wire.HeaderBundleResult, string(b))
	}
	return nil
}

// backup streams a consistent copy of the catalog: GET /v1/admin/backup.
func (s *Server) backup(w http.ResponseWriter, r *http.Request) error {
	sw := &stream{w: w, contentType: "application/octet-stream"}
	_, err := s.App.Backup(r.Context(), sw)
	return s.finish(r, sw, err)
}

// stream writes a streamed answer's headers at its first byte, so an
// error found before it is still answered with its status; after it, a
// failure can only cut the stream.
type stream struct {
	w           http.ResponseWriter
	contentType string
	started     bool
}

func (s *stream) Write(b []byte) (int, error) {
	if !s.started {
		s.started = true
		s.w.Header().Set("Content-Type", s.contentType)
		s.w.WriteHeader(http.StatusOK)
	}
	return s.w.Write(b)
}

// finish ends a streamed answer: an error before the first byte is
// answered normally, one after it cuts the stream.
func (s *Server) finish(r *http.Request, sw *stream, err error) error {
	if err != nil && sw.started {
		return s.abortOn(r, err)
	}
	if err == nil && !sw.started {
		sw.Write(nil)
	}
	return err
}

// abortOn cuts the connection when a streamed answer failed after its
// first byte, so the client sees a truncated answer, never a complete
// wrong one.
func (s *Server) abortOn(r *http.Request, err error) error {
	if err != nil {
		s.Log.Error("answer failed mid-stream", "path", r.URL.Path, "err", err)
		panic(http.ErrAbortHandler)
	}
	return nil
}

// updatesCheck answers a tenant's client from the tenant's latest snapshot
// with the same engine and document as the mirror.
func (s *Server) updatesCheck(w http.ResponseWriter, r *http.Request) error {
	e, err := s.App.UpdateEngine(r.Context())
	if err != nil {
		return err
	}
	update.Handle(w, r, e, s.App.Now())
	return nil
}

// ingestAudit takes a mirror's exported audit chain.
// importMirrorAudit ingests an audit export carried from an air-gapped
// mirror (admin).
func (s *Server) importMirrorAudit(w http.ResponseWriter, r *http.Request) error {
	r.Body = http.MaxBytesReader(w, r.Body, controlplane.MaxAuditUpload)
	res, err := s.App.ImportMirrorAudit(r.Context(), r.Body)
	if err != nil {
		return err
	}
	wire.WriteJSON(w, http.StatusOK, res)
	return nil
}

func (s *Server) ingestAudit(w http.ResponseWriter, r *http.Request) error {
	r.Body = http.MaxBytesReader(w, r.Body, controlplane.MaxAuditUpload)
	res, err := s.App.IngestAudit(r.Context(), r.Body)
	if err != nil {
		return err
	}
	wire.WriteJSON(w, http.StatusOK, res)
	return nil
}
