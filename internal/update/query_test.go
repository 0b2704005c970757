package update

import (
	"net/url"
	"strings"
	"testing"

	"github.com/outpost/outpost/internal/catalog"
)

func TestParseRawQuery_Behaviour(t *testing.T) {
	ok := "product=prd_a&channel=stable&platform=linux&arch=x64&version=1.2.3"
	tests := []struct {
		name, raw string
		want      Query
		err       string // substring of the error, "" for none
	}{
		{"minimal", ok, Query{Product: "prd_a", Channel: "stable", Platform: "linux", Arch: "x64", Version: "1.2.3"}, ""},
		{"everything, escaped", ok + "&installer_type=tar.gz&client_id=host%201%2Fa%2Bb", Query{Product: "prd_a", Channel: "stable", Platform: "linux", Arch: "x64", Version: "1.2.3", InstallerType: "tar.gz", ClientID: "host 1/a+b"}, ""},
		{"plus is a space", ok + "&client_id=a+b", Query{Product: "prd_a", Channel: "stable", Platform: "linux", Arch: "x64", Version: "1.2.3", ClientID: "a b"}, ""},
		{"empty segments skipped", "&&" + ok + "&", Query{Product: "prd_a", Channel: "stable", Platform: "linux", Arch: "x64", Version: "1.2.3"}, ""},
		{"escaped key", strings.Replace(ok, "product", "pro%64uct", 1), Query{Product: "prd_a", Channel: "stable", Platform: "linux", Arch: "x64", Version: "1.2.3"}, ""},
		{"missing product", "channel=stable&platform=linux&arch=x64&version=1.2.3", Query{}, "product: is required"},
		{"missing version", "product=prd_a&channel=stable&platform=linux&arch=x64", Query{}, "version: is required"},
		{"empty channel", strings.Replace(ok, "stable", "", 1), Query{}, "channel: is required"},
		{"bad channel", strings.Replace(ok, "stable", "Stable", 1), Query{}, "channel: must be lowercase"},
		{"bad platform", strings.Replace(ok, "linux", "plan9", 1), Query{}, `platform: "plan9" is not one of`},
		{"bad arch", strings.Replace(ok, "x64", "mips", 1), Query{}, `arch: "mips" is not one of`},
		{"bad installer", ok + "&installer_type=apk", Query{}, `installer_type: "apk" is not one of`},
		{"loose version", strings.Replace(ok, "1.2.3", "1.2", 1), Query{}, `version: "1.2" is not a semantic version`},
		{"v version", strings.Replace(ok, "1.2.3", "v1.2.3", 1), Query{}, `version: "v1.2.3" is not a semantic version`},
		{"leading zero", strings.Replace(ok, "1.2.3", "01.2.3", 1), Query{}, "version:"},
		{"unknown parameter", ok + "&debug=1", Query{}, "query parameter debug: unknown parameter"},
		{"repeated parameter", ok + "&arch=arm64", Query{}, "arch: given more than once"},
		{"bad escape", ok + "&client_id=%zz", Query{}, "client_id: malformed percent-encoding"},
		{"huge client id", ok + "&client_id=" + strings.Repeat("a", 257), Query{}, "client_id: must be at most 256 bytes"},
		{"binary client id", ok + "&client_id=%00%ff", Query{}, "client_id: must be printable UTF-8"},
		{"bad product id", strings.Replace(ok, "prd_a", "prd%2Fa", 1), Query{}, "product: must be a product id"},
		{"too long", ok + "&client_id=" + strings.Repeat("a", 5000), Query{}, "query: must be at most 4096 bytes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got Query
			err := ParseRawQuery(tc.raw, &got)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got %v, want error containing %q", err, tc.err)
				}
				if c := catalog.ErrorCode(err); c != catalog.EINVALID {
					t.Errorf("code = %q, want invalid", c)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
			// ParseQuery over the decoded form agrees.
			v, err := url.ParseQuery(tc.raw)
			if err != nil {
				t.Fatal(err)
			}
			q2, err := ParseQuery(v)
			if err != nil {
				t.Fatal(err)
			}
			if *q2 != tc.want {
				t.Errorf("ParseQuery got %+v, want %+v", *q2, tc.want)
			}
		})
	}
}

func TestParseQuery_Rejects(t *testing.T) {
	v := url.Values{"product": {"prd_a"}, "channel": {"stable"}, "platform": {"linux"}, "arch": {"x64", "arm64"}, "version": {"1.0.0"}}
	if _, err := ParseQuery(v); err == nil || !strings.Contains(err.Error(), "arch: given more than once") {
		t.Errorf("repeated: got %v", err)
	}
	v["arch"] = []string{"x64"}
	v["x"] = []string{"1"}
	if _, err := ParseQuery(v); err == nil || !strings.Contains(err.Error(), "query parameter x: unknown parameter") {
		t.Errorf("unknown: got %v", err)
	}
}
