//! Label selectors (`metav1.LabelSelector`) and node selectors
//! (`v1.NodeSelector`) evaluated as upstream does.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Node, NodeSelector, NodeSelectorRequirement, NodeSelectorTerm};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;

pub type Labels = BTreeMap<String, String>;

static EMPTY: Labels = Labels::new();

pub fn labels_of(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> &Labels {
    meta.labels.as_ref().unwrap_or(&EMPTY)
}

/// A compiled `LabelSelector`: `None` in [`Selector::Nothing`] form when
/// the selector is invalid (matches nothing, as upstream's conversion error).
#[derive(Clone, Debug, PartialEq)]
pub enum Selector {
    Everything,
    Nothing,
    Requirements(Vec<Requirement>),
}

#[derive(Clone, Debug, PartialEq)]
pub struct Requirement {
    pub key: String,
    pub op: Op,
    pub values: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Op {
    In,
    NotIn,
    Exists,
    DoesNotExist,
    Gt,
    Lt,
}

impl Requirement {
    pub fn matches(&self, labels: &Labels) -> bool {
        let value = labels.get(&self.key);
        match self.op {
            Op::In => value.is_some_and(|v| self.values.contains(v)),
            Op::NotIn => value.is_none_or(|v| !self.values.contains(v)),
            Op::Exists => value.is_some(),
            Op::DoesNotExist => value.is_none(),
            Op::Gt | Op::Lt => {
                let (Some(v), Some(bound)) = (
                    value.and_then(|v| v.parse::<i64>().ok()),
                    self.values.first().and_then(|b| b.parse::<i64>().ok()),
                ) else {
                    return false;
                };
                if self.op == Op::Gt {
                    v > bound
                } else {
                    v < bound
                }
            }
        }
    }
}

fn op(name: &str) -> Option<Op> {
    Some(match name {
        "In" => Op::In,
        "NotIn" => Op::NotIn,
        "Exists" => Op::Exists,
        "DoesNotExist" => Op::DoesNotExist,
        "Gt" => Op::Gt,
        "Lt" => Op::Lt,
        _ => return None,
    })
}

impl Selector {
    /// `metav1.LabelSelectorAsSelector`: nil/empty selects everything.
    pub fn from_label_selector(s: Option<&LabelSelector>) -> Selector {
        let Some(s) = s else { return Selector::Nothing };
        let mut reqs = Vec::new();
        for (k, v) in s.match_labels.iter().flatten() {
            reqs.push(Requirement {
                key: k.clone(),
                op: Op::In,
                values: vec![v.clone()],
            });
        }
        for e in s.match_expressions.iter().flatten() {
            let Some(o) = op(&e.operator).filter(|o| !matches!(o, Op::Gt | Op::Lt)) else {
                return Selector::Nothing;
            };
            reqs.push(Requirement {
                key: e.key.clone(),
                op: o,
                values: e.values.clone().unwrap_or_default(),
            });
        }
        if reqs.is_empty() {
            Selector::Everything
        } else {
            Selector::Requirements(reqs)
        }
    }

    /// A `matchLabels`-only selector (`labels.SelectorFromSet`).
    pub fn from_set(set: &Labels) -> Selector {
        Selector::Requirements(
            set.iter()
                .map(|(k, v)| Requirement {
                    key: k.clone(),
                    op: Op::In,
                    values: vec![v.clone()],
                })
                .collect(),
        )
    }

    pub fn matches(&self, labels: &Labels) -> bool {
        match self {
            Selector::Everything => true,
            Selector::Nothing => false,
            Selector::Requirements(reqs) => reqs.iter().all(|r| r.matches(labels)),
        }
    }

    pub fn is_nothing(&self) -> bool {
        matches!(self, Selector::Nothing)
    }
}

fn requirement_matches(r: &NodeSelectorRequirement, labels: &Labels) -> bool {
    let Some(o) = op(&r.operator) else {
        return false;
    };
    Requirement {
        key: r.key.clone(),
        op: o,
        values: r.values.clone().unwrap_or_default(),
    }
    .matches(labels)
}

fn field_requirement_matches(r: &NodeSelectorRequirement, node_name: &str) -> bool {
    // Only `metadata.name` is a supported field, with In/NotIn.
    if r.key != "metadata.name" {
        return false;
    }
    let values = r.values.as_deref().unwrap_or_default();
    match r.operator.as_str() {
        "In" => values.len() == 1 && values[0] == node_name,
        "NotIn" => values.len() == 1 && values[0] != node_name,
        _ => false,
    }
}

/// One term: all its expressions and fields must match; a term with
/// neither matches nothing (upstream's `nodeSelectorTerm` semantics).
pub fn term_matches(term: &NodeSelectorTerm, node: &Node) -> bool {
    let exprs = term.match_expressions.as_deref().unwrap_or_default();
    let fields = term.match_fields.as_deref().unwrap_or_default();
    if exprs.is_empty() && fields.is_empty() {
        return false;
    }
    let labels = labels_of(&node.metadata);
    let name = node.metadata.name.as_deref().unwrap_or_default();
    exprs.iter().all(|r| requirement_matches(r, labels))
        && fields.iter().all(|r| field_requirement_matches(r, name))
}

/// The terms are ORed.
pub fn node_selector_matches(sel: &NodeSelector, node: &Node) -> bool {
    sel.node_selector_terms
        .iter()
        .any(|t| term_matches(t, node))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn label_selectors_follow_upstream() {
        let l: Labels = [("a".to_string(), "1".to_string())].into();
        let sel: LabelSelector = serde_json::from_value(json!({"matchExpressions": [{"key": "b", "operator": "DoesNotExist"}], "matchLabels": {"a": "1"}})).unwrap();
        assert!(Selector::from_label_selector(Some(&sel)).matches(&l));
        assert!(Selector::from_label_selector(Some(&LabelSelector::default())).matches(&l));
        assert!(!Selector::from_label_selector(None).matches(&l));
    }

    #[test]
    fn node_selector_terms_are_ored_and_gt_compares_integers() {
        let node: Node =
            serde_json::from_value(json!({"metadata": {"name": "n1", "labels": {"cores": "8"}}}))
                .unwrap();
        let sel: NodeSelector = serde_json::from_value(json!({"nodeSelectorTerms": [
            {"matchExpressions": [{"key": "cores", "operator": "Gt", "values": ["16"]}]},
            {"matchFields": [{"key": "metadata.name", "operator": "In", "values": ["n1"]}]}
        ]}))
        .unwrap();
        assert!(node_selector_matches(&sel, &node));
        let empty: NodeSelector =
            serde_json::from_value(json!({"nodeSelectorTerms": [{}]})).unwrap();
        assert!(!node_selector_matches(&empty, &node));
    }
}
