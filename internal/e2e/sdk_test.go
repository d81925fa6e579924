package e2e_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/m4sh/backend/gen/api"
	"github.com/m4sh/backend/internal/apptest"
)

// TestSDKPackage installs @m4sh/client as a front-end team would: the tarball `make sdk`
// packs (npm pack of gen/ts), named after the OpenAPI info.version, installed with a plain
// `npm install` into an empty project. The copy must stay a copy with its dependency after a
// second plain `npm install`, import under Node, and every ts/tsx snippet of gen/ts/README.md
// must compile against it (strict tsc; the React one with react installed beside it).
func TestSDKPackage(t *testing.T) {
	t.Parallel()
	pkg := tsPackageDir(t)
	if _, err := exec.LookPath("npm"); err != nil {
		apptest.Unavailable(t, "the SDK package test needs npm")
	}
	doc, err := api.GetSpec()
	if err != nil {
		t.Fatal(err)
	}
	app := t.TempDir()
	npm := func(dir string, args ...string) string {
		t.Helper()
		cmd := exec.Command("npm", append(args, "--no-audit", "--no-fund", "--loglevel=error")...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err != nil {
			apptest.Unavailable(t, "npm "+strings.Join(args, " ")+": "+err.Error()+": "+string(out))
		}
		return strings.TrimSpace(string(out))
	}
	tarball := npm(pkg, "pack", "--silent", "--pack-destination", app)
	if want := "m4sh-client-" + doc.Info.Version + ".tgz"; tarball != want {
		t.Fatalf("npm pack made %q, want %q (the version is the OpenAPI info.version)", tarball, want)
	}
	write(t, filepath.Join(app, "package.json"), `{"name":"sdk-consumer","private":true,"type":"module"}`)
	npm(app, "install", "./"+tarball)
	installed := func(when string) {
		t.Helper()
		fi, err := os.Lstat(filepath.Join(app, "node_modules/@m4sh/client"))
		if err != nil || !fi.IsDir() {
			t.Fatalf("%s: node_modules/@m4sh/client is not a directory (a symlink or missing): %v", when, err)
		}
		if _, err := os.Stat(filepath.Join(app, "node_modules/openapi-fetch/package.json")); err != nil {
			t.Fatalf("%s: the dependency openapi-fetch is not installed: %v", when, err)
		}
	}
	installed("after npm install ./" + tarball)
	npm(app, "install")
	installed("after a later plain npm install")

	node := exec.Command("node", "--input-type=module", "-e", `
import { createM4shClient, ok, paginate, M4shError, NetworkError, snapshotBody, PresenceSocket } from "@m4sh/client";
const api = createM4shClient({ baseUrl: "http://127.0.0.1:1" });
try { await api.GET("/api/v1/me/"); } catch (e) { console.log(e instanceof NetworkError, typeof ok, typeof paginate, typeof PresenceSocket, M4shError.name, snapshotBody(new Uint8Array(1)).headers["Content-Type"]); }
`)
	node.Dir = app
	out, err := node.CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "true function function function M4shError application/octet-stream" {
		t.Fatalf("importing the installed package: %v\n%s", err, out)
	}

	// The README's snippets, each a module of its own, against the installed package's types.
	readme, err := os.ReadFile(filepath.Join(pkg, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	snippets := regexp.MustCompile("(?s)```(tsx?)\n(.*?)```").FindAllSubmatch(readme, -1)
	if len(snippets) < 7 {
		t.Fatalf("gen/ts/README.md has %d ts/tsx snippets, want at least 7", len(snippets))
	}
	for i, s := range snippets {
		write(t, filepath.Join(app, "snippet"+strconv.Itoa(i+1)+"."+string(s[1])), string(s[2])+"\nexport {};\n")
	}
	// React is an optional peer dependency: the app installs it (the versions gen/ts tests with).
	npm(app, "install", "react@19.3.1", "@types/react@19.3.0")
	globals, err := os.ReadFile(filepath.Join(pkg, "test/readme-globals.d.ts"))
	if err != nil {
		t.Fatal(err)
	}
	write(t, filepath.Join(app, "readme-globals.d.ts"), string(globals))
	write(t, filepath.Join(app, "tsconfig.json"), `{"compilerOptions":{"target":"ES2022","module":"ES2022",
"moduleResolution":"Bundler","lib":["ES2022","DOM"],"strict":true,"noEmit":true,"noUncheckedIndexedAccess":true,
"skipLibCheck":false,"types":[],"jsx":"react-jsx"},"include":["*.ts","*.tsx"]}`)
	tsc := exec.Command(filepath.Join(pkg, "node_modules/.bin/tsc"), "-p", ".")
	tsc.Dir = app
	if out, err := tsc.CombinedOutput(); err != nil {
		t.Fatalf("gen/ts/README.md snippets do not compile against the package: %v\n%s", err, out)
	}
}

func write(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
