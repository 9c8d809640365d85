//! What kube-apiserver sets up and serves by itself, with no client having asked: the
//! `default/kubernetes` Service and its endpoints, every kind it stores, the defaults and scale
//! subresource of ReplicationControllers, and field selectors that read unset fields as their
//! zero value.

use k8s_openapi::api::core::v1::{Endpoints, Node, Pod, ReplicationController, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use kube::api::{Api, DeleteParams, ListParams, PostParams};
use serde_json::json;

use crate::common::*;

#[tokio::test]
async fn the_kubernetes_service_points_at_the_api_server() {
    let c = cluster().await;
    let kubeconfig = kube::config::Kubeconfig::read_from(c.kubeconfig_path()).expect("kubeconfig");
    let server = kubeconfig.clusters[0]
        .cluster
        .as_ref()
        .unwrap()
        .server
        .clone()
        .unwrap();
    let api_port: i32 = server
        .rsplit(':')
        .next()
        .unwrap()
        .trim_end_matches('/')
        .parse()
        .unwrap();

    let svc = Api::<Service>::namespaced(c.client(), "default")
        .get("kubernetes")
        .await
        .unwrap();
    let port = &svc.spec.as_ref().unwrap().ports.as_ref().unwrap()[0];
    assert_eq!(
        (port.name.as_deref(), port.port),
        (Some("https"), 443),
        "{svc:?}"
    );
    let labels = svc.metadata.labels.clone().unwrap_or_default();
    assert_eq!(
        labels.get("component").map(String::as_str),
        Some("apiserver")
    );

    let Some(ep) = Api::<Endpoints>::namespaced(c.client(), "default")
        .get_opt("kubernetes")
        .await
        .unwrap()
    else {
        // Only the test control plane may lack them; the embedded server must have them.
        assert!(
            c.faults().is_none(),
            "the embedded server has no default/kubernetes Endpoints"
        );
        skipped(
            "the_kubernetes_service_points_at_the_api_server (its endpoints)",
            "the test control plane runs kube-apiserver with --endpoint-reconciler-type=none, \
             since 1.37 refuses a loopback advertise address for them",
        );
        return;
    };
    let subset = &ep.subsets.as_ref().unwrap()[0];
    assert_eq!(subset.ports.as_ref().unwrap()[0].port, api_port, "{ep:?}");
    assert_eq!(subset.addresses.as_ref().unwrap().len(), 1, "{ep:?}");

    let slices = Api::<EndpointSlice>::namespaced(c.client(), "default")
        .list(&ListParams::default().labels("kubernetes.io/service-name=kubernetes"))
        .await
        .unwrap();
    let slice = slices
        .items
        .first()
        .expect("an EndpointSlice for the kubernetes Service");
    assert_eq!(
        slice.ports.as_ref().unwrap()[0].port,
        Some(api_port),
        "{slice:?}"
    );
}

/// Kinds kube-apiserver 1.37 stores (`kubectl api-resources` on a real control plane, less the
/// create-only reviews, `bindings` and `componentstatuses`).
const STORED: &[(&str, &str)] = &[
    ("", "limitranges"),
    ("", "podtemplates"),
    ("", "replicationcontrollers"),
    ("", "resourcequotas"),
    ("", "configmaps"),
    ("", "endpoints"),
    ("", "events"),
    ("", "namespaces"),
    ("", "nodes"),
    ("", "persistentvolumeclaims"),
    ("", "persistentvolumes"),
    ("", "pods"),
    ("", "secrets"),
    ("", "serviceaccounts"),
    ("", "services"),
    ("admissionregistration.k8s.io", "mutatingadmissionpolicies"),
    (
        "admissionregistration.k8s.io",
        "mutatingadmissionpolicybindings",
    ),
    (
        "admissionregistration.k8s.io",
        "mutatingwebhookconfigurations",
    ),
    (
        "admissionregistration.k8s.io",
        "validatingadmissionpolicies",
    ),
    (
        "admissionregistration.k8s.io",
        "validatingadmissionpolicybindings",
    ),
    (
        "admissionregistration.k8s.io",
        "validatingwebhookconfigurations",
    ),
    ("apiextensions.k8s.io", "customresourcedefinitions"),
    ("apiregistration.k8s.io", "apiservices"),
    ("apps", "controllerrevisions"),
    ("apps", "daemonsets"),
    ("apps", "deployments"),
    ("apps", "replicasets"),
    ("apps", "statefulsets"),
    ("autoscaling", "horizontalpodautoscalers"),
    ("batch", "cronjobs"),
    ("batch", "jobs"),
    ("certificates.k8s.io", "certificatesigningrequests"),
    ("certificates.k8s.io", "clustertrustbundles"),
    ("certificates.k8s.io", "podcertificaterequests"),
    ("coordination.k8s.io", "leases"),
    ("discovery.k8s.io", "endpointslices"),
    ("events.k8s.io", "events"),
    ("flowcontrol.apiserver.k8s.io", "flowschemas"),
    (
        "flowcontrol.apiserver.k8s.io",
        "prioritylevelconfigurations",
    ),
    ("networking.k8s.io", "ingressclasses"),
    ("networking.k8s.io", "ingresses"),
    ("networking.k8s.io", "ipaddresses"),
    ("networking.k8s.io", "networkpolicies"),
    ("networking.k8s.io", "servicecidrs"),
    ("node.k8s.io", "runtimeclasses"),
    ("policy", "poddisruptionbudgets"),
    ("rbac.authorization.k8s.io", "clusterrolebindings"),
    ("rbac.authorization.k8s.io", "clusterroles"),
    ("rbac.authorization.k8s.io", "rolebindings"),
    ("rbac.authorization.k8s.io", "roles"),
    ("resource.k8s.io", "deviceclasses"),
    ("resource.k8s.io", "devicetaintrules"),
    ("resource.k8s.io", "resourceclaims"),
    ("resource.k8s.io", "resourceclaimtemplates"),
    ("resource.k8s.io", "resourceslices"),
    ("scheduling.k8s.io", "priorityclasses"),
    ("storage.k8s.io", "csidrivers"),
    ("storage.k8s.io", "csinodes"),
    ("storage.k8s.io", "csistoragecapacities"),
    ("storage.k8s.io", "storageclasses"),
    ("storage.k8s.io", "volumeattachments"),
    ("storage.k8s.io", "volumeattributesclasses"),
    ("storagemigration.k8s.io", "storageversionmigrations"),
];

#[tokio::test]
async fn every_kind_kube_apiserver_stores_is_served_and_listable() {
    let c = cluster().await;
    let discovery = kube::Discovery::new(c.client())
        .run()
        .await
        .expect("discovery");
    let mut missing = Vec::new();
    for (group, plural) in STORED {
        let found = discovery
            .groups()
            .filter(|g| g.name() == *group)
            .find_map(|g| {
                g.recommended_resources()
                    .into_iter()
                    .find(|(r, _)| r.plural == *plural)
            });
        match found {
            None => missing.push(format!("{plural}.{group}")),
            Some((resource, _)) => {
                // Listing works, cluster-wide.
                let api = Api::<kube::api::DynamicObject>::all_with(c.client(), &resource);
                api.list(&ListParams::default().limit(1))
                    .await
                    .unwrap_or_else(|e| panic!("list {plural}.{group}: {e}"));
            }
        }
    }
    assert!(missing.is_empty(), "not served: {missing:?}");
}

#[tokio::test]
async fn replication_controllers_are_defaulted_and_scale() {
    let c = cluster().await;
    let ns = namespace(&c.client()).await;
    let api = Api::<ReplicationController>::namespaced(c.client(), &ns);
    let rc: ReplicationController = serde_json::from_value(json!({
        "metadata": {"name": "web"},
        "spec": {"template": {"metadata": {"labels": {"app": "web", "tier": "a"}},
                 "spec": {"containers": [{"name": "c", "image": "nginx"}]}}},
    }))
    .unwrap();
    let rc = api.create(&PostParams::default(), &rc).await.unwrap();
    let spec = rc.spec.as_ref().unwrap();
    assert_eq!(spec.replicas, Some(1), "{rc:?}");
    let selector = spec.selector.clone().unwrap_or_default();
    assert_eq!(
        selector.get("app").map(String::as_str),
        Some("web"),
        "{rc:?}"
    );
    assert_eq!(
        rc.metadata
            .labels
            .clone()
            .unwrap_or_default()
            .get("tier")
            .map(String::as_str),
        Some("a")
    );
    let pod_spec = spec.template.as_ref().unwrap().spec.as_ref().unwrap();
    assert_eq!(pod_spec.restart_policy.as_deref(), Some("Always"), "{rc:?}");

    let scale = api.get_scale("web").await.unwrap();
    assert_eq!(scale.spec.as_ref().unwrap().replicas, Some(1));
    assert_eq!(
        scale.status.as_ref().unwrap().selector.as_deref(),
        Some("app=web,tier=a")
    );
    let patch = json!({"spec": {"replicas": 4}});
    api.patch_scale(
        "web",
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(&patch),
    )
    .await
    .unwrap();
    assert_eq!(
        api.get("web").await.unwrap().spec.unwrap().replicas,
        Some(4)
    );
}

#[tokio::test]
async fn field_selectors_read_unset_fields_as_their_zero_value() {
    let c = cluster().await;
    let ns = namespace(&c.client()).await;
    let nodes = Api::<Node>::all(c.client());
    let name = format!("{ns}-node");
    let node: Node = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
    nodes.create(&PostParams::default(), &node).await.unwrap();
    let count = |selector: String| {
        let nodes = nodes.clone();
        async move {
            nodes
                .list(&ListParams::default().fields(&selector))
                .await
                .unwrap()
                .items
                .len()
        }
    };
    assert_eq!(
        count(format!("metadata.name={name},spec.unschedulable=false")).await,
        1
    );
    assert_eq!(
        count(format!("metadata.name={name},spec.unschedulable=true")).await,
        0
    );
    assert_eq!(
        count(format!("metadata.name={name},spec.unschedulable!=true")).await,
        1
    );
    nodes.delete(&name, &DeleteParams::default()).await.unwrap();

    // The scheduler's query: Pods with no node yet.
    let pods = Api::<Pod>::namespaced(c.client(), &ns);
    let pod: Pod = serde_json::from_value(json!({
        "metadata": {"name": "waiting"},
        "spec": {"containers": [{"name": "c", "image": "busybox"}]},
    }))
    .unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    let unscheduled = pods
        .list(&ListParams::default().fields("spec.nodeName="))
        .await
        .unwrap();
    assert_eq!(unscheduled.items.len(), 1);
    let on_a_node = pods
        .list(&ListParams::default().fields("spec.nodeName!="))
        .await
        .unwrap();
    assert_eq!(on_a_node.items.len(), 0);
}

/// The create-only reviews answer (the tests' user may do everything, on both servers), refuse
/// Table output with 406 and refuse reads with 405.
#[tokio::test]
async fn access_reviews_are_answered_not_stored() {
    use k8s_openapi::api::authorization::v1::{SelfSubjectAccessReview, SelfSubjectRulesReview};
    let c = cluster().await;
    let ns = namespace(&c.client()).await;
    let review: SelfSubjectAccessReview = serde_json::from_value(json!({
        "spec": {"resourceAttributes": {"namespace": ns, "verb": "delete", "resource": "secrets"}},
    }))
    .unwrap();
    let answered = Api::<SelfSubjectAccessReview>::all(c.client())
        .create(&PostParams::default(), &review)
        .await
        .unwrap();
    assert!(answered.status.as_ref().unwrap().allowed, "{answered:?}");

    let rules: SelfSubjectRulesReview =
        serde_json::from_value(json!({"spec": {"namespace": ns}})).unwrap();
    let rules = Api::<SelfSubjectRulesReview>::all(c.client())
        .create(&PostParams::default(), &rules)
        .await
        .unwrap();
    let status = rules.status.unwrap();
    assert!(
        status.resource_rules.iter().any(|r| r.verbs == ["*"]
            && r.api_groups.as_deref() == Some(&["*".to_string()][..])
            && r.resources.as_deref() == Some(&["*".to_string()][..])),
        "{status:?}"
    );

    let path = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews";
    let body = serde_json::to_vec(&review).unwrap();
    let table = "application/json;as=Table;v=v1;g=meta.k8s.io";
    let (code, _) = raw_with(
        &c.client(),
        "POST",
        path,
        Some("application/json"),
        Some(table),
        body,
    )
    .await;
    assert_eq!(code, 406);
    let (code, _) = raw(&c.client(), "GET", path, None, Vec::new()).await;
    assert_eq!(code, 405);
}
