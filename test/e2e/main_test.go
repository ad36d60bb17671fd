package e2e

import (
	"os"
	"testing"

	"github.com/go-logr/logr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"
)

func TestMain(m *testing.M) {
	// The tests' own clients have nothing worth logging; the operators
	// under test log to their own files.
	ctrllog.SetLogger(logr.Discard())
	os.Exit(m.Run())
}
