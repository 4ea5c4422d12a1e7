package policy_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"nri-memqos/pkg/config"
	"nri-memqos/pkg/policy"
)

func TestResolveRequest(t *testing.T) {
	// MemTotal/1000 = 4 MiB exactly.
	node := policy.Node{MemTotal: 1000 * 4096 * 1024, PageSize: page}
	reqAnn := policy.AnnotationRequestPrefix + "app"
	all := func() (map[string]string, map[string]string, map[string]string) {
		return map[string]string{reqAnn: "100Mi", policy.AnnotationRequest: "200Mi"},
			map[string]string{policy.AnnotationRecordedRequest: "314572800"},
			map[string]string{"memory.min": "419430400", "memory.low": "524288000"}
	}
	type tcase struct {
		name     string
		qos      policy.QOSClass
		podAnn   map[string]string
		ctrAnn   map[string]string
		unified  map[string]string
		limit    int64
		adj      *int64
		want     int64
		wantSrc  policy.RequestSource
		wantErr  []string
		fresh    bool   // unified is kubelet's own request (creation, resize)
		recorded *int64 // the plugin's saved request
	}
	pa, ca, u := all()
	tests := []tcase{
		{name: "container annotation beats everything", qos: policy.QOSBurstable, podAnn: pa, ctrAnn: ca, unified: u, limit: 1 * Gi, adj: i64(998),
			want: 100 * Mi, wantSrc: policy.RequestFromContainerAnnotation},
		{name: "pod annotation beats recorded", qos: policy.QOSBurstable, podAnn: map[string]string{policy.AnnotationRequest: "200Mi"}, ctrAnn: ca, unified: u, limit: 1 * Gi, adj: i64(998),
			want: 200 * Mi, wantSrc: policy.RequestFromPodAnnotation},
		{name: "container annotation of another container ignored", qos: policy.QOSBurstable, podAnn: map[string]string{policy.AnnotationRequestPrefix + "other": "1Mi", policy.AnnotationRequest: "200Mi"},
			want: 200 * Mi, wantSrc: policy.RequestFromPodAnnotation},
		{name: "recorded beats unified memory.min", qos: policy.QOSBurstable, ctrAnn: ca, unified: u, limit: 1 * Gi, adj: i64(998),
			want: 300 * Mi, wantSrc: policy.RequestFromRecorded},
		{name: "kubelet's fresh memory.min beats recorded (resize)", qos: policy.QOSBurstable, ctrAnn: ca, unified: u, fresh: true, recorded: i64(50 * Mi),
			want: 400 * Mi, wantSrc: policy.RequestFromUnifiedMin},
		{name: "kubelet's fresh memory.low beats recorded (Burstable)", qos: policy.QOSBurstable, ctrAnn: ca, unified: map[string]string{"memory.low": "524288000"}, fresh: true,
			want: 500 * Mi, wantSrc: policy.RequestFromUnifiedLow},
		{name: "fresh unified without request keys falls to recorded", qos: policy.QOSBurstable, ctrAnn: ca, unified: map[string]string{"cpu.weight": "10"}, fresh: true, recorded: i64(50 * Mi),
			want: 50 * Mi, wantSrc: policy.RequestFromRecorded},
		{name: "saved request beats the creation annotation", qos: policy.QOSBurstable, ctrAnn: ca, unified: u, recorded: i64(50 * Mi),
			want: 50 * Mi, wantSrc: policy.RequestFromRecorded},
		{name: "pod annotation beats fresh unified", qos: policy.QOSBurstable, podAnn: map[string]string{policy.AnnotationRequest: "200Mi"}, unified: u, fresh: true,
			want: 200 * Mi, wantSrc: policy.RequestFromPodAnnotation},
		{name: "recorded zero is used", qos: policy.QOSBurstable, ctrAnn: map[string]string{policy.AnnotationRecordedRequest: "0"}, unified: u,
			want: 0, wantSrc: policy.RequestFromRecorded},
		{name: "recorded garbage falls through to memory.min", qos: policy.QOSBurstable, ctrAnn: map[string]string{policy.AnnotationRecordedRequest: "300Mi"}, unified: u,
			want: 400 * Mi, wantSrc: policy.RequestFromUnifiedMin},
		{name: "recorded negative falls through to memory.min", qos: policy.QOSBurstable, ctrAnn: map[string]string{policy.AnnotationRecordedRequest: "-5"}, unified: u,
			want: 400 * Mi, wantSrc: policy.RequestFromUnifiedMin},
		{name: "recorded on pod annotations is not used", qos: policy.QOSBurstable, podAnn: map[string]string{policy.AnnotationRecordedRequest: "314572800"}, unified: u,
			want: 400 * Mi, wantSrc: policy.RequestFromUnifiedMin},
		{name: "unified memory.min beats memory.low", qos: policy.QOSBurstable, unified: u, limit: 1 * Gi, adj: i64(998),
			want: 400 * Mi, wantSrc: policy.RequestFromUnifiedMin},
		{name: "unified memory.min for guaranteed beats limit", qos: policy.QOSGuaranteed, unified: map[string]string{"memory.min": "419430400"}, limit: 1 * Gi,
			want: 400 * Mi, wantSrc: policy.RequestFromUnifiedMin},
		{name: "unified memory.min 0 ignored", qos: policy.QOSBurstable, unified: map[string]string{"memory.min": "0", "memory.low": "524288000"},
			want: 500 * Mi, wantSrc: policy.RequestFromUnifiedLow},
		{name: "unified memory.min max ignored", qos: policy.QOSBurstable, unified: map[string]string{"memory.min": "max", "memory.low": "524288000"},
			want: 500 * Mi, wantSrc: policy.RequestFromUnifiedLow},
		{name: "unified memory.low for burstable beats oom_score_adj", qos: policy.QOSBurstable, unified: map[string]string{"memory.low": "524288000"}, limit: 1 * Gi, adj: i64(998),
			want: 500 * Mi, wantSrc: policy.RequestFromUnifiedLow},
		{name: "unified memory.low not for guaranteed: limit used", qos: policy.QOSGuaranteed, unified: map[string]string{"memory.low": "524288000"}, limit: 1 * Gi,
			want: 1 * Gi, wantSrc: policy.RequestFromGuaranteedLimit},
		{name: "unified memory.low not for best-effort", qos: policy.QOSBestEffort, unified: map[string]string{"memory.low": "524288000"},
			want: 0, wantSrc: policy.RequestUnknown},
		{name: "unified memory.low not for unknown QoS", qos: policy.QOSUnknown, unified: map[string]string{"memory.low": "524288000"},
			want: 0, wantSrc: policy.RequestUnknown},
		{name: "guaranteed limit beats oom_score_adj", qos: policy.QOSGuaranteed, limit: 1 * Gi, adj: i64(-997),
			want: 1 * Gi, wantSrc: policy.RequestFromGuaranteedLimit},
		{name: "guaranteed without limit is unknown", qos: policy.QOSGuaranteed, adj: i64(998),
			want: 0, wantSrc: policy.RequestUnknown},
		{name: "oom_score_adj 998", qos: policy.QOSBurstable, adj: i64(998),
			want: 8 * Mi, wantSrc: policy.RequestFromOOMScoreAdj},
		{name: "oom_score_adj 3 (lowest burstable)", qos: policy.QOSBurstable, adj: i64(3),
			want: 997 * 4 * Mi, wantSrc: policy.RequestFromOOMScoreAdj},
		{name: "oom_score_adj 500", qos: policy.QOSBurstable, adj: i64(500),
			want: 500 * 4 * Mi, wantSrc: policy.RequestFromOOMScoreAdj},
		{name: "oom_score_adj capped at limit", qos: policy.QOSBurstable, adj: i64(500), limit: 100 * Mi,
			want: 100 * Mi, wantSrc: policy.RequestFromOOMScoreAdj},
		{name: "oom_score_adj 999 is unknown", qos: policy.QOSBurstable, adj: i64(999),
			want: 0, wantSrc: policy.RequestUnknown},
		{name: "oom_score_adj 2 is unknown", qos: policy.QOSBurstable, adj: i64(2),
			want: 0, wantSrc: policy.RequestUnknown},
		{name: "oom_score_adj 1000 is unknown", qos: policy.QOSBurstable, adj: i64(1000),
			want: 0, wantSrc: policy.RequestUnknown},
		{name: "oom_score_adj from guaranteed pod ignored", qos: policy.QOSGuaranteed, adj: i64(998),
			want: 0, wantSrc: policy.RequestUnknown},
		{name: "oom_score_adj from best-effort pod ignored", qos: policy.QOSBestEffort, adj: i64(998),
			want: 0, wantSrc: policy.RequestUnknown},
		{name: "nothing known", qos: policy.QOSBurstable,
			want: 0, wantSrc: policy.RequestUnknown},
		{name: "annotation equal to limit ok", qos: policy.QOSBurstable, podAnn: map[string]string{reqAnn: "512Mi"}, limit: 512 * Mi,
			want: 512 * Mi, wantSrc: policy.RequestFromContainerAnnotation},
		{name: "annotation not page aligned kept as is", qos: policy.QOSBurstable, podAnn: map[string]string{reqAnn: "1000000"},
			want: 1000000, wantSrc: policy.RequestFromContainerAnnotation},
		{name: "annotation decimal SI", qos: policy.QOSBurstable, podAnn: map[string]string{policy.AnnotationRequest: "1G"},
			want: 1000000000, wantSrc: policy.RequestFromPodAnnotation},
		{name: "bad container annotation abc", qos: policy.QOSBurstable, podAnn: map[string]string{reqAnn: "abc", policy.AnnotationRequest: "200Mi"},
			wantErr: []string{"pod default/web", `container "app"`, "annotation " + reqAnn, `"abc"`, "allowed: a memory quantity from 0 to 8Ei"}},
		{name: "bad container annotation -1Mi", qos: policy.QOSBurstable, podAnn: map[string]string{reqAnn: "-1Mi"},
			wantErr: []string{"annotation " + reqAnn, `"-1Mi"`, "negative", "allowed: a memory quantity from 0 to 8Ei"}},
		{name: "bad pod annotation abc", qos: policy.QOSBurstable, podAnn: map[string]string{policy.AnnotationRequest: "abc"}, ctrAnn: ca,
			wantErr: []string{"annotation " + policy.AnnotationRequest, `"abc"`, "allowed:"}},
		{name: "bad pod annotation -1Mi", qos: policy.QOSBurstable, podAnn: map[string]string{policy.AnnotationRequest: "-1Mi"},
			wantErr: []string{"annotation " + policy.AnnotationRequest, `"-1Mi"`, "allowed:"}},
		{name: "container annotation above limit", qos: policy.QOSBurstable, podAnn: map[string]string{reqAnn: "600Mi"}, limit: 512 * Mi,
			wantErr: []string{"annotation " + reqAnn, `"600Mi"`, "above the container's memory limit 536870912", "allowed: at most the limit"}},
		{name: "pod annotation above limit", qos: policy.QOSBurstable, podAnn: map[string]string{policy.AnnotationRequest: "1Gi"}, limit: 512 * Mi,
			wantErr: []string{"annotation " + policy.AnnotationRequest, "above the container's memory limit"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := policy.Pod{Namespace: "default", Name: "web", Annotations: tc.podAnn}
			c := policy.Container{Name: "app", Annotations: tc.ctrAnn, Unified: tc.unified, Limit: tc.limit, OOMScoreAdj: tc.adj, UnifiedFromKubelet: tc.fresh, Recorded: tc.recorded}
			got, src, err := policy.ResolveRequest(config.Default(), p, c, tc.qos, node)
			if tc.wantErr != nil {
				if err == nil {
					t.Fatalf("ResolveRequest = %d (%s), want error", got, src)
				}
				checkInputError(t, err)
				containsAll(t, err.Error(), tc.wantErr...)
				return
			}
			if err != nil {
				t.Fatalf("ResolveRequest: unexpected error %v", err)
			}
			if got != tc.want || src != tc.wantSrc {
				t.Errorf("ResolveRequest = (%d, %q), want (%d, %q)", got, src, tc.want, tc.wantSrc)
			}
		})
	}
}

// TestResolveRequestOOMScoreAdjPageAligned checks the oom_score_adj bound is
// aligned down to the page when MemTotal/1000 is not a page multiple.
func TestResolveRequestOOMScoreAdjPageAligned(t *testing.T) {
	node := policy.Node{MemTotal: 8 * Gi, PageSize: page}
	c := policy.Container{Name: "app", OOMScoreAdj: i64(998)}
	got, src, err := policy.ResolveRequest(config.Default(), policy.Pod{}, c, policy.QOSBurstable, node)
	if err != nil {
		t.Fatal(err)
	}
	// 2 * (8Gi/1000) = 2 * 8589934 = 17179868, aligned down: 17178624.
	if got != 17178624 || src != policy.RequestFromOOMScoreAdj {
		t.Errorf("ResolveRequest = (%d, %q), want (17178624, %q)", got, src, policy.RequestFromOOMScoreAdj)
	}
	node.MemTotal = 0
	if got, src, _ := policy.ResolveRequest(config.Default(), policy.Pod{}, c, policy.QOSBurstable, node); got != 0 || src != policy.RequestUnknown {
		t.Errorf("without MemTotal: ResolveRequest = (%d, %q), want (0, unknown)", got, src)
	}
}

// TestResolveRequestHugeQuantity: a request annotation too large for int64
// must be rejected (or saturate), never come back as 0 or a negative number.
func TestResolveRequestHugeQuantity(t *testing.T) {
	const maxInt64 = int64(^uint64(0) >> 1)
	node := policy.Node{MemTotal: 8 * Gi}
	for _, v := range []string{"10E", "100E", "9223372036854775808", "18446744073709551616", "1e19", "16Ei"} {
		for _, limit := range []int64{0, 512 * Mi} {
			t.Run(fmt.Sprintf("%s/limit=%d", v, limit), func(t *testing.T) {
				p := policy.Pod{Namespace: "default", Name: "web", Annotations: map[string]string{policy.AnnotationRequestPrefix + "app": v}}
				c := policy.Container{Name: "app", Limit: limit}
				got, src, err := policy.ResolveRequest(config.Default(), p, c, policy.QOSBurstable, node)
				if err != nil {
					checkInputError(t, err)
					return
				}
				if limit > 0 {
					t.Errorf("ResolveRequest(%q) with limit %d = (%d, %q), want an above-the-limit error", v, limit, got, src)
					return
				}
				if got != maxInt64 {
					t.Errorf("ResolveRequest(%q) = (%d, %q), want an error or saturation at %d", v, got, src, maxInt64)
				}
			})
		}
	}
}

// Pod annotations are tenant input: a quantity with a huge exponent must be
// refused by its syntax, not handed to the quantity parser, which spins for
// tens of seconds on 1e99999999 while the plugin serves no one else.
func TestResolveRequestHugeExponent(t *testing.T) {
	for _, v := range []string{"1e99999999", "9e18000000", "1E-99999999", strings.Repeat("9", 65)} {
		p := policy.Pod{Namespace: "default", Name: "web", Annotations: map[string]string{policy.AnnotationRequest: v}}
		start := time.Now()
		_, _, err := policy.ResolveRequest(config.Default(), p, policy.Container{Name: "app"}, policy.QOSBurstable, policy.Node{})
		if err == nil || !strings.Contains(err.Error(), "not a quantity") {
			t.Errorf("%s: error = %v; want not a quantity", v, err)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("%s: took %v", v, d)
		}
	}
}

// TestRecordedRequestNotFromThePod: CRI-O copies pod annotations into each
// container's, so memqos.nri.io/resolved-request on the pod would reach the
// container as if the plugin had recorded it. The same value on the pod is
// the tenant's word and is not taken as the plugin's record; a different
// value on the container is the plugin's (its adjustment replaced the
// copy at creation).
func TestRecordedRequestNotFromThePod(t *testing.T) {
	node := policy.Node{MemTotal: 8 * Gi, PageSize: page}
	unified := map[string]string{"memory.min": "104857600"} // 100Mi, kubelet's
	for _, tc := range []struct {
		name     string
		pod, ctr string // "" means absent
		want     int64
		wantSrc  policy.RequestSource
	}{
		{"the plugin's record", "", "314572800", 300 * Mi, policy.RequestFromRecorded},
		{"copied from the pod: not a record", "314572800", "314572800", 100 * Mi, policy.RequestFromUnifiedMin},
		{"the plugin replaced the pod's copy", "999999999", "314572800", 300 * Mi, policy.RequestFromRecorded},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := policy.Pod{Namespace: "default", Name: "web", Annotations: map[string]string{}}
			c := policy.Container{Name: "app", Annotations: map[string]string{}, Unified: unified}
			if tc.pod != "" {
				p.Annotations[policy.AnnotationRecordedRequest] = tc.pod
			}
			if tc.ctr != "" {
				c.Annotations[policy.AnnotationRecordedRequest] = tc.ctr
			}
			got, src, err := policy.ResolveRequest(config.Default(), p, c, policy.QOSBurstable, node)
			if err != nil || got != tc.want || src != tc.wantSrc {
				t.Errorf("ResolveRequest = %d, %q, %v; want %d, %q", got, src, err, tc.want, tc.wantSrc)
			}
		})
	}
}
