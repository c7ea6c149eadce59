//! rkube: one multi-call binary. `rkube <component>` or a symlink named for
//! the upstream component (`kube-apiserver`, `kubelet`, ...).

use std::process::ExitCode;

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
    eprintln!("rkube {component}: not implemented yet");
    ExitCode::from(1)
}
