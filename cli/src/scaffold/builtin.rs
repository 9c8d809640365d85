//! What the controllers of Kubernetes' own workload, autoscaling, ingress and network-policy
//! kinds watch, so `kubeforge create controller --kind <K>` can generate those watches, their
//! RBAC and a reconcile skeleton that reads them from the cache. Any other built-in kind gets a
//! controller of the kind alone.

/// A related kind a controller watches, with the mapper template when it is not owned.
#[derive(Debug, Clone, Copy)]
pub struct Related {
    /// The watched kind.
    pub kind: &'static str,
    /// Its API group (`""` for core), to resolve it in the kinds table.
    pub group: &'static str,
    /// For a watched (not owned) kind: the mapper function's name, and its template under
    /// `templates/controller/mappers/`.
    pub mapper: Option<(&'static str, &'static str)>,
}

/// What one kind's controller relates to.
#[derive(Debug, Clone, Copy)]
pub struct Knowledge {
    /// The primary kind.
    pub kind: &'static str,
    /// Its API group.
    pub group: &'static str,
    /// One sentence for the module docs.
    pub summary: &'static str,
    /// Kinds it owns (creates, with itself as controller owner).
    pub owns: &'static [Related],
    /// Kinds it watches and maps back to primaries.
    pub watches: &'static [Related],
    /// Extra RBAC rules: (group, resources, verbs).
    pub rbac: &'static [(
        &'static str,
        &'static [&'static str],
        &'static [&'static str],
    )],
}

const fn owned(kind: &'static str, group: &'static str) -> Related {
    Related {
        kind,
        group,
        mapper: None,
    }
}

const fn watched(
    kind: &'static str,
    group: &'static str,
    mapper: &'static str,
    template: &'static str,
) -> Related {
    Related {
        kind,
        group,
        mapper: Some((mapper, template)),
    }
}

/// The nine kinds whose controllers the scaffold knows.
pub const KNOWN: &[Knowledge] = &[
    Knowledge {
        kind: "ReplicaSet",
        group: "apps",
        summary: "A ReplicaSet keeps `replicas` Pods matching its selector running; it owns them.",
        owns: &[owned("Pod", "")],
        watches: &[],
        rbac: &[],
    },
    Knowledge {
        kind: "Deployment",
        group: "apps",
        summary: "A Deployment rolls out its Pod template through ReplicaSets it owns.",
        owns: &[owned("ReplicaSet", "apps")],
        watches: &[],
        rbac: &[],
    },
    Knowledge {
        kind: "StatefulSet",
        group: "apps",
        summary: "A StatefulSet runs ordered, stably named Pods, each with its own \
                  PersistentVolumeClaims; it owns both.",
        owns: &[owned("Pod", ""), owned("PersistentVolumeClaim", "")],
        watches: &[],
        rbac: &[],
    },
    Knowledge {
        kind: "DaemonSet",
        group: "apps",
        summary: "A DaemonSet runs one Pod on every eligible Node: it owns the Pods and watches \
                  the Nodes.",
        owns: &[owned("Pod", "")],
        watches: &[watched(
            "Node",
            "",
            "daemon_sets_for_node",
            "daemon_set_node",
        )],
        rbac: &[],
    },
    Knowledge {
        kind: "Job",
        group: "batch",
        summary: "A Job runs Pods it owns until enough of them succeed.",
        owns: &[owned("Pod", "")],
        watches: &[],
        rbac: &[],
    },
    Knowledge {
        kind: "CronJob",
        group: "batch",
        summary: "A CronJob creates Jobs it owns on a schedule.",
        owns: &[owned("Job", "batch")],
        watches: &[],
        rbac: &[],
    },
    Knowledge {
        kind: "HorizontalPodAutoscaler",
        group: "autoscaling",
        summary: "A HorizontalPodAutoscaler scales its target (here Deployments and StatefulSets) \
                  through the target's scale subresource.",
        owns: &[],
        watches: &[
            watched(
                "Deployment",
                "apps",
                "autoscalers_for_deployment",
                "horizontal_pod_autoscaler_deployment",
            ),
            watched(
                "StatefulSet",
                "apps",
                "autoscalers_for_stateful_set",
                "horizontal_pod_autoscaler_stateful_set",
            ),
        ],
        rbac: &[(
            "apps",
            &["deployments/scale", "statefulsets/scale"],
            &["get", "patch", "update"],
        )],
    },
    Knowledge {
        kind: "Ingress",
        group: "networking.k8s.io",
        summary: "An Ingress controller routes traffic by the Ingresses of its IngressClass to \
                  their Services' endpoints: it watches IngressClasses, Services and \
                  EndpointSlices.",
        owns: &[],
        watches: &[
            watched(
                "IngressClass",
                "networking.k8s.io",
                "ingresses_for_class",
                "ingress_ingress_class",
            ),
            watched("Service", "", "ingresses_for_service", "ingress_service"),
            watched(
                "EndpointSlice",
                "discovery.k8s.io",
                "ingresses_for_endpoint_slice",
                "ingress_endpoint_slice",
            ),
        ],
        rbac: &[(
            "networking.k8s.io",
            &["ingresses/status"],
            &["get", "patch", "update"],
        )],
    },
    Knowledge {
        kind: "NetworkPolicy",
        group: "networking.k8s.io",
        summary: "A NetworkPolicy controller enforces which Pods may talk to which: it watches \
                  the Pods the policies select and the Namespaces their selectors match.",
        owns: &[],
        watches: &[
            watched("Pod", "", "policies_for_pod", "network_policy_pod"),
            watched(
                "Namespace",
                "",
                "policies_for_namespace",
                "network_policy_namespace",
            ),
        ],
        rbac: &[],
    },
];

/// What the scaffold knows of `kind`'s controller, if it is one of the nine.
pub fn knowledge(kind: &str, group: &str) -> Option<&'static Knowledge> {
    KNOWN.iter().find(|k| k.kind == kind && k.group == group)
}
