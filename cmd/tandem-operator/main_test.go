package main

import (
	"strings"
	"testing"
)

func TestOptionsValidate(t *testing.T) {
	cases := []struct {
		name, cluster, wantErr string
	}{
		{"missing", "", "--cluster-name is required"},
		{"upper case", "DC-East", "must be a DNS label"},
		{"underscore", "dc_east", "must be a DNS label"},
		{"too long", strings.Repeat("a", 64), "must be a DNS label"},
		{"valid", "dc-east", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := (&options{clusterName: tc.cluster}).validate()
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("want no error, got %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("want an error containing %q, got %v", tc.wantErr, err)
			}
		})
	}
}
