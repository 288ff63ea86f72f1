package fs_test

import (
	"os"
	"os/exec"
	"testing"
)

// toolsScript uses the mount as a user does, with coreutils, tar and git. It runs in sh, a
// separate process, and stops at the first failing command.
const toolsScript = `
set -eu
cd "$MNT"
mkdir -p src/a/b src/c
printf 'hello\n' > src/a/hello.txt
dd if=/dev/urandom of=src/a/b/random bs=64k count=40 status=none
truncate -s 10M src/sparse
ln -s a/hello.txt src/link
ln src/a/hello.txt src/c/hardlink
mkfifo src/fifo
chmod 0640 src/a/hello.txt
touch -d '2001-02-03 04:05:06' src/a/hello.txt
cp -a src copy
[ -p copy/fifo ] || { echo "cp -a lost the fifo"; exit 1; }
rm src/fifo copy/fifo # diff -r reports fifos as differing
diff -r src copy || { echo "cp -a: trees differ"; exit 1; }
cmp src/a/b/random copy/a/b/random
[ "$(stat -c %a:%Y src/a/hello.txt)" = "$(stat -c %a:%Y copy/a/hello.txt)" ] || { echo "cp -a lost mode or mtime"; exit 1; }
[ "$(stat -c %h src/a/hello.txt)" = 2 ] || { echo "hard link count"; exit 1; }
tar -cf "$OUT/t.tar" -C src .
mkdir untar && tar -xf "$OUT/t.tar" -C untar
cmp src/a/b/random untar/a/b/random
[ "$(readlink untar/link)" = a/hello.txt ]
[ "$(find src -type f | wc -l)" = 4 ] || { echo "find: $(find src -type f)"; exit 1; }
du -s src >/dev/null
df "$MNT" >/dev/null
sha256sum src/a/b/random | sed 's#src/#copy/#' | sha256sum -c --quiet
mv copy moved && [ -d moved/a/b ] && [ ! -e copy ]
git init -q repo && cd repo
git config user.email t@example.com && git config user.name t
echo one > f && git add f && git commit -qm one
echo two >> f && git commit -qam two
[ "$(git log --oneline | wc -l)" = 2 ]
git gc -q
git fsck --no-progress
cd ..
rm -rf src moved untar repo
[ -z "$(ls -A)" ] || { echo "left: $(ls -A)"; exit 1; }
`

func TestTools(t *testing.T) {
	m := newMount(t)
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("skipped: git is not installed")
	}
	cmd := command(t, "/bin/sh", "-c", toolsScript)
	cmd.Env = append(os.Environ(), "MNT="+m.Dir, "OUT="+t.TempDir(), "HOME="+t.TempDir())
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("script failed: %v\n%s", err, out)
	}
}
