package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/outpost/outpost/internal/testenv"
)

// smallDisk mounts a tmpfs of size bytes on a fresh directory (unmounted
// at cleanup). Outside CI a failing mount skips the test; under CI=true
// it fails it.
func smallDisk(t *testing.T, size int64) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "outpost-rel-disk-")
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("mount", "-t", "tmpfs", "-o", fmt.Sprintf("size=%d,mode=0755", size), "tmpfs", dir).CombinedOutput()
	if err != nil {
		os.Remove(dir)
		skipOrFail(t, "cannot mount a tmpfs for the full-disk test (needs root): %v: %s", err, out)
	}
	t.Cleanup(func() {
		exec.Command("umount", "-l", dir).Run()
		os.RemoveAll(dir)
	})
	return dir
}

// fill writes a filler file until the filesystem holding path is full
// (leaving free bytes, 0 for completely full) and returns its path.
func fill(t *testing.T, dir string, free int64) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		t.Fatal(err)
	}
	avail := int64(st.Bavail) * st.Bsize
	chunk := make([]byte, 64<<10)
	for left := avail - free; left > 0; {
		n := min(left, int64(len(chunk)))
		w, err := f.Write(chunk[:n])
		left -= int64(w)
		if err != nil {
			break // full: what we wanted
		}
	}
	return path
}

// newMirrorIn is newMirror with the data dir given (a mount point).
func newMirrorIn(t *testing.T, tl tools, name, dir string, c mirrorConfig) *mirrorDaemon {
	t.Helper()
	m := &mirrorDaemon{t: t, tools: tl, name: "mirror " + name, dir: dir, addr: testenv.FreePort(t), tenant: c.tenant}
	m.url = "http://" + m.addr
	out := mustRun(t, baseEnv(), tl.mirror, "init", "--data-dir", m.dir, "--tenant-id", c.tenant,
		"--root-file", c.root, "--output", "json")
	var res struct {
		Config    string `json:"config"`
		PublicKey string `json:"public_key"`
	}
	if err := json.Unmarshal([]byte(out), &res); err != nil || res.PublicKey == "" {
		t.Fatalf("mirror init printed %q: %v", out, err)
	}
	m.config, m.publicKey = res.Config, res.PublicKey
	m.configure(c)
	return m
}

const enospc = "no space left on device"

// TestFaults_MirrorDiskFull puts a mirror's data dir on a small tmpfs and
// fills it while a sync downloads (slowed by a bandwidth toxic so the
// fill lands mid-download) and again during an import. The error must
// name ENOSPC, the held snapshot keep being served whole, `mirror verify`
// stay clean, and once the filler is deleted the next sync (and import)
// commits without any other intervention.
func TestFaults_MirrorDiskFull(t *testing.T) {
	if testing.Short() {
		t.Skip("fault suite: real daemons")
	}
	disk := smallDisk(t, 6<<20)
	tl := buildTools(t)
	cp := newControlPlane(t, tl, nil)
	cp.serve()
	files := t.TempDir()
	tenant := cp.cli("tenant", "create", "Fullco")
	product := cp.cli("product", "create", "Fullware", "--distribution", "open")
	f1, _ := randomFile(t, files, "full-1.tar.gz", 256<<10)
	cp.release(product, "1.0.0", f1)
	_, seq1 := cp.snapshot(tenant)

	link := newFaultLink(t, "disk-cp", cp.addr)
	root := cp.rootFile(tenant)
	m := newMirrorIn(t, tl, "full-disk", disk, mirrorConfig{tenant: tenant, root: root, source: "none"})
	_, cred := cp.registerMirror(tenant, "full-disk", m.publicKey)
	m.configure(mirrorConfig{tenant: tenant, root: root, source: "controlplane", vendorURL: "http://" + link.addr, credential: cred})
	m.serve()
	m.waitSequence(seq1)

	// Snapshot 2 brings 2 MiB, downloaded at 512 KB/s; the disk fills
	// one second into the download.
	f2, sum2 := randomFile(t, files, "full-2.tar.gz", 2<<20)
	cp.release(product, "2.0.0", f2)
	link.toxic("bw", "bandwidth", "downstream", 1, map[string]any{"rate": 512})
	_, seq2 := cp.snapshot(tenant)
	deadline := time.Now().Add(10 * time.Second)
	for {
		parts, _ := filepath.Glob(filepath.Join(disk, "blobs", "tmp", "*"))
		if len(parts) > 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond)
	filler := fill(t, disk, 0)
	link.clear()

	t.Run("the sync fails naming ENOSPC and the held snapshot is served", func(t *testing.T) {
		deadline := time.Now().Add(20 * time.Second)
		where := ""
		for where == "" && time.Now().Before(deadline) {
			st := m.status()
			if st.LastSync != nil && !st.LastSync.OK && strings.Contains(st.LastSync.Error, enospc) {
				where = "GET /v1/status last_sync.error: " + st.LastSync.Error
			} else if strings.Contains(m.proc.logTail(), enospc) {
				where = "the log"
			}
			time.Sleep(100 * time.Millisecond)
		}
		if where == "" {
			t.Fatalf("no error naming %q within 20s; status %+v; log:\n%s", enospc, m.status(), m.proc.logTail())
		}
		t.Logf("ENOSPC reported in %s", where)
		if m.proc.exited() {
			t.Fatalf("the mirror exited on a full disk; log:\n%s", m.proc.logTail())
		}
		if st := m.status(); st.Snapshot == nil || st.Snapshot.Sequence != seq1 {
			t.Errorf("while full: the mirror holds %+v, want snapshot %d", st.Snapshot, seq1)
		}
		if _, bad := servedWholeOnce(m); bad != nil {
			t.Errorf("while full: %v", bad)
		}
	})

	t.Run("recovery once space returns", func(t *testing.T) {
		if err := os.Remove(filler); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		m.waitSequence(seq2)
		figure(t, "disk/mirror-sync", "ENOSPC mid-download named; snapshot %d served throughout; sequence %d committed %v after the filler was deleted", seq1, seq2, time.Since(start).Round(10*time.Millisecond))
		code, body := get(t, m.url+"/v1/artifacts/by-sha256/"+sum2)
		if code != http.StatusOK || sum(body) != sum2 {
			t.Errorf("after recovery: artifact %s = %d, sha256 %s", sum2, code, sum(body))
		}
	})

	t.Run("import on a full disk fails clearly and recovers", func(t *testing.T) {
		// Stopped first: a running mirror would sync snapshot 3 from
		// the control plane before the bundle could carry it.
		m.stop()
		f3, _ := randomFile(t, files, "full-3.tar.gz", 1<<20)
		cp.release(product, "3.0.0", f3)
		_, seq3 := cp.snapshot(tenant)
		bundle := cp.exportBundle(tenant, seq2)
		filler := fill(t, disk, 128<<10)
		r := m.cmd("import", bundle)
		if r.code == 0 {
			t.Fatalf("import into a full disk succeeded: %s", r.stdout)
		}
		if !strings.Contains(r.stderr, enospc) {
			t.Errorf("import error %q does not name ENOSPC", r.stderr)
		}
		if seq := m.heldSequence(); seq != seq2 {
			t.Errorf("after the failed import the mirror holds %d, want %d", seq, seq2)
		}
		verifyClean(t, m)
		os.Remove(filler)
		if r := m.cmd("import", bundle); r.code != 0 {
			t.Fatalf("import after space returned: exit %d: %s", r.code, r.stderr)
		}
		if seq := m.heldSequence(); seq != seq3 {
			t.Errorf("after the import the mirror holds %d, want %d", seq, seq3)
		}
		verifyClean(t, m)
		figure(t, "disk/mirror-import", "import on a full disk exits %d naming ENOSPC, holds %d, verify clean; the same bundle imports once space returns", r.code, seq2)
	})
}

// servedWholeOnce checks once that the mirror serves a whole snapshot.
func servedWholeOnce(m *mirrorDaemon) (int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	return servedWholeN(ctx, m, 1)
}

// TestFaults_ControlPlaneBlobDiskFull puts the control plane's blob dir
// on a small tmpfs and fills it: an upload must fail with a clear error
// naming ENOSPC, leave no artifact and no half object behind, and work
// once space returns.
func TestFaults_ControlPlaneBlobDiskFull(t *testing.T) {
	if testing.Short() {
		t.Skip("fault suite: real daemons")
	}
	disk := smallDisk(t, 4<<20)
	tl := buildTools(t)
	cp := newControlPlaneEnv(t, tl, "", "OUTPOST_BLOB_DIR="+disk)
	cp.serve()
	files := t.TempDir()
	path, want := randomFile(t, files, "big.bin", 1<<20)
	filler := fill(t, disk, 256<<10)
	before := dirFiles(t, disk)

	body, _ := os.ReadFile(path)
	code, raw := uploadRaw(t, cp, body)
	if code/100 == 2 {
		t.Fatalf("upload into a full blob dir = %d %s, want an error", code, raw)
	}
	if code/100 != 5 {
		t.Errorf("upload into a full blob dir = %d %s, want a 5xx", code, raw)
	}
	failCode, failBody := code, strings.TrimSpace(string(raw))
	t.Run("the API answer names the lack of space", func(t *testing.T) {
		if failCode != http.StatusInsufficientStorage {
			t.Errorf("status = %d, want %d", failCode, http.StatusInsufficientStorage)
		}
		if !strings.Contains(failBody, `"code":"insufficient_storage"`) || !strings.Contains(failBody, "out of space") {
			t.Errorf("answer = %s, want code insufficient_storage and a message naming the lack of space", failBody)
		}
	})
	time.Sleep(100 * time.Millisecond) // the log line is written after the answer
	if !strings.Contains(cp.proc.logTail(), enospc) {
		t.Errorf("the control plane log does not name ENOSPC; log:\n%s", cp.proc.logTail())
	}
	if after := dirFiles(t, disk); !slicesEqual(after, before) {
		t.Errorf("blob dir after the failed upload holds %v, want only %v (no half object)", after, before)
	}
	var events struct {
		Items []struct {
			EventType string `json:"event_type"`
		} `json:"items"`
	}
	cp.api("GET", "/v1/audit-events?event_type=artifact.created", cp.admin, nil, &events, http.StatusOK)
	if len(events.Items) != 0 {
		t.Errorf("a failed upload left %d artifact.created events", len(events.Items))
	}
	os.Remove(filler)
	code, raw = uploadRaw(t, cp, body)
	if code != http.StatusCreated {
		t.Fatalf("upload after space returned = %d %s", code, raw)
	}
	var a struct {
		SHA256 string `json:"sha256"`
		Status string `json:"status"`
	}
	json.Unmarshal(raw, &a)
	if a.SHA256 != want || a.Status != "VERIFIED" {
		t.Errorf("upload after space returned: %+v, want VERIFIED %s", a, want)
	}
	figure(t, "disk/controlplane-blob", "upload into a full blob dir = %d %s (the log names ENOSPC), no half object, no artifact; the same upload = 201 VERIFIED once space returned", failCode, failBody)
}

func uploadRaw(t *testing.T, cp *controlPlane, body []byte) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest("POST", cp.url+"/v1/artifacts", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+cp.admin)
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("upload: %v", err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	b.ReadFrom(resp.Body)
	return resp.StatusCode, b.Bytes()
}

// dirFiles lists the regular files under dir (relative paths, sorted).
func dirFiles(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err == nil && info.Mode().IsRegular() {
			rel, _ := filepath.Rel(dir, p)
			out = append(out, rel)
		}
		return nil
	})
	return out
}

func slicesEqual(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
