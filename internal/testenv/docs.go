package testenv

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// DocBlocks returns the shell blocks of a Markdown file (path relative
// to the repository root) that follow a `<!-- marker -->` line: the text
// between the next "```sh" fence and its closing fence, in file order.
// Tests run them as written (sh -e -c) so the docs cannot drift from the
// commands.
func DocBlocks(t testing.TB, path, marker string) []string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(RepoRoot(t), path))
	if err != nil {
		t.Fatal(err)
	}
	var blocks []string
	rest := string(b)
	tag := "<!-- " + marker + " -->"
	for {
		i := strings.Index(rest, tag)
		if i < 0 {
			break
		}
		rest = rest[i+len(tag):]
		open := strings.Index(rest, "```sh\n")
		if open < 0 {
			t.Fatalf("%s: %s is not followed by a ```sh block", path, tag)
		}
		rest = rest[open+len("```sh\n"):]
		end := strings.Index(rest, "\n```")
		if end < 0 {
			t.Fatalf("%s: unclosed ```sh block after %s", path, tag)
		}
		blocks = append(blocks, rest[:end+1])
		rest = rest[end+4:]
	}
	if len(blocks) == 0 {
		t.Fatalf("%s has no %s blocks", path, tag)
	}
	return blocks
}

// PathWith returns a PATH value that finds each binary under the name
// given (a directory of symlinks in front of the current PATH): docs say
// `controlplane …`, tests build into temporary names.
func PathWith(t testing.TB, bins map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, bin := range bins {
		if err := os.Symlink(bin, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	return dir + string(os.PathListSeparator) + os.Getenv("PATH")
}
