package rollout

import (
	"reflect"
	"strings"
	"testing"
)

func TestPlanCanary(t *testing.T) {
	type step struct {
		requested      []int
		canary, stable int32
		weight         string
		exact          bool
	}
	cases := []struct {
		replicas int32
		steps    []int
		want     []step
	}{
		// Two replicas only give 50 %: 10 and 50 become one step.
		{2, []int{10, 50, 100}, []step{{[]int{10, 50}, 1, 1, "50%", false}, {[]int{100}, 2, 0, "100%", true}}},
		// Ten replicas give every multiple of 10 exactly.
		{10, []int{10, 50, 100}, []step{{[]int{10}, 1, 9, "10%", true}, {[]int{50}, 5, 5, "50%", true}, {[]int{100}, 10, 0, "100%", true}}},
		// Three replicas: 10 -> 1/3, 50 -> 2/3 (1.5 rounds up), 90 -> capped at 2/3 and merged.
		{3, []int{10, 50, 90, 100}, []step{{[]int{10}, 1, 2, "33.3%", false}, {[]int{50, 90}, 2, 1, "66.7%", false}, {[]int{100}, 3, 0, "100%", true}}},
		// 99 % on 4 replicas keeps one stable pod: 75 %.
		{4, []int{99, 100}, []step{{[]int{99}, 3, 1, "75%", false}, {[]int{100}, 4, 0, "100%", true}}},
		{2, []int{100}, []step{{[]int{100}, 2, 0, "100%", true}}},
	}
	for _, c := range cases {
		plan, err := PlanCanary(c.replicas, c.steps)
		if err != nil {
			t.Fatalf("%d replicas %v: %v", c.replicas, c.steps, err)
		}
		var got []step
		for _, s := range plan {
			got = append(got, step{s.Requested, s.CanaryPods, s.StablePods, s.WeightString(), s.Note == ""})
			if s.CanaryPods+s.StablePods != c.replicas {
				t.Errorf("%d replicas %v: step %v has %d+%d pods", c.replicas, c.steps, s.Requested, s.CanaryPods, s.StablePods)
			}
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("%d replicas %v:\n got %+v\nwant %+v", c.replicas, c.steps, got, c.want)
		}
	}
}

func TestPlanCanaryNoteSaysRealWeight(t *testing.T) {
	plan, err := PlanCanary(2, []int{10, 50, 100})
	if err != nil {
		t.Fatal(err)
	}
	want := "asked 10% and 50%; 2 replicas give 50% (1 of 2 pods on the new version), so these steps are one"
	if !strings.HasPrefix(plan[0].Note, want) {
		t.Fatalf("note %q does not start with %q", plan[0].Note, want)
	}
}

func TestPlanCanaryRefuses(t *testing.T) {
	for _, c := range []struct {
		replicas int32
		steps    []int
		want     string
	}{
		{1, []int{50, 100}, "needs at least 2 replicas"},
		{2, []int{10, 50}, "do not end at 100%"},
		{2, []int{0, 100}, "weight must be 1-100"},
		{2, nil, "do not end at 100%"},
	} {
		_, err := PlanCanary(c.replicas, c.steps)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%d replicas %v: want error with %q, got %v", c.replicas, c.steps, c.want, err)
		}
	}
}
