//! rkube: one multi-call binary. `rkube <component>` or a symlink named for
//! the upstream component (`kube-apiserver`, `kubelet`, ...).

mod apiserver;
mod controller_manager;
mod kubelet;
mod scheduler;
mod up;

use std::process::ExitCode;

use clap::Parser;

/// Upstream binary names and the subcommand each maps to.
const ALIASES: &[(&str, &str)] = &[
    ("kube-apiserver", "apiserver"),
    ("kube-controller-manager", "controller-manager"),
    ("kube-scheduler", "scheduler"),
    ("kubelet", "kubelet"),
    ("kube-proxy", "proxy"),
];

const COMPONENTS: &[&str] = &[
    "up",
    "apiserver",
    "controller-manager",
    "scheduler",
    "kubelet",
    "proxy",
];

/// Fewer malloc arenas than glibc's default (8 per core): freed memory is
/// reused across threads instead of each thread keeping its own, which
/// keeps RSS close to what is live.
fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator settings; called once at start,
    // before other threads exist.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 4);
    }
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("RKUBE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

fn main() -> ExitCode {
    let mut args: Vec<String> = std::env::args().collect();
    let argv0 = args
        .first()
        .and_then(|a| std::path::Path::new(a).file_name())
        .and_then(|n| n.to_str())
        .unwrap_or("rkube")
        .to_owned();
    let component = match ALIASES.iter().find(|(alias, _)| *alias == argv0) {
        Some((_, component)) => component.to_string(),
        None if args.len() > 1 => args.remove(1),
        None => {
            eprintln!("usage: rkube <{}> [flags]", COMPONENTS.join("|"));
            return ExitCode::from(2);
        }
    };
    if !COMPONENTS.contains(&component.as_str()) {
        eprintln!(
            "rkube: unknown command {component:?}; expected one of {}",
            COMPONENTS.join(", ")
        );
        return ExitCode::from(2);
    }
    // Keep argv[0] for clap's usage lines.
    args[0] = format!("rkube {component}");
    tune_allocator();
    init_logging();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("rkube: starting the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let name = args[0].clone();
    let result = runtime.block_on(async move {
        match component.as_str() {
            "apiserver" => apiserver::run(apiserver::Flags::parse_from(&args)).await,
            "up" => up::run(up::Flags::parse_from(&args)).await,
            "controller-manager" => {
                controller_manager::run(controller_manager::Flags::parse_from(&args)).await
            }
            "kubelet" => kubelet::run(kubelet::Flags::parse_from(&args)).await,
            "scheduler" => scheduler::run(scheduler::Flags::parse_from(&args)).await,
            other => Err(anyhow::anyhow!("{other} is not implemented yet")),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{name}: {e:#}");
            ExitCode::FAILURE
        }
    }
}
