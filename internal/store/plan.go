package store

import (
	"strconv"
	"strings"
)

// PlanName names a plan. Plans are labels on the chart values; their figures live in Plans.
type PlanName string

const (
	Basic    PlanName = "basic"
	Standard PlanName = "standard"
	Premium  PlanName = "premium"
)

// PlanNames lists every plan, smallest first.
var PlanNames = []PlanName{Basic, Standard, Premium}

// ResourceList is a CPU and memory figure in Kubernetes quantity notation.
type ResourceList struct {
	CPU    string `json:"cpu"`
	Memory string `json:"memory"`
}

// Resources are one component's container requests and limits.
type Resources struct {
	Requests ResourceList `json:"requests"`
	Limits   ResourceList `json:"limits"`
}

// Storage are the sizes of a store's volumes. They only ever grow: a PVC can be expanded, not shrunk.
type Storage struct {
	Uploads  string `json:"uploads"`
	Database string `json:"database"`
}

// Quota is the namespace's ResourceQuota: the ceiling on everything the store's chart (and its hooks) runs.
type Quota struct {
	Requests ResourceList
	Limits   ResourceList
	Pods     int
	PVCs     int
	Storage  string // requests.storage over all claims
}

// LimitRange are the defaults for containers that set no resources (hook jobs, init containers), so that
// they are admitted under the quota.
type LimitRange struct {
	Default        ResourceList
	DefaultRequest ResourceList
}

// Plan is every figure a plan sets.
type Plan struct {
	Name     PlanName
	Replicas int // app replicas
	App      Resources
	Database Resources
	Cache    Resources // medusa's redis
	Storage  Storage
	Quota    Quota
	Limits   LimitRange
}

// Plans is the one plan table. The quota of each plan covers its components with one extra app replica for
// a rolling update (TestPlanQuotaCoversComponents checks it), and storage sizes never get smaller from one
// plan to the next bigger one.
var Plans = map[PlanName]Plan{
	Basic: {
		Name:     Basic,
		Replicas: 1,
		App:      res("100m", "256Mi", "1", "512Mi"),
		Database: res("100m", "256Mi", "500m", "512Mi"),
		Cache:    res("50m", "64Mi", "200m", "128Mi"),
		Storage:  Storage{Uploads: "5Gi", Database: "10Gi"},
		Quota: Quota{
			Requests: ResourceList{CPU: "1", Memory: "2Gi"},
			Limits:   ResourceList{CPU: "4", Memory: "4Gi"},
			Pods:     10, PVCs: 4, Storage: "20Gi",
		},
		Limits: LimitRange{
			Default:        ResourceList{CPU: "500m", Memory: "256Mi"},
			DefaultRequest: ResourceList{CPU: "50m", Memory: "64Mi"},
		},
	},
	Standard: {
		Name:     Standard,
		Replicas: 2,
		App:      res("250m", "512Mi", "2", "1Gi"),
		Database: res("250m", "512Mi", "1", "1Gi"),
		Cache:    res("100m", "128Mi", "500m", "256Mi"),
		Storage:  Storage{Uploads: "20Gi", Database: "40Gi"},
		Quota: Quota{
			Requests: ResourceList{CPU: "2", Memory: "4Gi"},
			Limits:   ResourceList{CPU: "10", Memory: "8Gi"},
			Pods:     20, PVCs: 4, Storage: "80Gi",
		},
		Limits: LimitRange{
			Default:        ResourceList{CPU: "500m", Memory: "512Mi"},
			DefaultRequest: ResourceList{CPU: "50m", Memory: "64Mi"},
		},
	},
	Premium: {
		Name:     Premium,
		Replicas: 3,
		App:      res("500m", "1Gi", "4", "2Gi"),
		Database: res("1", "2Gi", "2", "4Gi"),
		Cache:    res("250m", "256Mi", "1", "512Mi"),
		Storage:  Storage{Uploads: "50Gi", Database: "100Gi"},
		Quota: Quota{
			Requests: ResourceList{CPU: "4", Memory: "8Gi"},
			Limits:   ResourceList{CPU: "24", Memory: "16Gi"},
			Pods:     30, PVCs: 4, Storage: "200Gi",
		},
		Limits: LimitRange{
			Default:        ResourceList{CPU: "1", Memory: "1Gi"},
			DefaultRequest: ResourceList{CPU: "100m", Memory: "128Mi"},
		},
	},
}

func res(reqCPU, reqMem, limCPU, limMem string) Resources {
	return Resources{
		Requests: ResourceList{CPU: reqCPU, Memory: reqMem},
		Limits:   ResourceList{CPU: limCPU, Memory: limMem},
	}
}

// StorageShrinks reports whether moving a store from plan from to plan to would make any volume smaller.
// Such a change is refused before it reaches Git: a PVC cannot shrink, and trying would leave the release
// failed. Unknown plans count as shrinking, so a mistake errs on the side of the data.
func StorageShrinks(from, to PlanName) bool {
	a, ok1 := Plans[from]
	b, ok2 := Plans[to]
	if !ok1 || !ok2 {
		return true
	}
	return Bytes(b.Storage.Uploads) < Bytes(a.Storage.Uploads) || Bytes(b.Storage.Database) < Bytes(a.Storage.Database)
}

// Bytes returns the size of a binary-suffixed storage quantity of the plan table ("512Mi", "10Gi", "1Ti"),
// or -1 if it is not one. The plan table uses only these forms (a test checks it), which keeps this package
// free of the Kubernetes quantity library.
func Bytes(q string) int64 {
	mult := map[string]int64{"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "Ti": 1 << 40}
	if len(q) < 3 {
		return -1
	}
	m, ok := mult[q[len(q)-2:]]
	if !ok {
		return -1
	}
	n, err := strconv.ParseInt(strings.TrimSpace(q[:len(q)-2]), 10, 64)
	if err != nil || n < 0 {
		return -1
	}
	return n * m
}

// MilliCPU returns a CPU quantity of the plan table ("250m", "2") in millicores, or -1.
func MilliCPU(q string) int64 {
	if strings.HasSuffix(q, "m") {
		n, err := strconv.ParseInt(q[:len(q)-1], 10, 64)
		if err != nil || n < 0 {
			return -1
		}
		return n
	}
	n, err := strconv.ParseInt(q, 10, 64)
	if err != nil || n < 0 {
		return -1
	}
	return n * 1000
}
