package postgres

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	neturl "net/url"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/rs/zerolog"

	"github.com/outpost/outpost/internal/catalog"
	"github.com/outpost/outpost/internal/store"
	"github.com/outpost/outpost/internal/store/storetest"
)

// bulkLoad writes a tenant and n releases of one open product, each with
// one verified artifact, with COPY (bypassing the audit log: fixture data).
func bulkLoad(b *testing.B, db *DB, tenantID string, n int) {
	b.Helper()
	now := time.Now().UTC()
	var rows [][]any
	add := func(bucket []byte, k []byte, v any) {
		raw, err := json.Marshal(v)
		if err != nil {
			b.Fatal(err)
		}
		if v == nil {
			raw = []byte{}
		}
		rows = append(rows, []any{string(bucket), k, raw})
	}
	p := &catalog.Product{ProductID: catalog.NewID(catalog.PrefixProduct), Name: "Big", Distribution: catalog.DistributionOpen, Metadata: []byte(`{}`), CreatedAt: now}
	add(bTenants, []byte(tenantID), &catalog.Tenant{TenantID: tenantID, Name: "T", Status: catalog.TenantActive, Metadata: []byte(`{}`), CreatedAt: now})
	add(bProducts, []byte(p.ProductID), p)
	for i := range n {
		r := &catalog.Release{ReleaseID: catalog.NewID(catalog.PrefixRelease), ProductID: p.ProductID, Channel: "stable", Version: fmt.Sprintf("1.%d.%d", i/1000, i%1000), PublishedAt: now, Status: catalog.ReleaseActive, Metadata: []byte(`{"notes":"x"}`)}
		vt := now
		a := &catalog.Artifact{ArtifactID: catalog.NewID(catalog.PrefixArtifact), SourceType: catalog.SourceManaged, SHA256: fmt.Sprintf("%064x", i), SizeBytes: int64(1000 + i), StoragePath: "blobs/x", Status: catalog.ArtifactVerified, VerifiedAt: &vt, CreatedAt: now}
		ra := &catalog.ReleaseArtifact{ReleaseArtifactID: catalog.NewID(catalog.PrefixReleaseArtifact), ReleaseID: r.ReleaseID, ArtifactID: a.ArtifactID, Platform: "linux", Arch: "x64", InstallerType: "tar.gz"}
		add(bReleases, []byte(r.ReleaseID), r)
		add(bArtifacts, []byte(a.ArtifactID), a)
		add(bRelArts, []byte(ra.ReleaseArtifactID), ra)
		rows = append(rows,
			[]any{string(iReleasePCV), key(r.ProductID, r.Channel, r.Version), []byte(r.ReleaseID)},
			[]any{string(iReleaseProduct), key(r.ProductID, r.ReleaseID), []byte{}},
			[]any{string(iRelArtRelease), key(r.ReleaseID, ra.ReleaseArtifactID), []byte{}})
	}
	_, err := db.pool.CopyFrom(context.Background(), pgx.Identifier{"outpost_kv"}, []string{"bucket", "k", "v"}, pgx.CopyFromRows(rows))
	if err != nil {
		b.Fatal(err)
	}
}

// BenchmarkCreateSnapshot_10k measures gathering the input of a tenant that
// sees 10,000 releases (one artifact each) and storing a snapshot; the build
// itself (sign, encode) is the snapshot package's and is left out.
func BenchmarkCreateSnapshot_10k(b *testing.B) {
	const n = 10_000
	db, _ := openSchema(b, testURL(b))
	defer db.Close()
	tenantID := catalog.NewID(catalog.PrefixTenant)
	bulkLoad(b, db, tenantID, n)
	ctx := context.Background()
	build := func(in *catalog.SnapshotInput) (*catalog.Snapshot, error) {
		if len(in.Releases) != n || len(in.Artifacts) != n || len(in.ReleaseArtifacts) != n {
			return nil, fmt.Errorf("gathered %d releases, %d artifacts, %d release artifacts", len(in.Releases), len(in.Artifacts), len(in.ReleaseArtifacts))
		}
		return &catalog.Snapshot{SnapshotID: catalog.NewID(catalog.PrefixSnapshot), TenantID: in.Tenant.TenantID, Sequence: in.Sequence, Envelope: []byte(`{}`)}, nil
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := db.CreateSnapshot(ctx, tenantID, build); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCreateTenant measures one audited write: lock, check, insert,
// append the audit event, commit.
func BenchmarkCreateTenant(b *testing.B) {
	db, _ := openSchema(b, testURL(b))
	defer db.Close()
	ctx := catalog.WithActor(context.Background(), catalog.Actor{Type: catalog.ActorUser, ID: "usr_bench"})
	b.ReportAllocs()
	for b.Loop() {
		t := &catalog.Tenant{TenantID: catalog.NewID(catalog.PrefixTenant), Name: "t", Status: catalog.TenantActive}
		if err := db.CreateTenant(ctx, t); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTenant measures one read.
func BenchmarkTenant(b *testing.B) {
	db, _ := openSchema(b, testURL(b))
	defer db.Close()
	ctx := catalog.WithActor(context.Background(), catalog.Actor{Type: catalog.ActorUser, ID: "usr_bench"})
	t := &catalog.Tenant{TenantID: catalog.NewID(catalog.PrefixTenant), Name: "t", Status: catalog.TenantActive}
	if err := db.CreateTenant(ctx, t); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := db.Tenant(ctx, t.TenantID); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAcquireLease: online lease issuance, 32 concurrent clients,
// with 0 and 100,000 active leases on the entitlement (the rate must not
// depend on them):
//
//	go test -run '^$' -bench AcquireLease -benchtime 3000x ./internal/store/postgres
func BenchmarkAcquireLease(b *testing.B) {
	url := testURL(b)
	for _, active := range []int{0, 100_000} {
		b.Run(fmt.Sprintf("active=%d", active), func(b *testing.B) {
			db, _ := openSchema(b, url)
			defer db.Close()
			load := func(ctx context.Context, leases []*catalog.Lease) error {
				if err := db.LoadLeases(ctx, leases); err != nil {
					return err
				}
				// Measure the steady state, not the autovacuum and
				// checkpoint that a bulk load of 400,000 rows triggers.
				for _, q := range []string{"VACUUM ANALYZE outpost_kv", "CHECKPOINT"} {
					if _, err := db.pool.Exec(ctx, q); err != nil {
						return fmt.Errorf("%s: %w", q, err)
					}
				}
				return nil
			}
			storetest.BenchAcquireLease(b, db, active, load)
		})
	}
}

// BenchmarkKeyedLeases: online lease issuance with an Idempotency-Key
// (reserve, lease, answer: three write transactions a request), 32
// clients, on one instance and on two in this process:
//
//	go test -run '^$' -bench KeyedLeases -benchtime 3000x ./internal/store/postgres
func BenchmarkKeyedLeases(b *testing.B) {
	url := testURL(b)
	for _, instances := range []int{1, 2} {
		b.Run(fmt.Sprintf("instances=%d", instances), func(b *testing.B) {
			dbs, stores := openInstances(b, url, instances)
			txs0, _, retries0 := writeStats(dbs)
			storetest.BenchKeyedLeases(b, stores)
			txs, _, retries := writeStats(dbs)
			// transactions a lease (three calls, grouped), and shared
			// transactions run again after a conflict.
			b.ReportMetric(float64(txs-txs0)/float64(b.N), "tx/lease")
			b.ReportMetric(float64(retries-retries0), "retries")
		})
	}
}

// BenchmarkLeaseChurn: leases issued and released at once, 32 clients,
// one entitlement, on one instance and on two in this process, where
// issues and releases of either write the entitlement's lease counter;
// and on one instance with the database 1 ms away (Toxiproxy), where
// each round trip of a batch counts:
//
//	go test -run '^$' -bench LeaseChurn -benchtime 3000x ./internal/store/postgres
func BenchmarkLeaseChurn(b *testing.B) {
	direct := testURL(b)
	for _, c := range []struct {
		instances int
		rtt       time.Duration
	}{{1, 0}, {2, 0}, {1, time.Millisecond}} {
		b.Run(rttName(c.rtt, fmt.Sprintf("instances=%d", c.instances)), func(b *testing.B) {
			dbs, stores := openInstances(b, reach(b, direct, c.rtt), c.instances)
			txs0, _, retries0 := writeStats(dbs)
			storetest.BenchLeaseChurn(b, stores)
			txs, _, retries := writeStats(dbs)
			// Write transactions a lease (an issue and a release,
			// grouped), and shared transactions run again after a
			// conflict, per lease.
			b.ReportMetric(float64(txs-txs0)/float64(b.N), "tx/lease")
			b.ReportMetric(float64(retries-retries0)/float64(b.N), "retries/lease")
		})
	}
}

// BenchmarkRawInsert is the reference for BenchmarkAcquireLease, like
// pgbench's single-row INSERT: 32 concurrent clients on 32 connections,
// each call one autocommitted INSERT of a 200-byte row:
//
//	go test -run '^$' -bench RawInsert -benchtime 3000x ./internal/store/postgres
func BenchmarkRawInsert(b *testing.B) {
	url := testURL(b)
	ctx := context.Background()
	db, schema := openSchema(b, url)
	db.Close()
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		b.Fatal(err)
	}
	cfg.ConnConfig.RuntimeParams["search_path"] = schema
	cfg.MaxConns = storetest.BenchClients
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		b.Fatal(err)
	}
	defer pool.Close()
	if _, err := pool.Exec(ctx, "CREATE TABLE raw_insert (id bigserial PRIMARY KEY, v bytea NOT NULL)"); err != nil {
		b.Fatal(err)
	}
	val := make([]byte, 200)
	b.SetParallelism((storetest.BenchClients + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := pool.Exec(ctx, "INSERT INTO raw_insert (v) VALUES ($1)", val); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "inserts/s")
}

// BenchmarkCatalogWrites: catalog writes (a new release with its audit
// event) from 1 and 16 concurrent writers on one store, and from two
// instances on one database with 16 writers each. An instance is a store
// of its own (its own pool, group commit and locks) on the same schema:
// in the procs= cases the second one is a process of its own (this test
// binary run again, as a writer: TestMain), as a second control plane
// would be; in the instances=2 case both are in this process, where they
// also share one Go runtime (its 2 Ps, its GC):
//
//	go test -run '^$' -bench CatalogWrites -benchtime 2000x ./internal/store/postgres
//
// The rtt= cases reach the database through a Toxiproxy link in this
// process that delays every reply by 1 ms, as a database on another host
// would: there the instances do not share the database's CPU, which on
// loopback on 2 cores is what two instances run out of.
func BenchmarkCatalogWrites(b *testing.B) {
	direct := testURL(b)
	for _, c := range []struct {
		instances, writers int
		procs              bool // the second instance is a process
		rtt                time.Duration
	}{{1, 1, false, 0}, {1, 16, false, 0}, {2, 16, false, 0}, {2, 16, true, 0}, {1, 16, false, time.Millisecond}, {2, 16, true, time.Millisecond}} {
		name := fmt.Sprintf("instances=%d/writers=%d", c.instances, c.writers)
		if c.procs {
			name = fmt.Sprintf("procs=%d/writers=%d", c.instances, c.writers)
		}
		b.Run(rttName(c.rtt, name), func(b *testing.B) {
			url := reach(b, direct, c.rtt)
			db, schema := openSchema(b, url)
			defer db.Close()
			dbs := []*DB{db}
			if !c.procs {
				dbs = append(dbs, moreInstances(b, url, schema, c.instances-1)...)
			}
			stores := make([]store.Store, len(dbs))
			for i, d := range dbs {
				stores[i] = d
				if err := d.warm(); err != nil {
					b.Fatal(err)
				}
			}
			txs0, held0, retries0 := writeStats(dbs)
			busy0, all0 := hostCPU()
			own := b.N // the writes of this process's instances
			if c.procs {
				own = benchWithProcess(b, db, url, schema, c.writers)
			} else {
				storetest.BenchCatalogWrites(b, stores, c.writers)
			}
			busy1, all1 := hostCPU()
			if all1 > all0 {
				// The machine's CPU in use during the run (database
				// included): near 100, the instances share what there is.
				cpu := 100 * float64(busy1-busy0) / float64(all1-all0)
				b.ReportMetric(cpu, "host-cpu-%")
				if c.instances == 1 && cpu > 0 {
					// What a second instance can add at most on this
					// machine: the CPU one leaves idle, with no cost of
					// sharing (the database's CPU is in the figure).
					b.ReportMetric(100/cpu, "cpu-ceiling-x")
				}
			}
			txs, held, retries := writeStats(dbs)
			// Of this process's instances: calls/tx, how many writes a
			// transaction carried (group commit; the audit sequencer's
			// transactions counted); tx-share, the share of the run an
			// instance spent in write transactions (waits for the gate
			// included); retries, shared transactions run again after a
			// conflict.
			b.ReportMetric(float64(own)/float64(txs-txs0), "calls/tx")
			b.ReportMetric(float64(held-held0)/float64(b.Elapsed())/float64(len(dbs)), "tx-share")
			b.ReportMetric(float64(retries-retries0), "retries")
		})
	}
}

// writerSpec tells catalogWriter where to write.
type writerSpec struct {
	URL, Schema, ProductID string
	Writers                int
}

// chunk is how many writes the second instance claims at a time.
const chunk = 64

// benchWithProcess runs b.N catalog writes from writers clients on db and
// as many in another process on the same schema, started together, and
// reports writes/s over both; it returns how many db wrote. The writes are handed out as they go (the
// other process claims chunks of them over its stdin and stdout), so the
// two finish together: with a fixed half each, the faster would stop
// first and the run would end with one instance alone.
func benchWithProcess(b *testing.B, db *DB, url, schema string, writers int) (own int) {
	productID, err := storetest.BenchProduct(db)
	if err != nil {
		b.Fatal(err)
	}
	spec, _ := json.Marshal(writerSpec{URL: url, Schema: schema, ProductID: productID, Writers: writers})
	cmd := exec.Command(os.Args[0]) // TestMain runs it as the writer
	cmd.Env = append(os.Environ(), "OUTPOST_BENCH_WRITER="+string(spec))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatalf("start the second instance: %v", err)
	}
	defer cmd.Wait()
	defer stdin.Close()
	var seq atomic.Int64
	n := int64(b.N)
	// claim hands out up to k writes: the first and how many.
	claim := func(k int64) (int64, int64) {
		end := seq.Add(k)
		first := end - k + 1
		return first, max(0, min(end, n)-first+1)
	}
	lines := make(chan string)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			l, ok := strings.CutPrefix(sc.Text(), "writer: ")
			if !ok {
				continue
			}
			if l == "more" {
				first, k := claim(chunk)
				if _, err := fmt.Fprintf(stdin, "%d %d\n", first, k); err != nil {
					lines <- "reply: " + err.Error()
					return
				}
				continue
			}
			lines <- l
		}
	}()
	if l := <-lines; l != "ready" {
		b.Fatalf("second instance: %q, want ready", l)
	}
	b.ResetTimer()
	if _, err := io.WriteString(stdin, "go\n"); err != nil {
		b.Fatal(err)
	}
	ownErr := storetest.WriteReleases([]store.Store{db}, productID, "1.0.", func() (int64, bool) {
		v, k := claim(1)
		return v, k == 1
	}, writers)
	other := <-lines
	b.StopTimer()
	if ownErr != nil {
		b.Fatal(ownErr)
	}
	if !strings.HasPrefix(other, "done ") {
		b.Fatalf("second instance: %q, want done", other)
	}
	theirs, err := strconv.Atoi(strings.TrimPrefix(other, "done "))
	if err != nil {
		b.Fatalf("second instance: %q, want done and a count", other)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "writes/s")
	// The other process's share: near 0.5 when the two run alike.
	b.ReportMetric(float64(theirs)/float64(b.N), "other-share")
	return b.N - theirs
}

// TestMain runs the second instance of BenchmarkCatalogWrites's procs=
// cases when this binary is started as one (OUTPOST_BENCH_WRITER set),
// and the tests otherwise.
func TestMain(m *testing.M) {
	if raw := os.Getenv("OUTPOST_BENCH_WRITER"); raw != "" {
		if err := catalogWriter(raw); err != nil {
			fmt.Printf("writer: %v\n", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// catalogWriter opens the store spec names, says "ready", waits for a
// line on stdin, then writes releases in chunks it claims ("more"; the
// answer is "first count", a count of 0 when there are no more) and says
// "done" with how many it wrote.
func catalogWriter(raw string) error {
	var spec writerSpec
	if err := json.Unmarshal([]byte(raw), &spec); err != nil {
		return err
	}
	db, err := Open(context.Background(), spec.URL, Options{Schema: spec.Schema, MaxConns: 8})
	if err != nil {
		return fmt.Errorf("open: %w", err)
	}
	defer db.Close()
	if err := db.warm(); err != nil {
		return err
	}
	fmt.Println("writer: ready")
	in := bufio.NewReader(os.Stdin)
	if _, err := in.ReadString('\n'); err != nil {
		return err
	}
	var (
		mu          sync.Mutex
		next, left  int64
		done        bool
		wrote       int64
		protocolErr error
	)
	take := func() (int64, bool) {
		mu.Lock()
		defer mu.Unlock()
		if left == 0 && !done {
			fmt.Println("writer: more")
			line, err := in.ReadString('\n')
			if err == nil {
				_, err = fmt.Sscanf(line, "%d %d", &next, &left)
			}
			if err != nil {
				protocolErr = fmt.Errorf("claim writes: %w", err)
			}
			done = err != nil || left == 0
		}
		if done && left == 0 {
			return 0, false
		}
		v := next
		next, left = next+1, left-1
		wrote++
		return v, true
	}
	err = storetest.WriteReleases([]store.Store{db}, spec.ProductID, "1.0.", take, spec.Writers)
	if err == nil {
		err = protocolErr
	}
	if err != nil {
		return err
	}
	fmt.Printf("writer: done %d\n", wrote)
	return nil
}

// warm opens every connection db's pool may hold, before a benchmark
// times it: the pool opens them on demand, and a new connection costs
// several round trips (startup, authentication), many with the database
// 1 ms away, which a run of a few seconds would count.
func (db *DB) warm() error {
	ctx := context.Background()
	conns := make([]*pgxpool.Conn, db.pool.Config().MaxConns)
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Release()
			}
		}
	}()
	for i := range conns {
		c, err := db.pool.Acquire(ctx)
		if err != nil {
			return fmt.Errorf("warm the pool: %w", err)
		}
		conns[i] = c
	}
	return nil
}

// delayed returns url through a Toxiproxy link in this process whose
// replies are delayed by d, stopped when b ends.
// openInstances opens n instances (stores) on one new schema at url,
// closed when b ends.
func openInstances(b *testing.B, url string, n int) ([]*DB, []store.Store) {
	db, schema := openSchema(b, url)
	b.Cleanup(func() { db.Close() })
	dbs := append([]*DB{db}, moreInstances(b, url, schema, n-1)...)
	stores := make([]store.Store, len(dbs))
	for i, d := range dbs {
		stores[i] = d
	}
	return dbs, stores
}

// writeStats sums WriteStats over dbs.
func writeStats(dbs []*DB) (txs int64, held time.Duration, retries int64) {
	for _, d := range dbs {
		n, h, r := d.WriteStats()
		txs, held, retries = txs+n, held+h, retries+r
	}
	return txs, held, retries
}

// rttName is a case's name, under rtt=… when the database is delayed.
func rttName(rtt time.Duration, name string) string {
	if rtt <= 0 {
		return name
	}
	return fmt.Sprintf("rtt=%s/%s", rtt, name)
}

// reach is url, or with rtt > 0 a delayed link to it (delayed).
func reach(b *testing.B, url string, rtt time.Duration) string {
	if rtt <= 0 {
		return url
	}
	return delayed(b, url, rtt)
}

func delayed(b *testing.B, url string, d time.Duration) string {
	b.Helper()
	u, err := neturl.Parse(url)
	if err != nil || u.Host == "" {
		b.Fatalf("a delayed run needs OUTPOST_TEST_POSTGRES_URL as a postgres:// URL (%v)", err)
	}
	srv := toxiproxy.NewServer(toxiproxy.NewMetricsContainer(nil), zerolog.Nop())
	p := toxiproxy.NewProxy(srv, "postgres", "127.0.0.1:0", u.Host)
	if err := p.Start(); err != nil {
		b.Fatalf("toxiproxy: %v", err)
	}
	b.Cleanup(p.Stop)
	toxic := fmt.Sprintf(`{"name":"rtt","type":"latency","stream":"downstream","toxicity":1,"attributes":{"latency":%d}}`, d.Milliseconds())
	if _, err := p.Toxics.AddToxicJson(strings.NewReader(toxic)); err != nil {
		b.Fatalf("toxiproxy latency: %v", err)
	}
	u.Host = p.Listen
	return u.String()
}

// hostCPU reads the machine's busy and total CPU time, in clock ticks,
// from /proc/stat (zeros where there is none).
func hostCPU() (busy, total uint64) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return 0, 0
	}
	for i, v := range f[1:] {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return 0, 0
		}
		total += n
		if i != 3 && i != 4 { // idle, iowait
			busy += n
		}
	}
	return busy, total
}
