package controller

import (
	"testing"
	"time"

	"github.com/robfig/cron/v3"
)

func TestDueSlotCollapsesMissedSlotsIntoOne(t *testing.T) {
	t0 := time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	every10m, _ := cron.ParseStandard("*/10 * * * *")
	everySecond, _ := cron.ParseStandard("@every 1s")
	for _, tc := range []struct {
		name            string
		sched           cron.Schedule
		last, now       time.Time
		wantDue, wantNx time.Time
	}{
		{"nothing due yet", every10m, at(0), at(5 * time.Minute), time.Time{}, at(10 * time.Minute)},
		{"one slot due", every10m, at(0), at(12 * time.Minute), at(10 * time.Minute), at(20 * time.Minute)},
		{"operator down for three slots: one run, for the latest", every10m, at(0), at(35 * time.Minute), at(30 * time.Minute), at(40 * time.Minute)},
		{"exactly on the slot", every10m, at(0), at(10 * time.Minute), at(10 * time.Minute), at(20 * time.Minute)},
		{"already ran this slot", every10m, at(10 * time.Minute), at(15 * time.Minute), time.Time{}, at(20 * time.Minute)},
		{"a day of missed seconds", everySecond, at(0), at(24 * time.Hour), at(24 * time.Hour), at(24*time.Hour + time.Second)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			due, next := dueSlot(tc.sched, tc.last, tc.now)
			if !due.Equal(tc.wantDue) || !next.Equal(tc.wantNx) {
				t.Fatalf("dueSlot = %s, %s; want %s, %s", due, next, tc.wantDue, tc.wantNx)
			}
		})
	}
}
