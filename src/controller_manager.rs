//! `rkube controller-manager`: kube-controller-manager's flags and the
//! controllers of `rkube-controllers`, as an API client.

use std::path::PathBuf;

use anyhow::Context;

#[derive(clap::Parser, Debug, Clone)]
#[command(about = "The Kubernetes controller manager")]
pub struct Flags {
    /// Path to a kubeconfig with the controller manager's credentials.
    #[arg(long)]
    pub kubeconfig: PathBuf,
    /// Controllers to run: `*` for all, `foo` to enable, `-foo` to disable.
    #[arg(long, value_delimiter = ',', default_value = "*")]
    pub controllers: Vec<String>,
    /// The cluster CA published in every namespace's `kube-root-ca.crt`.
    #[arg(long)]
    pub root_ca_file: PathBuf,
}

/// A client from a kubeconfig file.
pub async fn client(kubeconfig: &std::path::Path) -> anyhow::Result<kube::Client> {
    let config = kube::config::Kubeconfig::read_from(kubeconfig)
        .with_context(|| format!("reading {}", kubeconfig.display()))?;
    let config = kube::Config::from_custom_kubeconfig(config, &Default::default()).await?;
    Ok(kube::Client::try_from(config)?)
}

pub async fn run(flags: Flags) -> anyhow::Result<()> {
    let root_ca_pem = std::fs::read_to_string(&flags.root_ca_file)
        .with_context(|| format!("reading --root-ca-file {}", flags.root_ca_file.display()))?;
    let client = client(&flags.kubeconfig).await?;
    rkube_controllers::run(
        client,
        rkube_controllers::Options {
            root_ca_pem,
            controllers: flags.controllers,
        },
    )
    .await
}
