// Command app is the test bed's real application: a small HTTP service
// that keeps records on its volume, so tests and the demo can tell from the
// app's own answers which data center serves and whether its data came
// along. It is never shipped.
//
//	PUT  /records/{key}   stores the body as a record (and initialises the data)
//	GET  /records/{key}   returns a record, 404 when the volume lacks it
//	GET  /                {"node": ..., "pod": ..., "records": N, "dataCreatedOn": ...}
//	GET  /healthz         the process runs
//	GET  /readyz          503 until the data directory holds the app's data
//
// Like a database that will not serve an empty data directory as if it were
// its data, the app is not Ready on a volume without its data: a standby
// restored from nothing fails its readiness probe instead of serving an
// empty store. The first record written initialises the data.
package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// meta is the app's data marker, written with the first record.
type meta struct {
	CreatedOn string    `json:"createdOn"`
	CreatedAt time.Time `json:"createdAt"`
}

type app struct {
	dir  string
	node string
	pod  string
}

var validKey = regexp.MustCompile(`^[A-Za-z0-9._-]{1,128}$`)

func main() {
	a := &app{dir: env("DATA_DIR", "/data"), node: os.Getenv("NODE_NAME"), pod: os.Getenv("POD_NAME")}
	addr := env("LISTEN", ":8080")
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", a.status)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "ok") })
	mux.HandleFunc("GET /readyz", a.ready)
	mux.HandleFunc("GET /records/{key}", a.get)
	mux.HandleFunc("PUT /records/{key}", a.put)
	log.Printf("app on %s serving %s from %s", a.node, addr, a.dir)
	srv := &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	// unix:PATH serves on a socket only the pod's own containers reach
	// (behind the fence sidecar).
	if path, ok := strings.CutPrefix(addr, "unix:"); ok {
		_ = os.Remove(path)
		l, err := net.Listen("unix", path)
		if err != nil {
			log.Fatal(err)
		}
		// The fence sidecar runs as another user; the socket is in the
		// pod's own volume, which only its containers mount.
		if err := os.Chmod(path, 0o666); err != nil {
			log.Fatal(err)
		}
		log.Fatal(srv.Serve(l))
	}
	log.Fatal(srv.ListenAndServe())
}

func env(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func (a *app) meta() (meta, error) {
	var m meta
	data, err := os.ReadFile(filepath.Join(a.dir, "app.json"))
	if err != nil {
		return m, err
	}
	return m, json.Unmarshal(data, &m)
}

func (a *app) ready(w http.ResponseWriter, _ *http.Request) {
	if _, err := a.meta(); err != nil {
		http.Error(w, "no app data in "+a.dir+": "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	fmt.Fprintln(w, "ok")
}

func (a *app) status(w http.ResponseWriter, _ *http.Request) {
	m, _ := a.meta()
	entries, _ := os.ReadDir(filepath.Join(a.dir, "records"))
	writeJSON(w, http.StatusOK, map[string]any{"node": a.node, "pod": a.pod, "records": len(entries),
		"dataCreatedOn": m.CreatedOn})
}

func (a *app) get(w http.ResponseWriter, r *http.Request) {
	key := r.PathValue("key")
	if !validKey.MatchString(key) {
		http.Error(w, "bad key", http.StatusBadRequest)
		return
	}
	data, err := os.ReadFile(filepath.Join(a.dir, "records", key))
	if errors.Is(err, os.ErrNotExist) {
		http.Error(w, fmt.Sprintf("record %q not found on %s", key, a.node), http.StatusNotFound)
		return
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("X-Served-By", a.node)
	_, _ = w.Write(data)
}

func (a *app) put(w http.ResponseWriter, r *http.Request) {
	key := r.PathValue("key")
	if !validKey.MatchString(key) {
		http.Error(w, "bad key", http.StatusBadRequest)
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if err := a.initialise(); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	if err := writeFileSync(filepath.Join(a.dir, "records", key), body); err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	writeJSON(w, http.StatusCreated, map[string]string{"key": key, "node": a.node})
}

// initialise writes the data marker with the first record.
func (a *app) initialise() error {
	if _, err := a.meta(); err == nil {
		return nil
	}
	if err := os.MkdirAll(filepath.Join(a.dir, "records"), 0o755); err != nil {
		return err
	}
	data, _ := json.Marshal(meta{CreatedOn: a.node, CreatedAt: time.Now().UTC()})
	return writeFileSync(filepath.Join(a.dir, "app.json"), data)
}

// writeFileSync writes through a temporary file and renames it, syncing
// both, so a snapshot taken at any moment holds a record whole or not at
// all.
func writeFileSync(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := path + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}
