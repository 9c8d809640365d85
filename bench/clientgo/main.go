// Command clientgo-bench syncs every Pod of an API server into a client-go SharedIndexInformer
// (indexers: namespace, one label key, owner uid) and prints one JSON line:
//
//	{"objects":N,"seconds":S,"objects_per_sec":X,"peak_rss_bytes":B}
//
// It is the client-go column of kubeforge's informer benchmark (runtime/benches/informer.rs),
// run against the same server as the Rust contenders. See README.md for the flags.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
)

type result struct {
	Objects       int     `json:"objects"`
	Seconds       float64 `json:"seconds"`
	ObjectsPerSec float64 `json:"objects_per_sec"`
	PeakRSSBytes  int64   `json:"peak_rss_bytes"`
}

func main() {
	kubeconfig := flag.String("kubeconfig", os.Getenv("KUBECONFIG"), "path of the kubeconfig of the server to sync from (default $KUBECONFIG)")
	namespace := flag.String("namespace", "", "sync Pods of this namespace only (default: all namespaces)")
	labelKey := flag.String("label-key", "app", "label key of the label indexer")
	expect := flag.Int("expect", -1, "fail unless exactly this many Pods were synced (-1: no check)")
	timeout := flag.Duration("timeout", 10*time.Minute, "give up when the cache has not synced after this long")
	protobuf := flag.Bool("protobuf", false, "ask for protobuf instead of JSON (the embedded server speaks JSON only)")
	watchList := flag.Bool("watch-list", false, "use streaming lists (WatchListClient) instead of a paginated LIST")
	dropManagedFields := flag.Bool("drop-managed-fields", false, "drop metadata.managedFields before caching (SetTransform), as kubeforge does by default")
	flag.Parse()

	if err := run(*kubeconfig, *namespace, *labelKey, *expect, *timeout, *protobuf, *watchList, *dropManagedFields); err != nil {
		fmt.Fprintf(os.Stderr, "clientgo-bench: %v\n", err)
		os.Exit(1)
	}
}

func run(kubeconfig, namespace, labelKey string, expect int, timeout time.Duration, protobuf, watchList, dropManagedFields bool) error {
	if kubeconfig == "" {
		return fmt.Errorf("no kubeconfig: pass --kubeconfig PATH or set KUBECONFIG")
	}
	// client-go reads its feature gates from KUBE_FEATURE_* on first use; set ours before that so
	// the initial sync is a paginated LIST, like kube-runtime's and kubeforge's reflectors.
	if err := os.Setenv("KUBE_FEATURE_WatchListClient", strconv.FormatBool(watchList)); err != nil {
		return err
	}
	config, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return fmt.Errorf("reading kubeconfig %s: %w", kubeconfig, err)
	}
	// The informer makes a handful of requests; client-side throttling must not be what we measure.
	config.QPS = 1000
	config.Burst = 1000
	if protobuf {
		config.ContentType = "application/vnd.kubernetes.protobuf"
		config.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	}
	client, err := kubernetes.NewForConfig(config)
	if err != nil {
		return fmt.Errorf("building a client from %s: %w", kubeconfig, err)
	}

	factory := informers.NewSharedInformerFactoryWithOptions(client, 0, informers.WithNamespace(namespace))
	informer := factory.Core().V1().Pods().Informer()
	indexers := cache.Indexers{
		"label:" + labelKey: func(obj interface{}) ([]string, error) {
			meta, err := metaOf(obj)
			if err != nil {
				return nil, err
			}
			if v, ok := meta.GetLabels()[labelKey]; ok {
				return []string{v}, nil
			}
			return nil, nil
		},
		"owner": func(obj interface{}) ([]string, error) {
			meta, err := metaOf(obj)
			if err != nil {
				return nil, err
			}
			refs := meta.GetOwnerReferences()
			uids := make([]string, 0, len(refs))
			for _, ref := range refs {
				uids = append(uids, string(ref.UID))
			}
			return uids, nil
		},
	}
	if dropManagedFields {
		if err := informer.SetTransform(func(obj interface{}) (interface{}, error) {
			if pod, ok := obj.(*corev1.Pod); ok {
				pod.ManagedFields = nil
			}
			return obj, nil
		}); err != nil {
			return fmt.Errorf("setting the transform: %w", err)
		}
	}
	// The factory's Pod informer already indexes by namespace; add it only if that ever changes.
	if _, ok := informer.GetIndexer().GetIndexers()[cache.NamespaceIndex]; !ok {
		indexers[cache.NamespaceIndex] = cache.MetaNamespaceIndexFunc
	}
	if err := informer.AddIndexers(indexers); err != nil {
		return fmt.Errorf("adding indexers: %w", err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	start := time.Now()
	go informer.Run(ctx.Done())
	if !cache.WaitForCacheSync(ctx.Done(), informer.HasSynced) {
		return fmt.Errorf("the Pod informer did not sync within %s (is the server at %s up?)", timeout, config.Host)
	}
	seconds := time.Since(start).Seconds()
	objects := len(informer.GetStore().ListKeys())
	if expect >= 0 && objects != expect {
		return fmt.Errorf("synced %d Pods, expected %d", objects, expect)
	}
	rss, err := peakRSS()
	if err != nil {
		return err
	}
	perSec := 0.0
	if seconds > 0 {
		perSec = float64(objects) / seconds
	}
	return json.NewEncoder(os.Stdout).Encode(result{Objects: objects, Seconds: seconds, ObjectsPerSec: perSec, PeakRSSBytes: rss})
}

func metaOf(obj interface{}) (metav1.Object, error) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return nil, fmt.Errorf("indexer got %T, expected *v1.Pod", obj)
	}
	return pod, nil
}

// peakRSS reads the process's high-water resident set size (VmHWM) from /proc/self/status.
func peakRSS() (int64, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, fmt.Errorf("reading peak RSS: %w", err)
	}
	defer f.Close()
	scanner := bufio.NewScanner(f)
	for scanner.Scan() {
		line := scanner.Text()
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			fields := strings.Fields(rest)
			if len(fields) != 2 || fields[1] != "kB" {
				return 0, fmt.Errorf("unexpected VmHWM line %q in /proc/self/status", line)
			}
			kb, err := strconv.ParseInt(fields[0], 10, 64)
			if err != nil {
				return 0, fmt.Errorf("parsing VmHWM line %q: %w", line, err)
			}
			return kb * 1024, nil
		}
	}
	if err := scanner.Err(); err != nil {
		return 0, fmt.Errorf("reading /proc/self/status: %w", err)
	}
	return 0, fmt.Errorf("no VmHWM line in /proc/self/status")
}
