//! `kubeforge init`: a new operator project that builds and passes its own tests right away.

use std::path::{Path, PathBuf};

use anyhow::bail;

use crate::names;
use crate::project::{self, Project};
use crate::scaffold::Changes;
use crate::scaffold::render::{self, InitVars};
use crate::source::Source;
use crate::templates::Templates;

/// Arguments of `kubeforge init`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Example:\n  kubeforge init memcached-operator --domain example.com\n  \
                        cd memcached-operator && cargo test"
)]
pub struct Args {
    /// The directory to create the project in (default: the current one).
    #[arg(default_value = ".")]
    pub dir: PathBuf,
    /// The domain of the project's API groups (`--group cache` becomes `cache.<domain>`).
    #[arg(long)]
    pub domain: String,
    /// The project name: crate, binary and Deployment (default: the directory's name).
    #[arg(long)]
    pub name: Option<String>,
    /// Replace files that already exist.
    #[arg(long)]
    pub force: bool,
    /// A kubeforge source checkout to depend on by path (default: the one this CLI was built
    /// from, if it still exists; otherwise the published crates).
    #[arg(long, env = "KUBEFORGE_PATH", value_name = "DIR")]
    pub kubeforge_path: Option<PathBuf>,
}

/// Validates everything, then writes the project.
pub fn exec(args: Args, templates: Option<&Path>) -> anyhow::Result<()> {
    let project = init(&args, templates)?;
    let shown = args.dir.display();
    println!("Created operator project {} in {shown}", project.name);
    println!("Next:");
    if args.dir != Path::new(".") {
        println!("  cd {shown}");
    }
    println!("  kubeforge create api --group <group> --version v1 --kind <Kind>");
    println!("  kubeforge create controller --kind Deployment");
    println!("  cargo test");
    Ok(())
}

/// Writes the project and returns its project file.
pub fn init(args: &Args, templates: Option<&Path>) -> anyhow::Result<Project> {
    names::check_dns_subdomain("--domain", &args.domain)?;
    let dir = std::path::absolute(&args.dir)?;
    let name = match &args.name {
        Some(n) => n.clone(),
        None => dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
    };
    names::check_project_name(&name).map_err(|e| {
        if args.name.is_none() {
            anyhow::anyhow!(
                "{e} (the name comes from the directory {} by default)",
                dir.display()
            )
        } else {
            anyhow::anyhow!(e)
        }
    })?;
    if dir.join(project::FILE).exists() && !args.force {
        bail!(
            "{} already holds a kubeforge project ({}): add to it with `kubeforge create`, or \
             pass --force to scaffold over it",
            dir.display(),
            project::FILE
        );
    }
    if dir.is_file() {
        bail!(
            "{} is a file; give a directory to create the project in",
            dir.display()
        );
    }
    let source = Source::choose(args.kubeforge_path.as_deref())?;
    let templates = Templates::load(templates)?;
    let vars = InitVars {
        example_group: name.split('-').next().unwrap_or("app").to_owned(),
        name: name.clone(),
        domain: args.domain.clone(),
        kubeforge_dep: source.runtime_dep(),
        testkit_dep: source.testkit_dep(),
    };
    let project = Project {
        layout: project::LAYOUT.into(),
        domain: args.domain.clone(),
        name,
        resources: Vec::new(),
        controllers: Vec::new(),
    };
    let mut changes = Changes::new(&dir, args.force);
    render::init(&mut changes, &templates, &vars)?;
    changes.create(project::FILE, project.to_toml())?;
    if let Some(lock) = source.lock_file()
        && !dir.join("Cargo.lock").exists()
    {
        changes.create("Cargo.lock", lock)?;
    }
    changes.commit()?;
    Ok(project)
}
