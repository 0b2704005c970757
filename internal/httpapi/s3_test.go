package httpapi_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/outpost/outpost/internal/blob/s3"
	"github.com/outpost/outpost/internal/controlplane"
	"github.com/outpost/outpost/internal/testenv"
)

// TestAPI_S3Artifacts runs uploads and mirror downloads against a real S3
// server (versitygw on loopback).
func TestAPI_S3Artifacts(t *testing.T) {
	cfg := testenv.S3(t)
	st, err := s3.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, mode := range []string{controlplane.DeliveryProxy, controlplane.DeliveryRedirect} {
		t.Run(mode, func(t *testing.T) {
			h := newHarness(t, func(o *controlplane.Options) { o.Blobs = st; o.Config.ArtifactDelivery = mode })
			data := bytes.Repeat([]byte("s3 artifact "), 200_000) // 2.4 MB
			t.Run("mismatch leaves no object", func(t *testing.T) {
				r := h.raw("POST", "/v1/artifacts?sha256="+sha([]byte("x")), h.admin, "application/octet-stream", bytes.NewReader(data), nil)
				if r.status != 400 {
					t.Fatalf("got %d", r.status)
				}
			})
			tenant := h.tenant("a")
			prod := h.product("p", "open")
			_, art := h.release(prod, "stable", "1.0.0", data)
			a := h.must(200, h.do("GET", "/v1/artifacts/"+art, h.admin, nil))
			if _, err := st.Stat(context.Background(), a["storage_path"].(string)); err != nil {
				t.Fatalf("object not in the bucket: %v", err)
			}
			_, cred, _ := h.mirror(tenant, "stable")
			h.snapshot(tenant)
			r := h.do("GET", "/v1/mirror/artifacts/"+art, cred, nil)
			switch mode {
			case controlplane.DeliveryProxy:
				if r.status != 200 || !bytes.Equal(r.body, data) {
					t.Fatalf("proxy: got %d, %d bytes", r.status, len(r.body))
				}
			case controlplane.DeliveryRedirect:
				loc := r.header.Get("Location")
				if r.status != 302 || loc == "" {
					t.Fatalf("redirect: got %d %q", r.status, loc)
				}
				res, err := h.client.Get(loc)
				if err != nil {
					t.Fatal(err)
				}
				defer res.Body.Close()
				var got bytes.Buffer
				got.ReadFrom(res.Body)
				if res.StatusCode != 200 || !bytes.Equal(got.Bytes(), data) {
					t.Fatalf("presigned GET: %d, %d bytes", res.StatusCode, got.Len())
				}
				if bytes.Contains([]byte(fmt.Sprint(res.Request.Header)), []byte(cred)) {
					t.Fatal("credential sent to S3")
				}
			}
			if v := h.must(200, h.do("POST", "/v1/artifacts/"+art+"/verify", h.admin, nil)); v["status"] != "VERIFIED" {
				t.Fatalf("re-verify from S3: %v", v)
			}
		})
	}
}

// TestAPI_S3Deltas builds a delta between two artifacts held in a real S3
// bucket: it is streamed from and stored back into the bucket and served
// to the mirror.
func TestAPI_S3Deltas(t *testing.T) {
	cfg := testenv.S3(t)
	st, err := s3.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, func(o *controlplane.Options) { o.Blobs = st })
	tenant := h.tenant("a")
	prod := h.product("p", "open")
	v1 := bytes.Repeat([]byte("s3 delta base "), 100_000)
	v2 := append(bytes.Clone(v1), "and a new tail"...)
	h.release(prod, "stable", "1.0.0", v1)
	rel2, _ := h.release(prod, "stable", "1.1.0", v2)
	_, cred, _ := h.mirror(tenant, "stable")
	h.snapshot(tenant)
	if ran, err := h.app.RunDeltaJob(context.Background()); !ran || err != nil {
		t.Fatalf("RunDeltaJob: %v, %v", ran, err)
	}
	jobs, err := h.app.ReleaseDeltas(h.operator(), rel2)
	if err != nil || len(jobs) != 1 || !jobs[0].Offered {
		t.Fatalf("jobs %+v, %v: want one offered", jobs, err)
	}
	if info, err := st.Stat(context.Background(), "deltas/"+jobs[0].DeltaID); err != nil || info.Size != jobs[0].SizeBytes {
		t.Fatalf("delta object: %+v, %v", info, err)
	}
	r := h.do("GET", "/v1/mirror/deltas/"+jobs[0].DeltaID, cred, nil)
	if r.status != 200 || int64(len(r.body)) != jobs[0].SizeBytes || sha(r.body) != jobs[0].SHA256 {
		t.Fatalf("mirror delta download: %d, %d bytes", r.status, len(r.body))
	}
	if r := h.do("GET", fmt.Sprintf("/v1/mirror/deltas/%s", "dlt_00000000000000000000000000"), cred, nil); r.status != 404 {
		t.Errorf("unknown delta: %d, want 404", r.status)
	}
}
