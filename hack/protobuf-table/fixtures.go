package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	apiextv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer/json"
	"k8s.io/apimachinery/pkg/runtime/serializer/protobuf"
	"k8s.io/apimachinery/pkg/runtime/serializer/streaming"
	"k8s.io/apimachinery/pkg/util/intstr"
	apiregv1 "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1"
	"k8s.io/utils/ptr"
)

// writeFixtures writes each sample as client-go's protobuf serializer encodes it (NAME.pb) and
// as the JSON serializer encodes the object decoded back from those bytes (NAME.json): the JSON
// a server that decodes the protobuf body into Go types sees.
func writeFixtures(s *runtime.Scheme, dir string) {
	pb := protobuf.NewSerializer(s, s)
	js := json.NewSerializerWithOptions(json.DefaultMetaFactory, s, s, json.SerializerOptions{})
	if err := os.MkdirAll(dir, 0o755); err != nil {
		panic(err)
	}
	for name, obj := range samples() {
		gvks, _, err := s.ObjectKinds(obj)
		if err != nil {
			panic(err)
		}
		gvk := gvks[0]
		switch name {
		case "delete-options":
			gvk = schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "DeleteOptions"}
		case "status":
			gvk = schema.GroupVersionKind{Version: "v1", Kind: "Status"}
		}
		obj.GetObjectKind().SetGroupVersionKind(gvk)
		var wire bytes.Buffer
		if err := pb.Encode(obj, &wire); err != nil {
			panic(fmt.Sprintf("%s: %v", name, err))
		}
		back, _, err := pb.Decode(wire.Bytes(), &gvk, nil)
		if err != nil {
			panic(fmt.Sprintf("%s: decode: %v", name, err))
		}
		back.GetObjectKind().SetGroupVersionKind(gvk)
		var text bytes.Buffer
		if err := js.Encode(back, &text); err != nil {
			panic(err)
		}
		write(filepath.Join(dir, name+".pb"), wire.Bytes())
		write(filepath.Join(dir, name+".json"), text.Bytes())
		if name == "configmap" {
			writeWatchFrame(s, wire.Bytes(), filepath.Join(dir, "configmap.watch-frame"))
		}
	}
}

// writeWatchFrame writes one frame of a protobuf watch stream as kube-apiserver writes it and
// client-go reads it: a 4-byte big-endian length, then a WatchEvent (no envelope) whose object
// is the enveloped object.
func writeWatchFrame(s *runtime.Scheme, object []byte, path string) {
	var frame bytes.Buffer
	enc := streaming.NewEncoder(protobuf.LengthDelimitedFramer.NewFrameWriter(&frame), protobuf.NewRawSerializer(s, s))
	if err := enc.Encode(&metav1.WatchEvent{Type: "MODIFIED", Object: runtime.RawExtension{Raw: object}}); err != nil {
		panic(err)
	}
	write(path, frame.Bytes())
}

func write(path string, data []byte) {
	if err := os.WriteFile(path, data, 0o644); err != nil {
		panic(err)
	}
}

func samples() map[string]runtime.Object {
	created := metav1.NewTime(time.Date(2026, 11, 30, 12, 0, 5, 0, time.UTC))
	return map[string]runtime.Object{
		"deployment": &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{
				Name: "web", Namespace: "shop", Labels: map[string]string{"app": "web"},
				Annotations:       map[string]string{"note": "ünïcode ✓"},
				UID:               "0b4c5f1e-1111-4a2b-9c3d-5e6f7a8b9c0d",
				ResourceVersion:   "42",
				Generation:        3,
				CreationTimestamp: created,
				ManagedFields: []metav1.ManagedFieldsEntry{{
					Manager: "kubectl-create", Operation: metav1.ManagedFieldsOperationUpdate,
					APIVersion: "apps/v1", Time: &created, FieldsType: "FieldsV1",
					FieldsV1: &metav1.FieldsV1{Raw: []byte(`{"f:spec":{"f:replicas":{}}}`)},
				}},
			},
			Spec: appsv1.DeploymentSpec{
				Replicas: ptr.To[int32](0),
				Selector: &metav1.LabelSelector{
					MatchLabels: map[string]string{"app": "web"},
					MatchExpressions: []metav1.LabelSelectorRequirement{{
						Key: "tier", Operator: metav1.LabelSelectorOpIn, Values: []string{"a", "b"},
					}},
				},
				Strategy: appsv1.DeploymentStrategy{
					Type: appsv1.RollingUpdateDeploymentStrategyType,
					RollingUpdate: &appsv1.RollingUpdateDeployment{
						MaxSurge: ptr.To(intstr.FromString("25%")), MaxUnavailable: ptr.To(intstr.FromInt32(0)),
					},
				},
				Template: corev1.PodTemplateSpec{
					ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"app": "web"}},
					Spec: corev1.PodSpec{
						Containers: []corev1.Container{{
							Name: "nginx", Image: "nginx:1.27", Args: []string{"-g", "daemon off;"},
							Ports: []corev1.ContainerPort{{Name: "http", ContainerPort: 8080, Protocol: corev1.ProtocolTCP}},
							Env: []corev1.EnvVar{
								{Name: "MODE", Value: "prod"},
								{Name: "NODE", ValueFrom: &corev1.EnvVarSource{FieldRef: &corev1.ObjectFieldSelector{FieldPath: "spec.nodeName"}}},
							},
							Resources: corev1.ResourceRequirements{
								Limits:   corev1.ResourceList{"cpu": resource.MustParse("500m"), "memory": resource.MustParse("128Mi")},
								Requests: corev1.ResourceList{"cpu": resource.MustParse("0.1")},
							},
							LivenessProbe: &corev1.Probe{
								ProbeHandler:  corev1.ProbeHandler{HTTPGet: &corev1.HTTPGetAction{Path: "/healthz", Port: intstr.FromString("http")}},
								PeriodSeconds: 10,
							},
							ReadinessProbe: &corev1.Probe{
								ProbeHandler: corev1.ProbeHandler{TCPSocket: &corev1.TCPSocketAction{Port: intstr.FromInt32(8080)}},
							},
							VolumeMounts: []corev1.VolumeMount{{Name: "conf", MountPath: "/etc/nginx", ReadOnly: true}},
						}},
						Volumes: []corev1.Volume{
							{Name: "conf", VolumeSource: corev1.VolumeSource{ConfigMap: &corev1.ConfigMapVolumeSource{
								LocalObjectReference: corev1.LocalObjectReference{Name: "nginx"}, DefaultMode: ptr.To[int32](0o644),
							}}},
							{Name: "scratch", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{SizeLimit: ptr.To(resource.MustParse("1Gi"))}}},
						},
						Tolerations:                   []corev1.Toleration{{Key: "k", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoExecute, TolerationSeconds: ptr.To[int64](-1)}},
						TerminationGracePeriodSeconds: ptr.To[int64](30),
					},
				},
			},
		},
		"configmap": &corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: "conf", GenerateName: "conf-"},
			Data:       map[string]string{"a.txt": "line\n", "empty": ""},
			BinaryData: map[string][]byte{"blob": {0, 1, 2, 255}},
			Immutable:  ptr.To(false),
		},
		"secret": &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{Name: "creds"},
			Type:       corev1.SecretTypeOpaque,
			Data:       map[string][]byte{"password": []byte("hunter2")},
			StringData: map[string]string{"user": "admin"},
		},
		"namespace": &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "shop"}},
		"pod":       pod(),
		"service": &corev1.Service{
			ObjectMeta: metav1.ObjectMeta{Name: "web"},
			Spec: corev1.ServiceSpec{
				Selector: map[string]string{"app": "web"},
				Ports:    []corev1.ServicePort{{Name: "http", Port: 80, TargetPort: intstr.FromString("http")}, {Port: 0}},
				Type:     corev1.ServiceTypeClusterIP, ClusterIP: "None",
			},
		},
		"job": &batchv1.Job{
			ObjectMeta: metav1.ObjectMeta{
				Name: "nightly-manual", Annotations: map[string]string{"cronjob.kubernetes.io/instantiate": "manual"},
				OwnerReferences: []metav1.OwnerReference{{
					APIVersion: "batch/v1", Kind: "CronJob", Name: "nightly", UID: "u-1", Controller: ptr.To(true),
				}},
			},
			Spec: batchv1.JobSpec{
				BackoffLimit: ptr.To[int32](6),
				Template: corev1.PodTemplateSpec{Spec: corev1.PodSpec{
					RestartPolicy: corev1.RestartPolicyOnFailure,
					Containers:    []corev1.Container{{Name: "run", Image: "busybox", Command: []string{"date"}}},
				}},
			},
		},
		"event":               coreEvent(created),
		"events-event":        eventsEvent(),
		"crd":                 crd(),
		"delete-options":      &metav1.DeleteOptions{GracePeriodSeconds: ptr.To[int64](0), PropagationPolicy: ptr.To(metav1.DeletePropagationForeground), Preconditions: &metav1.Preconditions{ResourceVersion: ptr.To("7")}, DryRun: []string{"All"}},
		"controller-revision": &appsv1.ControllerRevision{ObjectMeta: metav1.ObjectMeta{Name: "web-1"}, Revision: 1, Data: runtime.RawExtension{Raw: []byte(`{"spec":{"template":{"x":[1,2.5,"s",null,true]}}}`)}},
		"configmap-list": &corev1.ConfigMapList{
			ListMeta: metav1.ListMeta{ResourceVersion: "9", Continue: "next", RemainingItemCount: ptr.To[int64](3)},
			Items:    []corev1.ConfigMap{{ObjectMeta: metav1.ObjectMeta{Name: "a", Namespace: "shop"}, Data: map[string]string{"k": "v"}}, {ObjectMeta: metav1.ObjectMeta{Name: "b"}}},
		},
		"status": &metav1.Status{Status: metav1.StatusFailure, Message: `deployments.apps "web" not found`, Reason: metav1.StatusReasonNotFound, Code: 404,
			Details: &metav1.StatusDetails{Name: "web", Group: "apps", Kind: "deployments", Causes: []metav1.StatusCause{{Type: metav1.CauseTypeFieldValueInvalid, Message: "bad", Field: "spec.replicas"}}}},
		"partial-object-metadata-list": &metav1.PartialObjectMetadataList{
			ListMeta: metav1.ListMeta{ResourceVersion: "12"},
			Items: []metav1.PartialObjectMetadata{{ObjectMeta: metav1.ObjectMeta{Name: "web-1", Namespace: "shop", Labels: map[string]string{"app": "web"},
				OwnerReferences: []metav1.OwnerReference{{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: "web", UID: "u1", Controller: ptr.To(true)}}}}},
		},
		"apiservice": &apiregv1.APIService{ObjectMeta: metav1.ObjectMeta{Name: "v1alpha1.wardle.example.com"}, Spec: apiregv1.APIServiceSpec{Group: "wardle.example.com", Version: "v1alpha1", GroupPriorityMinimum: 2000, VersionPriority: 200, Service: &apiregv1.ServiceReference{Namespace: "ns", Name: "api", Port: ptr.To[int32](443)}, CABundle: []byte("-----BEGIN CERTIFICATE-----\n")}},
	}
}

func pod() *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "tool", Labels: map[string]string{"run": "tool"}},
		Spec: corev1.PodSpec{
			Containers: []corev1.Container{{
				Name: "tool", Image: "busybox", Stdin: true, TTY: true,
				SecurityContext: &corev1.SecurityContext{RunAsUser: ptr.To[int64](1000), Privileged: ptr.To(false), Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}},
			}},
			RestartPolicy: corev1.RestartPolicyNever,
			DNSPolicy:     corev1.DNSClusterFirst,
			Affinity: &corev1.Affinity{NodeAffinity: &corev1.NodeAffinity{RequiredDuringSchedulingIgnoredDuringExecution: &corev1.NodeSelector{
				NodeSelectorTerms: []corev1.NodeSelectorTerm{{MatchExpressions: []corev1.NodeSelectorRequirement{{Key: "zone", Operator: corev1.NodeSelectorOpIn, Values: []string{"a"}}}}},
			}}},
			Overhead: corev1.ResourceList{"memory": resource.MustParse("1.5Gi")},
		},
	}
}

func coreEvent(at metav1.Time) *corev1.Event {
	return &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Name: "web.1"},
		InvolvedObject: corev1.ObjectReference{Kind: "Deployment", Name: "web", APIVersion: "apps/v1"},
		Reason:         "ScalingReplicaSet", Message: "Scaled up", Type: corev1.EventTypeNormal, Count: 2,
		FirstTimestamp: at, LastTimestamp: at,
		EventTime: metav1.NewMicroTime(time.Date(2026, 11, 30, 12, 0, 5, 123456000, time.UTC)),
		Source:    corev1.EventSource{Component: "deployment-controller"},
	}
}

func eventsEvent() *eventsv1.Event {
	return &eventsv1.Event{
		ObjectMeta: metav1.ObjectMeta{Name: "web.2"},
		EventTime:  metav1.NewMicroTime(time.Date(2026, 11, 30, 12, 0, 5, 7000, time.UTC)),
		Series:     &eventsv1.EventSeries{Count: 3, LastObservedTime: metav1.NewMicroTime(time.Date(2026, 11, 30, 12, 1, 0, 0, time.UTC))},
		Reason:     "Pulled", Action: "Pull", Type: "Normal", ReportingController: "kubelet", ReportingInstance: "node-1",
		Regarding: corev1.ObjectReference{Kind: "Pod", Name: "tool"},
	}
}

func crd() *apiextv1.CustomResourceDefinition {
	props := map[string]apiextv1.JSONSchemaProps{
		"size":    {Type: "integer", Minimum: ptr.To(1.0), Maximum: ptr.To(99.5), Default: &apiextv1.JSON{Raw: []byte(`3`)}},
		"color":   {Type: "string", Enum: []apiextv1.JSON{{Raw: []byte(`"red"`)}, {Raw: []byte(`"blue"`)}}, Pattern: "^[a-z]+$"},
		"tags":    {Type: "array", Items: &apiextv1.JSONSchemaPropsOrArray{Schema: &apiextv1.JSONSchemaProps{Type: "string"}}, XListType: ptr.To("set")},
		"labels":  {Type: "object", AdditionalProperties: &apiextv1.JSONSchemaPropsOrBool{Allows: true, Schema: &apiextv1.JSONSchemaProps{Type: "string"}}},
		"closed":  {Type: "object", AdditionalProperties: &apiextv1.JSONSchemaPropsOrBool{Allows: false}},
		"port":    {XIntOrString: true, AnyOf: []apiextv1.JSONSchemaProps{{Type: "integer"}, {Type: "string"}}},
		"free":    {Type: "object", XPreserveUnknownFields: ptr.To(true), XEmbeddedResource: false},
		"pair":    {Type: "array", Items: &apiextv1.JSONSchemaPropsOrArray{JSONSchemas: []apiextv1.JSONSchemaProps{{Type: "string"}, {Type: "integer"}}}},
		"depends": {Type: "object", Dependencies: apiextv1.JSONSchemaDependencies{"a": {Property: []string{"b"}}}},
	}
	return &apiextv1.CustomResourceDefinition{
		ObjectMeta: metav1.ObjectMeta{Name: "gizmos.example.com"},
		Spec: apiextv1.CustomResourceDefinitionSpec{
			Group: "example.com", Scope: apiextv1.NamespaceScoped,
			Names: apiextv1.CustomResourceDefinitionNames{Plural: "gizmos", Singular: "gizmo", Kind: "Gizmo", ShortNames: []string{"gz"}},
			Versions: []apiextv1.CustomResourceDefinitionVersion{{
				Name: "v1", Served: true, Storage: true,
				Schema: &apiextv1.CustomResourceValidation{OpenAPIV3Schema: &apiextv1.JSONSchemaProps{
					Type: "object", Required: []string{"spec"},
					Properties: map[string]apiextv1.JSONSchemaProps{"spec": {
						Type: "object", Properties: props,
						XValidations: apiextv1.ValidationRules{{Rule: "self.size < 50", Message: "too big", FieldPath: ".size", Reason: ptr.To(apiextv1.FieldValueInvalid)}},
					}},
				}},
				Subresources:             &apiextv1.CustomResourceSubresources{Status: &apiextv1.CustomResourceSubresourceStatus{}, Scale: &apiextv1.CustomResourceSubresourceScale{SpecReplicasPath: ".spec.size", StatusReplicasPath: ".status.size"}},
				AdditionalPrinterColumns: []apiextv1.CustomResourceColumnDefinition{{Name: "Size", Type: "integer", JSONPath: ".spec.size"}},
			}},
		},
	}
}
