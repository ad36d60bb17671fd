package testbed

import (
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"
)

// BIND is an authoritative DNS server (BIND 9 from Debian's bind9 package)
// on 127.0.0.1 and a free port, serving one zone that accepts RFC 2136
// updates signed with its TSIG key and refuses unsigned ones.
type BIND struct {
	// Addr is host:port, for UDP and TCP.
	Addr string
	// PodAddr is where pods reach it, when it listens on the pod network.
	PodAddr string
	Zone    string
	// KeyName and Secret (base64, hmac-sha256) sign updates.
	KeyName, Secret string
	Dir             string
	cmd             *exec.Cmd
	done            chan struct{}
}

// NamedBinary finds BIND's named; `apt-get install bind9` provides it.
func NamedBinary() (string, error) {
	for _, p := range []string{"/usr/sbin/named", "/usr/local/sbin/named"} {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	if p, err := exec.LookPath("named"); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("BIND's named is not installed: apt-get install -y bind9 (.ci/run does)")
}

// StartBIND starts named for zone in dir (every path it writes is there)
// and waits until it answers. With podIP it also listens there, for pods.
// The caller stops it.
func StartBIND(dir, zone, podIP string) (*BIND, error) {
	bin, err := NamedBinary()
	if err != nil {
		return nil, err
	}
	port, err := FreePort()
	if err != nil {
		return nil, err
	}
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return nil, err
	}
	b := &BIND{
		Addr: fmt.Sprintf("127.0.0.1:%d", port), Zone: zone, KeyName: "tandem-key",
		Secret: base64.StdEncoding.EncodeToString(secret), Dir: dir,
	}
	listen := "127.0.0.1;"
	if podIP != "" {
		b.PodAddr = net.JoinHostPort(podIP, fmt.Sprint(port))
		listen += " " + podIP + ";"
	}
	conf := fmt.Sprintf(`key "%[1]s" { algorithm hmac-sha256; secret "%[2]s"; };
options {
  directory "%[3]s";
  pid-file "%[3]s/named.pid";
  session-keyfile "%[3]s/session.key";
  managed-keys-directory "%[3]s";
  listen-on port %[4]d { %[6]s };
  listen-on-v6 { none; };
  recursion no;
  notify no;
  dnssec-validation no;
};
controls {};
zone "%[5]s" { type master; file "%[3]s/zone.db"; allow-update { key "%[1]s"; }; };
`, b.KeyName, b.Secret, dir, port, zone, listen)
	// A short negative-cache TTL (SOA minimum) and NS record so the zone
	// loads; the records Tandem manages come and go through updates.
	zoneData := fmt.Sprintf(`$TTL 5
@ IN SOA ns.%[1]s. admin.%[1]s. 1 60 60 600 5
@ IN NS ns.%[1]s.
ns IN A 127.0.0.1
`, zone)
	if err := os.WriteFile(filepath.Join(dir, "named.conf"), []byte(conf), 0o600); err != nil {
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "zone.db"), []byte(zoneData), 0o644); err != nil {
		return nil, err
	}
	logFile, err := os.Create(filepath.Join(dir, "named.log"))
	if err != nil {
		return nil, err
	}
	// -g: foreground, logging to stderr; -n 1: one worker thread.
	b.cmd = exec.Command(bin, "-g", "-c", filepath.Join(dir, "named.conf"), "-n", "1")
	b.cmd.Stdout, b.cmd.Stderr = logFile, logFile
	b.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := b.cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("starting named: %w", err)
	}
	b.done = make(chan struct{})
	go func() { _ = b.cmd.Wait(); logFile.Close(); close(b.done) }()
	deadline := time.Now().Add(15 * time.Second)
	for {
		if conn, err := net.DialTimeout("tcp", b.Addr, 200*time.Millisecond); err == nil {
			conn.Close()
			return b, nil
		}
		select {
		case <-b.done:
			return nil, fmt.Errorf("named exited: %s", tail(filepath.Join(dir, "named.log")))
		default:
		}
		if time.Now().After(deadline) {
			b.Stop()
			return nil, fmt.Errorf("named did not answer on %s: %s", b.Addr, tail(filepath.Join(dir, "named.log")))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop ends named, by PID.
func (b *BIND) Stop() {
	if b.cmd == nil || b.cmd.Process == nil {
		return
	}
	_ = b.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-b.done:
	case <-time.After(5 * time.Second):
		_ = b.cmd.Process.Kill()
		<-b.done
	}
}
