// Package deps pins the project's module dependencies while the packages
// that use them are being written. Delete once every one is imported.
package deps

import (
	_ "github.com/Masterminds/semver/v3"
	_ "github.com/cenkalti/backoff/v4"
	_ "github.com/minio/minio-go/v7"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/spf13/cobra"
	_ "github.com/spf13/viper"
	_ "go.etcd.io/bbolt"
	_ "golang.org/x/crypto/chacha20poly1305"
	_ "golang.org/x/sys/unix"
)
