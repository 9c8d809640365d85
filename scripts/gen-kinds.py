#!/usr/bin/env python3
"""Generate cli/src/kinds/table.rs: every built-in kind k8s-openapi 0.29 knows.

Reads the k8s-openapi sources from the cargo registry (no network, stdlib only), picks the
Kubernetes version module the crate's `latest` feature enables (e.g. `src/v1_37/`), and emits
one `BuiltinKind` row for every type with an `impl crate::Resource for X` block, except:

* `List<T>` and other `*List` kinds (they are not objects of their own);
* subresources (`type Scope = crate::SubResourceScope`: Eviction, Scale, TokenRequest, Status);
* discovery documents with no REST path (`URL_PATH_SEGMENT = ""`: APIGroup, APIVersions, ...).

Create-only virtual resources (TokenReview, SubjectAccessReview, Binding, ...) are kept with
`watchable: false`: a type is watchable when it implements `crate::ListableResource` and is not
in `NOT_WATCHABLE` below.

Usage: python3 scripts/gen-kinds.py [--k8s-openapi DIR] [--check]
"""

import argparse
import glob
import os
import re
import sys

CRATE_VERSION = "0.29.0"
REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUTPUT = os.path.join(REPO_ROOT, "cli", "src", "kinds", "table.rs")

# Listable kinds the API server serves without the `watch` verb.
NOT_WATCHABLE = {("", "ComponentStatus")}

SCOPES = {
    "crate::NamespaceResourceScope": "namespaced",
    "crate::ClusterResourceScope": "cluster",
    "crate::SubResourceScope": "subresource",
}

IMPL_RE = re.compile(r"impl crate::Resource for (\w+) \{(.*?)\n\}", re.S)
CONST_RE = re.compile(r"const (\w+): &'static str = \"([^\"]*)\";")
SCOPE_RE = re.compile(r"type Scope = ([\w:]+);")


def find_crate(explicit):
    if explicit:
        return explicit
    cargo_home = os.environ.get("CARGO_HOME", os.path.expanduser("~/.cargo"))
    pattern = os.path.join(cargo_home, "registry", "src", "*", "k8s-openapi-" + CRATE_VERSION)
    found = sorted(glob.glob(pattern))
    if not found:
        sys.exit(f"gen-kinds: k8s-openapi {CRATE_VERSION} not found at {pattern}; run cargo fetch")
    return found[0]


def latest_version_module(crate_dir):
    """The `vX_Y` module the crate's `latest` feature enables, from its Cargo.toml."""
    with open(os.path.join(crate_dir, "Cargo.toml"), encoding="utf-8") as f:
        m = re.search(r'^latest\s*=\s*\[\s*"(v1_\d+)"\s*\]', f.read(), re.M)
    if not m:
        sys.exit("gen-kinds: no `latest = [\"v1_NN\"]` feature in k8s-openapi's Cargo.toml")
    module = m.group(1)
    with open(os.path.join(crate_dir, "src", "lib.rs"), encoding="utf-8") as f:
        if f"pub use self::{module}::*;" not in f.read():
            sys.exit(f"gen-kinds: lib.rs does not re-export {module} at the crate root")
    return module


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def rust_path(version_dir, file_path, type_name):
    """`src/v1_37/api/apps/v1/deployment.rs` -> `k8s_openapi::api::apps::v1::Deployment`.

    Checks every step is public: each directory is a `pub mod` of its parent and the file's
    type is re-exported with `pub use self::<file>::<Type>;` by its directory's mod.rs.
    """
    rel = os.path.relpath(file_path, version_dir)
    parts = rel[: -len(".rs")].split(os.sep)
    dirs, stem = parts[:-1], parts[-1]
    parent = version_dir
    for d in dirs:
        if not re.search(rf"^pub mod {re.escape(d)};", read(os.path.join(parent, "mod.rs")), re.M):
            sys.exit(f"gen-kinds: {parent}/mod.rs has no `pub mod {d};`")
        parent = os.path.join(parent, d)
    mod_rs = read(os.path.join(parent, "mod.rs"))
    if f"pub use self::{stem}::{type_name};" not in mod_rs:
        sys.exit(f"gen-kinds: {parent}/mod.rs does not re-export {stem}::{type_name}")
    return "::".join(["k8s_openapi", *dirs, type_name])


def version_priority(version):
    """Kubernetes version priority as a sort key: GA before beta before alpha, newer first."""
    m = re.fullmatch(r"v(\d+)(?:(alpha|beta)(\d+))?", version)
    if not m:
        return (3, 0, 0, version)
    level = {None: 0, "beta": 1, "alpha": 2}[m.group(2)]
    return (level, -int(m.group(1)), -int(m.group(3) or 0), version)


def collect(version_dir):
    rows, skipped = [], []
    for dirpath, _, files in os.walk(version_dir):
        for name in sorted(files):
            if not name.endswith(".rs") or name == "mod.rs":
                continue
            path = os.path.join(dirpath, name)
            text = read(path)
            for m in IMPL_RE.finditer(text):
                type_name, body = m.group(1), m.group(2)
                consts = dict(CONST_RE.findall(body))
                scope_m = SCOPE_RE.search(body)
                if scope_m is None or scope_m.group(1) not in SCOPES:
                    skipped.append((type_name, "generic scope"))
                    continue
                scope = SCOPES[scope_m.group(1)]
                kind, group = consts["KIND"], consts["GROUP"]
                if scope == "subresource":
                    skipped.append((kind, "subresource"))
                    continue
                if kind.endswith("List"):
                    skipped.append((kind, "list"))
                    continue
                if consts["URL_PATH_SEGMENT"] == "":
                    skipped.append((kind, "no REST path"))
                    continue
                if kind != type_name:
                    sys.exit(f"gen-kinds: {path}: type {type_name} has KIND {kind}")
                expected_api_version = f"{group}/{consts['VERSION']}" if group else consts["VERSION"]
                if consts["API_VERSION"] != expected_api_version:
                    sys.exit(f"gen-kinds: {path}: API_VERSION {consts['API_VERSION']} mismatch")
                listable = re.search(rf"impl crate::ListableResource for {type_name} \{{", text)
                rows.append(
                    {
                        "kind": kind,
                        "group": group,
                        "version": consts["VERSION"],
                        "plural": consts["URL_PATH_SEGMENT"],
                        "namespaced": scope == "namespaced",
                        "watchable": bool(listable) and (group, kind) not in NOT_WATCHABLE,
                        "rust_path": rust_path(version_dir, path, type_name),
                    }
                )
    rows.sort(key=lambda r: (r["kind"], r["group"], version_priority(r["version"])))
    keys = [(r["kind"], r["group"], r["version"]) for r in rows]
    if len(keys) != len(set(keys)):
        sys.exit("gen-kinds: duplicate (kind, group, version) rows")
    return rows, skipped


def render(rows, module):
    k8s_version = module[1:].replace("_", ".")
    out = [
        f"// generated by scripts/gen-kinds.py from k8s-openapi 0.29 (Kubernetes {k8s_version});"
        " do not edit",
        "",
        "use super::BuiltinKind;",
        "",
        "/// Every built-in kind k8s-openapi knows, sorted by kind then group.",
        "pub const KINDS: &[BuiltinKind] = &[",
    ]
    for r in rows:
        out += [
            "    BuiltinKind {",
            f"        kind: \"{r['kind']}\",",
            f"        group: \"{r['group']}\",",
            f"        version: \"{r['version']}\",",
            f"        plural: \"{r['plural']}\",",
            f"        namespaced: {str(r['namespaced']).lower()},",
            f"        watchable: {str(r['watchable']).lower()},",
            f"        rust_path: \"{r['rust_path']}\",",
            "    },",
        ]
    out += ["];", ""]
    return "\n".join(out)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--k8s-openapi", help="k8s-openapi-0.29.0 source directory")
    parser.add_argument("--check", action="store_true", help="fail if table.rs is out of date")
    args = parser.parse_args()

    crate_dir = find_crate(args.k8s_openapi)
    module = latest_version_module(crate_dir)
    rows, skipped = collect(os.path.join(crate_dir, "src", module))
    text = render(rows, module)

    if args.check:
        current = read(OUTPUT) if os.path.exists(OUTPUT) else ""
        if current != text:
            sys.exit(f"gen-kinds: {os.path.relpath(OUTPUT, REPO_ROOT)} is out of date")
        return
    os.makedirs(os.path.dirname(OUTPUT), exist_ok=True)
    with open(OUTPUT, "w", encoding="utf-8") as f:
        f.write(text)
    skipped_text = ", ".join(f"{k} ({why})" for k, why in sorted(skipped))
    print(f"gen-kinds: {module}: wrote {len(rows)} kinds to {os.path.relpath(OUTPUT, REPO_ROOT)}")
    print(f"gen-kinds: skipped {len(skipped)}: {skipped_text}")


if __name__ == "__main__":
    main()
