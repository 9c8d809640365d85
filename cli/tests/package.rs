//! The templates are data shipped with the CLI crate: `cargo package --list` includes every one.

use std::path::Path;
use std::process::Command;

#[test]
fn the_package_ships_every_template() {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .args(["package", "-p", "kubeforge-cli", "--list", "--allow-dirty"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("cargo package runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let listed = String::from_utf8(out.stdout).unwrap();
    let root = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/templates"));
    let mut stack = vec![root.to_path_buf()];
    let mut count = 0;
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let rel = format!("templates/{}", path.strip_prefix(root).unwrap().display());
                assert!(
                    listed.lines().any(|l| l == rel),
                    "{rel} is not packaged:\n{listed}"
                );
                count += 1;
            }
        }
    }
    assert!(count > 30, "found only {count} templates");
}
