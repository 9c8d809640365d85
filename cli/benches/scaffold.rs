//! How fast the generator is, as a user feels it: `kubeforge init` + `kubeforge create api` wall
//! time (the `kubeforge` binary run as a process, median of 20; target < 100 ms), and the
//! generated operator's build: warm (kubeforge and the dependencies already built in the shared
//! target directory, the operator's own crate rebuilt) and, with `KUBEFORGE_BENCH_COLD_BUILD=1`,
//! cold (an empty target directory: every dependency compiled; minutes on 2 cores).
//!
//! ```sh
//! cargo bench -p kubeforge-cli --bench scaffold
//! KUBEFORGE_BENCH_COLD_BUILD=1 cargo bench -p kubeforge-cli --bench scaffold
//! ```
//!
//! It prints figures; nothing is asserted.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const KUBEFORGE: &str = env!("CARGO_BIN_EXE_kubeforge");

fn run(dir: &Path, program: &str, args: &[&str], target: &Path) -> Duration {
    let start = Instant::now();
    let status = Command::new(program)
        .args(args)
        .current_dir(dir)
        .env("CARGO_TARGET_DIR", target)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("the command runs");
    assert!(
        status.success(),
        "{program} {args:?} failed in {}",
        dir.display()
    );
    start.elapsed()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn main() {
    let work = tempfile::tempdir().expect("a temporary directory");
    // The workspace's target directory: <target>/release/deps/scaffold-… when run by cargo bench.
    let shared = std::env::current_exe()
        .ok()
        .and_then(|exe| exe.ancestors().nth(3).map(Path::to_path_buf))
        .expect("the bench binary lives in <target>/<profile>/deps");
    println!("kubeforge scaffold bench — {KUBEFORGE}");
    let mut init = Vec::new();
    let mut api = Vec::new();
    for i in 0..20 {
        let name = format!("op{i}");
        init.push(run(
            work.path(),
            KUBEFORGE,
            &["init", &name, "--domain", "example.com"],
            &shared,
        ));
        let dir = work.path().join(&name);
        api.push(run(
            &dir,
            KUBEFORGE,
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
            &shared,
        ));
    }
    init.sort();
    api.sort();
    let (i, a) = (init[init.len() / 2], api[api.len() / 2]);
    println!(
        "init: median {:.1} ms (min {:.1}, max {:.1})",
        ms(i),
        ms(init[0]),
        ms(init[init.len() - 1])
    );
    println!(
        "create api: median {:.1} ms (min {:.1}, max {:.1})",
        ms(a),
        ms(api[0]),
        ms(api[api.len() - 1])
    );
    println!(
        "init + create api: median {:.1} ms (target < 100 ms)",
        ms(i + a)
    );

    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let project = work.path().join("op0");
    let first = run(&project, &cargo, &["build"], &shared);
    println!(
        "operator build, shared target dir, first (dependencies as the workspace left them): {:.1} s",
        first.as_secs_f64()
    );
    let main = project.join("src/main.rs");
    let text = std::fs::read_to_string(&main).expect("src/main.rs");
    std::fs::write(&main, format!("{text}\n")).expect("touch src/main.rs");
    let warm = run(&project, &cargo, &["build"], &shared);
    println!(
        "operator build, warm (src/main.rs changed): {:.1} s",
        warm.as_secs_f64()
    );
    if std::env::var_os("KUBEFORGE_BENCH_COLD_BUILD").is_some() {
        let cold_target = work.path().join("cold-target");
        let cold = run(&project, &cargo, &["build"], &cold_target);
        println!(
            "operator build, cold (empty target dir): {:.1} s",
            cold.as_secs_f64()
        );
    } else {
        println!("operator build, cold: not measured (set KUBEFORGE_BENCH_COLD_BUILD=1)");
    }
}
