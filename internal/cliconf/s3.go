package cliconf

import (
	"github.com/spf13/viper"

	"github.com/outpost/outpost/internal/blob/s3"
)

// S3 is the bucket section both daemons read: the control plane's
// artifact store (blob.s3) and the mirror's bucket source (s3). A
// daemon's own keys sit beside it in the struct that embeds it
// (`mapstructure:",squash"`).
type S3 struct {
	Endpoint  string `mapstructure:"endpoint"`
	AccessKey string `mapstructure:"access_key"`
	SecretKey string `mapstructure:"secret_key"`
	Bucket    string `mapstructure:"bucket"`
	Region    string `mapstructure:"region"`
	UseSSL    bool   `mapstructure:"use_ssl"`
	Prefix    string `mapstructure:"prefix"`
}

// S3Defaults sets the defaults of an S3 section at key (e.g. "blob.s3").
func S3Defaults(v *viper.Viper, key string) {
	v.SetDefault(key+".endpoint", "")
	v.SetDefault(key+".access_key", "")
	v.SetDefault(key+".secret_key", "")
	v.SetDefault(key+".bucket", "")
	v.SetDefault(key+".region", "us-east-1")
	v.SetDefault(key+".use_ssl", false)
	v.SetDefault(key+".prefix", "")
}

// Client is the section as the S3 adapter takes it (the prefix is the
// caller's to apply or pass).
func (s S3) Client() s3.Config {
	return s3.Config{Endpoint: s.Endpoint, AccessKey: s.AccessKey, SecretKey: s.SecretKey, Bucket: s.Bucket, Region: s.Region, UseSSL: s.UseSSL}
}
