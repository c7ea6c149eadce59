//! ImageLocality: favours nodes that already have the pod's images,
//! weighted by how widely each image is spread.

use crate::framework::{ClusterView, CycleState, MAX_NODE_SCORE, Plugin, Point};
use crate::nodeinfo::{NodeInfo, PodInfo, normalized_image_name};

const MB: i64 = 1024 * 1024;
const MIN_THRESHOLD: i64 = 23 * MB;
const MAX_CONTAINER_THRESHOLD: i64 = 1000 * MB;

pub struct ImageLocality;

impl Plugin for ImageLocality {
    fn name(&self) -> &'static str {
        "ImageLocality"
    }
    fn points(&self) -> &'static [Point] {
        &[Point::Score]
    }
    fn score(&self, _: &CycleState, pod: &PodInfo, node: &NodeInfo, view: &ClusterView) -> i64 {
        if node.images.is_empty() {
            return 0;
        }
        let total_nodes = view.cache.node_count().max(1) as f64;
        let spec = pod.spec();
        let containers: Vec<_> = spec
            .init_containers
            .iter()
            .flatten()
            .chain(spec.containers.iter())
            .collect();
        let mut sum = 0i64;
        for c in &containers {
            let Some(image) = c.image.as_deref() else {
                continue;
            };
            let name = normalized_image_name(image);
            if let Some(size) = node.images.get(&name) {
                let state = view.cache.image_state(&name, *size);
                sum += (state.size as f64 * (state.num_nodes as f64 / total_nodes)) as i64;
            }
        }
        let max = MAX_CONTAINER_THRESHOLD * containers.len().max(1) as i64;
        let sum = sum.clamp(MIN_THRESHOLD, max);
        MAX_NODE_SCORE * (sum - MIN_THRESHOLD) / (max - MIN_THRESHOLD)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::cache::Cache;
    use crate::plugins::testing::pod;
    use k8s_openapi::api::core::v1::Node;
    use serde_json::json;

    #[test]
    fn nodes_with_big_images_score_higher() {
        let mut c = Cache::new();
        let with: Node = serde_json::from_value(json!({"metadata": {"name": "a"}, "status": {"images": [{"names": ["registry/app:v1"], "sizeBytes": 500 * MB}]}})).unwrap();
        let without: Node = serde_json::from_value(json!({"metadata": {"name": "b"}})).unwrap();
        c.upsert_node(Arc::new(with));
        c.upsert_node(Arc::new(without));
        let view = ClusterView { cache: &c };
        let p = pod(json!({"spec": {"containers": [{"name": "c", "image": "registry/app:v1"}]}}));
        let s = CycleState::default();
        let a = ImageLocality.score(&s, &p, c.get("a").unwrap(), &view);
        let b = ImageLocality.score(&s, &p, c.get("b").unwrap(), &view);
        // 500MB spread over 1 of 2 nodes = 250MB: (250-23)/(1000-23).
        assert_eq!(
            a,
            100 * (250 * MB - MIN_THRESHOLD) / (MAX_CONTAINER_THRESHOLD - MIN_THRESHOLD)
        );
        assert_eq!(b, 0);
    }
}
