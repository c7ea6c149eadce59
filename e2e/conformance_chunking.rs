//! Conformance (sig-api-machinery, `test/e2e/apimachinery/chunking.go`):
//! paged lists with limit/continue.

use futures::StreamExt;
use k8s_openapi::api::core::v1::{ConfigMap, PodTemplate};
use kube::api::{Api, ListParams, ObjectList, PostParams};
use rkube_storage::Storage;
use rkube_storage::etcd::{EtcdConfig, EtcdStore};
use serde_json::json;

use crate::conformance_util::{api_status, obj, test_namespace};
use crate::harness::Cluster;

const TOTAL: usize = 400;
const ONE_TENTH: u32 = 40;

/// Upstream's BeforeEach: 400 pod templates `template-0000`..`template-0399`.
async fn create_templates(templates: &Api<PodTemplate>) {
    futures::stream::iter(0..TOTAL)
        .map(|i| {
            let templates = templates.clone();
            async move {
                let t: PodTemplate = obj(json!({
                    "metadata": { "name": format!("template-{i:04}") },
                    "template": { "spec": { "containers": [
                        { "name": "test", "image": "registry.k8s.io/e2e-test-images/busybox:1.37.0-1" }
                    ] } }
                }));
                templates
                    .create(&PostParams::default(), &t)
                    .await
                    .unwrap_or_else(|e| panic!("create template {i}: {e:?}"));
            }
        })
        .buffer_unordered(8)
        .collect::<Vec<_>>()
        .await;
}

fn page(limit: u32, token: Option<&str>) -> ListParams {
    ListParams {
        limit: Some(limit),
        continue_token: token.map(str::to_owned),
        ..ListParams::default()
    }
}

/// Checks one page: size, names in order, remainingItemCount; returns the
/// continue token.
fn check_page(list: &ObjectList<PodTemplate>, limit: u32, found: &mut usize) -> Option<String> {
    assert!(
        list.items.len() <= limit as usize,
        "page of {} items exceeds limit {limit}",
        list.items.len()
    );
    let token = list.metadata.continue_.clone().filter(|t| !t.is_empty());
    match &token {
        None => assert_eq!(
            list.metadata.remaining_item_count, None,
            "remainingItemCount set on the last page"
        ),
        Some(_) => {
            let remaining = list
                .metadata
                .remaining_item_count
                .expect("remainingItemCount on a page with a continue token");
            assert_eq!(
                remaining as usize + list.items.len() + *found,
                TOTAL,
                "remainingItemCount {remaining} after {} + {} items",
                *found,
                list.items.len()
            );
        }
    }
    for item in &list.items {
        assert_eq!(
            item.metadata.name.as_deref(),
            Some(format!("template-{:04}", *found).as_str())
        );
        *found += 1;
    }
    token
}

// [sig-api-machinery] Servers with support for API chunking should return
// chunks of results for list calls [Conformance]
#[tokio::test]
async fn api_chunking_should_return_chunks_of_results_for_list_calls() {
    let c = Cluster::up().await;
    let client = c.client().await;
    let ns = test_namespace(&client, "chunking").await;
    let templates: Api<PodTemplate> = Api::namespaced(client.clone(), &ns);
    create_templates(&templates).await;

    let mut found = 0;
    let mut token: Option<String> = None;
    let mut last_rv: Option<String> = None;
    loop {
        let list = templates
            .list(&page(ONE_TENTH, token.as_deref()))
            .await
            .unwrap();
        let rv = list.metadata.resource_version.clone().unwrap();
        // Every page is from the snapshot of the first.
        match &last_rv {
            None => last_rv = Some(rv),
            Some(first) => assert_eq!(&rv, first, "page resourceVersion differs"),
        }
        token = check_page(&list, ONE_TENTH, &mut found);
        if token.is_none() {
            break;
        }
    }
    assert_eq!(found, TOTAL);

    let all = templates.list(&ListParams::default()).await.unwrap();
    assert_eq!(all.items.len(), TOTAL);
    assert!(all.metadata.continue_.as_deref().unwrap_or("").is_empty());
}

// [sig-api-machinery] Servers with support for API chunking should support
// continue listing from the last key if the original version has been
// compacted away, though the list is inconsistent [Slow] [Conformance]
//
// Upstream waits for the API server's periodic etcd compaction; here the
// test compacts etcd itself.
#[tokio::test]
async fn api_chunking_should_support_continue_listing_from_the_last_key_if_the_original_version_has_been_compacted_away()
 {
    let Some(c) = Cluster::up_on_etcd().await else {
        return;
    };
    let client = c.client().await;
    let ns = test_namespace(&client, "chunking").await;
    let templates: Api<PodTemplate> = Api::namespaced(client.clone(), &ns);
    create_templates(&templates).await;

    let first = templates.list(&page(ONE_TENTH, None)).await.unwrap();
    let mut found = 0;
    let first_token = check_page(&first, ONE_TENTH, &mut found).expect("a continue token");
    let first_rv = first.metadata.resource_version.clone().unwrap();

    // Move past the first page's revision and compact it away.
    Api::<ConfigMap>::namespaced(client.clone(), &ns)
        .create(
            &PostParams::default(),
            &obj(json!({ "metadata": { "name": "advance" } })),
        )
        .await
        .unwrap();
    let etcd = c.etcd.as_ref().unwrap();
    let store = EtcdStore::connect(EtcdConfig::new(vec![etcd.endpoint.clone()]))
        .await
        .unwrap();
    let current = store.current_revision().await.unwrap();
    store.compact(current).await.unwrap();

    // The old token is expired; the 410 carries an inconsistent continue token.
    let err = templates
        .list(&page(ONE_TENTH, Some(&first_token)))
        .await
        .expect_err("continue from a compacted revision must fail");
    let status = api_status(err);
    assert_eq!(status.code, 410, "{status:?}");
    assert_eq!(status.reason, "Expired", "{status:?}");
    let inconsistent = status
        .metadata
        .as_ref()
        .and_then(|m| m.continue_.clone())
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| panic!("410 without an inconsistent continue token: {status:?}"));

    let second = templates
        .list(&page(ONE_TENTH, Some(&inconsistent)))
        .await
        .expect("list with the inconsistent continue token");
    let second_rv = second.metadata.resource_version.clone().unwrap();
    assert_ne!(second_rv, first_rv);
    assert_eq!(second.items.len(), ONE_TENTH as usize);
    let mut token = check_page(&second, ONE_TENTH, &mut found);
    while let Some(t) = token {
        let list = templates.list(&page(ONE_TENTH, Some(&t))).await.unwrap();
        assert_eq!(
            list.metadata.resource_version.as_deref(),
            Some(second_rv.as_str())
        );
        token = check_page(&list, ONE_TENTH, &mut found);
    }
    assert_eq!(found, TOTAL);
}
