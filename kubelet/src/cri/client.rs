//! The CRI v1 clients over the runtime's unix socket.

use std::time::Duration;

use hyper_util::rt::TokioIo;
use k8s_cri::v1::image_service_client::ImageServiceClient;
use k8s_cri::v1::runtime_service_client::RuntimeServiceClient;
use tonic::transport::{Channel, Endpoint, Uri};

/// Both CRI services over one connection.
#[derive(Clone)]
pub struct Cri {
    pub runtime: RuntimeServiceClient<Channel>,
    pub images: ImageServiceClient<Channel>,
}

/// The socket path of a `unix://` endpoint (upstream's
/// `--container-runtime-endpoint`); a bare path is accepted too.
pub fn socket_path(endpoint: &str) -> anyhow::Result<String> {
    if let Some(path) = endpoint.strip_prefix("unix://") {
        return Ok(path.to_owned());
    }
    anyhow::ensure!(
        endpoint.starts_with('/'),
        "--container-runtime-endpoint {endpoint:?}: only unix:// endpoints are supported"
    );
    Ok(endpoint.to_owned())
}

impl Cri {
    /// Connects to the socket (the connection is made at once, so a
    /// socket nobody listens on fails here).
    pub async fn connect(endpoint: &str) -> anyhow::Result<Cri> {
        let path = socket_path(endpoint)?;
        // The URI is required by tonic but unused: the connector dials the socket.
        let channel = Endpoint::try_from("http://[::]:50051")?
            .connect_timeout(Duration::from_secs(2))
            .connect_with_connector(tower::service_fn(move |_: Uri| {
                let path = path.clone();
                async move {
                    Ok::<_, std::io::Error>(TokioIo::new(
                        tokio::net::UnixStream::connect(path).await?,
                    ))
                }
            }))
            .await?;
        Ok(Cri {
            runtime: RuntimeServiceClient::new(channel.clone()),
            images: ImageServiceClient::new(channel),
        })
    }

    /// `<runtime_name>://<runtime_version>`, as nodeInfo reports it.
    pub async fn version(&self) -> anyhow::Result<String> {
        let v = self
            .runtime
            .clone()
            .version(k8s_cri::v1::VersionRequest {
                version: "v1".into(),
            })
            .await?
            .into_inner();
        Ok(format!("{}://{}", v.runtime_name, v.runtime_version))
    }
}
