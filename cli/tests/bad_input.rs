//! Every input the generator refuses: the command exits non-zero, says what was wrong and how
//! to fix it, and leaves every file of the project as it was.

mod support;

use std::path::Path;

use support::*;

/// A fresh project with one kind, in a temporary directory.
fn project() -> (tempfile::TempDir, std::path::PathBuf) {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("op");
    kubeforge(work.path(), &["init", "op", "--domain", "example.com"]);
    kubeforge(
        &dir,
        &[
            "create",
            "api",
            "--group",
            "cache",
            "--version",
            "v1",
            "--kind",
            "Memcached",
        ],
    );
    (work, dir)
}

/// Runs `args` in `dir`, which must fail mentioning each of `expected` and change nothing.
fn refused(dir: &Path, args: &[&str], expected: &[&str]) {
    let before = snapshot(dir);
    let err = kubeforge_fails(dir, args);
    for e in expected {
        assert!(
            err.contains(e),
            "kubeforge {}: expected {e:?} in:\n{err}",
            args.join(" ")
        );
    }
    assert!(
        snapshot(dir) == before,
        "kubeforge {} changed files",
        args.join(" ")
    );
}

#[test]
fn invalid_names_are_refused_with_the_fix() {
    let (_work, dir) = project();
    let api = |group: &str, version: &str, kind: &str| {
        vec![
            "create",
            "api",
            "--group",
            group,
            "--version",
            version,
            "--kind",
            kind,
        ]
        .into_iter()
        .map(str::to_owned)
        .collect::<Vec<_>>()
    };
    let cases: &[(Vec<String>, &[&str])] = &[
        (
            api("cache", "v1", "memcached-thing"),
            &["invalid --kind", "UpperCamelCase", "--kind MemcachedThing"],
        ),
        (
            api("Cache_Group", "v1", "Widget"),
            &["invalid --group", "DNS-1123", "cache-group"],
        ),
        (
            api("apps.k8s.io", "v1", "Widget"),
            &["reserved for Kubernetes"],
        ),
        (
            api("cache", "1", "Widget"),
            &["invalid --version", "v1alpha1"],
        ),
        (api("cache", "v1beta", "Widget"), &["invalid --version"]),
        (
            api("cache", "v1", "Memcached"),
            &["already exists", "another --version"],
        ),
        (
            api("cache", "v2", "Memcached")
                .into_iter()
                .chain(["--cluster".to_owned()])
                .collect(),
            &["same scope"],
        ),
    ];
    for (args, expected) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        refused(&dir, &args, expected);
    }
}

#[test]
fn unknown_and_ambiguous_built_in_kinds_list_the_candidates() {
    let (_work, dir) = project();
    refused(
        &dir,
        &["create", "controller", "--kind", "Deploymnet"],
        &["unknown built-in kind", "Deployment", "kubeforge kinds"],
    );
    refused(
        &dir,
        &["create", "controller", "--kind", "Event"],
        &["--group events.k8s.io", "--group core"],
    );
    refused(
        &dir,
        &["create", "controller", "--kind", "TokenReview"],
        &["cannot be listed or watched"],
    );
    refused(
        &dir,
        &["create", "controller", "--kind", "Memcached"],
        &["custom resource of this project", "--no-resource"],
    );
    kubeforge(
        &dir,
        &["create", "controller", "--kind", "Event", "--group", "core"],
    );
    refused(
        &dir,
        &["create", "controller", "--kind", "Event", "--group", "core"],
        &["already exists"],
    );
}

#[test]
fn existing_projects_missing_markers_and_broken_project_files_are_refused() {
    let (work, dir) = project();
    refused(
        &dir,
        &["init", ".", "--domain", "example.com"],
        &["already holds a kubeforge project", "--force"],
    );
    refused(
        work.path(),
        &["init", "Bad_Name", "--domain", "example.com"],
        &["invalid project name", "--name"],
    );
    refused(
        work.path(),
        &["init", "ok", "--domain", "Example.COM"],
        &["invalid --domain", "example.com"],
    );
    refused(
        work.path(),
        &[
            "create",
            "api",
            "--group",
            "a",
            "--version",
            "v1",
            "--kind",
            "A",
        ],
        &["no kubeforge.toml", "kubeforge init"],
    );

    let main = dir.join("src/main.rs");
    let text = std::fs::read_to_string(&main).unwrap();
    std::fs::write(&main, text.replace("// kubeforge:scaffold:controllers", "")).unwrap();
    refused(
        &dir,
        &[
            "create",
            "api",
            "--group",
            "cache",
            "--version",
            "v1",
            "--kind",
            "Widget",
        ],
        &[
            "src/main.rs",
            "// kubeforge:scaffold:controllers",
            "nothing was changed",
        ],
    );
    std::fs::write(&main, text).unwrap();

    let project_file = dir.join("kubeforge.toml");
    let text = std::fs::read_to_string(&project_file).unwrap();
    std::fs::write(&project_file, text.replace("layout = ", "layout = [")).unwrap();
    refused(
        &dir,
        &["create", "controller", "--kind", "Pod"],
        &["kubeforge.toml does not parse"],
    );
    std::fs::write(&project_file, text).unwrap();

    // Files the user wrote are kept unless --force.
    let other = work.path().join("other");
    std::fs::create_dir_all(&other).unwrap();
    std::fs::write(other.join("README.md"), "mine").unwrap();
    refused(
        &other,
        &["init", ".", "--domain", "example.com"],
        &["README.md already exists", "--force"],
    );
    kubeforge(&other, &["init", ".", "--domain", "example.com", "--force"]);
    assert_ne!(
        std::fs::read_to_string(other.join("README.md")).unwrap(),
        "mine"
    );
}

#[test]
fn a_command_run_twice_adds_nothing_twice_and_templates_can_be_overridden() {
    let (work, dir) = project();
    kubeforge(&dir, &["create", "controller", "--kind", "ConfigMap"]);
    let before = snapshot(&dir);
    refused(
        &dir,
        &["create", "controller", "--kind", "ConfigMap"],
        &["already exists"],
    );
    assert!(snapshot(&dir) == before);

    let templates = work.path().join("templates");
    copy_dir(
        Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/templates")),
        &templates,
    );
    let makefile = templates.join("init/Makefile.hbs");
    let text = std::fs::read_to_string(&makefile).unwrap();
    std::fs::write(&makefile, format!("# our team's Makefile\n{text}")).unwrap();
    let t = templates.display().to_string();
    kubeforge(
        work.path(),
        &[
            "--templates",
            &t,
            "init",
            "custom",
            "--domain",
            "example.com",
        ],
    );
    let written = std::fs::read_to_string(work.path().join("custom/Makefile")).unwrap();
    assert!(written.starts_with("# our team's Makefile\n"), "{written}");
    std::fs::remove_file(templates.join("api/sample.yaml.hbs")).unwrap();
    refused(
        &work.path().join("custom"),
        &[
            "--templates",
            &t,
            "create",
            "api",
            "--group",
            "a",
            "--version",
            "v1",
            "--kind",
            "A",
        ],
        &["template api/sample.yaml.hbs is missing"],
    );
}

#[test]
fn kinds_and_completions_and_help() {
    let work = tempfile::tempdir().unwrap();
    let kinds = kubeforge(work.path(), &["kinds"]);
    assert!(
        kinds.contains("DaemonSet*") && kinds.contains("CustomResourceDefinition"),
        "{kinds}"
    );
    let bash = kubeforge(work.path(), &["completions", "bash"]);
    assert!(
        bash.contains("complete") && bash.contains("kubeforge"),
        "{bash}"
    );
    for command in [
        &["init"][..],
        &["create", "api"],
        &["create", "controller"],
        &["create", "webhook"],
        &["generate"],
        &["dev"],
        &["demo"],
    ] {
        let mut args = command.to_vec();
        args.push("--help");
        let help = kubeforge(work.path(), &args);
        assert!(
            help.contains("Example"),
            "kubeforge {} has an example:\n{help}",
            args.join(" ")
        );
    }
    assert!(kubeforge(work.path(), &["--version"]).contains(env!("CARGO_PKG_VERSION")));
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            copy_dir(&path, &to.join(entry.file_name()));
        } else {
            std::fs::copy(&path, to.join(entry.file_name())).unwrap();
        }
    }
}

#[test]
fn a_new_version_can_take_over_storage_and_flags_shape_what_is_created() {
    let (_work, dir) = project();
    let v1 = dir.join("src/api/v1/memcached.rs");
    assert_eq!(
        std::fs::read_to_string(&v1)
            .unwrap()
            .matches("storage,")
            .count(),
        1
    );
    kubeforge(
        &dir,
        &[
            "create",
            "api",
            "--group",
            "cache",
            "--version",
            "v2",
            "--kind",
            "Memcached",
            "--storage",
        ],
    );
    let v2 = dir.join("src/api/v2/memcached.rs");
    assert_eq!(
        std::fs::read_to_string(&v1)
            .unwrap()
            .matches("storage,")
            .count(),
        0,
        "v1 gave up storage"
    );
    assert_eq!(
        std::fs::read_to_string(&v2)
            .unwrap()
            .matches("storage,")
            .count(),
        1,
        "v2 is the storage version"
    );
    let project: toml::Value =
        toml::from_str(&std::fs::read_to_string(dir.join("kubeforge.toml")).unwrap()).unwrap();
    let storage: Vec<(String, bool)> = project["resource"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["version"].as_str().unwrap().to_owned(),
                r["storage"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(storage, [("v1".to_owned(), false), ("v2".to_owned(), true)]);

    kubeforge(
        &dir,
        &[
            "create",
            "api",
            "--group",
            "cache",
            "--version",
            "v1",
            "--kind",
            "Widget",
            "--no-controller",
            "--plural",
            "widgetz",
        ],
    );
    let widget = std::fs::read_to_string(dir.join("src/api/v1/widget.rs")).unwrap();
    assert!(
        widget.contains("plural = \"widgetz\""),
        "the derive gets --plural:\n{widget}"
    );
    assert!(
        !dir.join("src/controllers/widget.rs").exists(),
        "--no-controller"
    );
    assert!(
        std::fs::read_to_string(dir.join("config/samples/cache_v1_widget.yaml"))
            .unwrap()
            .contains("kind: Widget")
    );
    kubeforge(
        &dir,
        &[
            "create",
            "api",
            "--group",
            "cache",
            "--version",
            "v1",
            "--kind",
            "Widget",
            "--no-resource",
            "--plural",
            "widgetz",
        ],
    );
    assert!(
        dir.join("src/controllers/widget.rs").is_file(),
        "--no-resource adds the controller of an existing type"
    );
    let main = std::fs::read_to_string(dir.join("src/main.rs")).unwrap();
    assert_eq!(
        main.matches("controllers::widget::setup(mgr, ())?;")
            .count(),
        1
    );
}

#[test]
fn webhooks_for_what_cannot_have_them_are_refused_with_the_fix() {
    let (_work, dir) = project();
    refused(
        &dir,
        &["create", "webhook", "--kind", "Memcached"],
        &["--defaulting, --validation and/or --conversion"],
    );
    refused(
        &dir,
        &["create", "webhook", "--kind", "Widget", "--validation"],
        &[
            "Widget is not a custom resource of this project",
            "kubeforge create api",
        ],
    );
    refused(
        &dir,
        &["create", "webhook", "--kind", "Memcached", "--conversion"],
        &["Memcached has one (v1)", "--version <v2>"],
    );
    kubeforge(
        &dir,
        &["create", "webhook", "--kind", "Memcached", "--validation"],
    );
    refused(
        &dir,
        &["create", "webhook", "--kind", "Memcached", "--defaulting"],
        &["src/webhooks/memcached.rs already exists", "--force"],
    );
    // A project from before webhooks (no markers for them) is told what to add.
    let (_work, old) = project();
    let main = std::fs::read_to_string(old.join("src/main.rs")).unwrap();
    std::fs::write(
        old.join("src/main.rs"),
        main.replace("// kubeforge:scaffold:webhooks\n", ""),
    )
    .unwrap();
    refused(
        &old,
        &["create", "webhook", "--kind", "Memcached", "--validation"],
        &["src/main.rs has no `// kubeforge:scaffold:webhooks` line"],
    );
}
