package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"sigs.k8s.io/controller-runtime/pkg/client"

	tandemv1 "github.com/tandem-dev/tandem/api/v1alpha1"
)

// scheme knows Tandem's kinds and the built-in ones: the client decodes
// with it and the printers set apiVersion and kind from it.
var scheme = func() *runtime.Scheme {
	s := runtime.NewScheme()
	utilruntime.Must(clientgoscheme.AddToScheme(s))
	utilruntime.Must(tandemv1.AddToScheme(s))
	return s
}()

// output is kubectl's -o for commands that print Tandem's objects: json,
// yaml, name, jsonpath, go-template and the rest of cli-runtime's
// PrintFlags, with apiVersion and kind set as kubectl sets them. Without -o
// (or with -o table) the command prints its own table.
type output struct{ flags *genericclioptions.PrintFlags }

func addOutputFlags(cmd *cobra.Command) *output {
	o := &output{genericclioptions.NewPrintFlags("").WithTypeSetter(scheme)}
	o.flags.AddFlags(cmd)
	cmd.Flag("output").Usage = "Output format: the table when empty, or one of " + fmt.Sprint(o.flags.AllowedFormats()) + "."
	return o
}

func (o *output) table() bool {
	f := o.flags.OutputFormat
	return f == nil || *f == "" || *f == "table"
}

// validate refuses an unknown -o before the command reads anything.
func (o *output) validate() error {
	if o.table() {
		return nil
	}
	_, err := o.flags.ToPrinter()
	return err
}

// print writes objs as kubectl get would: one object as itself, several as
// a List of them (or a name per line).
func (o *output) print(out io.Writer, objs ...client.Object) error {
	p, err := o.flags.ToPrinter()
	if err != nil {
		return err
	}
	if len(objs) == 1 || *o.flags.OutputFormat == "name" {
		// -o name prints each object on its own line, as kubectl get does.
		for _, obj := range objs {
			if err := p.PrintObj(obj, out); err != nil {
				return err
			}
		}
		return nil
	}
	list := &corev1.List{}
	for _, obj := range objs {
		gvks, _, err := scheme.ObjectKinds(obj)
		if err != nil {
			return err
		}
		// Items of a typed list carry no apiVersion and kind of their own.
		obj = obj.DeepCopyObject().(client.Object)
		obj.GetObjectKind().SetGroupVersionKind(gvks[0])
		list.Items = append(list.Items, runtime.RawExtension{Object: obj})
	}
	return p.PrintObj(list, out)
}
