package postgres

// The layout the fixture loader writes directly (see store/kv).
var (
	bTenants        = []byte("tenants")
	bProducts       = []byte("products")
	bArtifacts      = []byte("artifacts")
	bReleases       = []byte("releases")
	bRelArts        = []byte("release_artifacts")
	iReleasePCV     = []byte("idx_release_pcv")
	iReleaseProduct = []byte("idx_release_product")
	iRelArtRelease  = []byte("idx_relart_release")
)

// key joins parts with NUL bytes.
func key(parts ...string) []byte {
	var b []byte
	for i, p := range parts {
		if i > 0 {
			b = append(b, 0)
		}
		b = append(b, p...)
	}
	return b
}
